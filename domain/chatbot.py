"""The homepage chatbot: guided flows as data, free-text help through triage, and a hand-off to a real
consultation that the person submits themselves.

Standard library only (domain rule). The flows live in domain/knowledge/chatbot.yaml; infra/chatbot_loader.py
parses the YAML and hands the dict to `flows_from_dict`, then `validate_flows` checks it against the knowledge
(desks, guides, categories, desired outcomes, platforms). The turn engine (`Engine`) is pure: it maps a session
state and one input to the next state and what to say, as desk codes and guide slugs. `ChatbotService` does the
rest through ports: rate limits, sessions and transcripts, the contact-desk chart, desk details, hand-off.

Free text is never stored and never logged: it goes to triage and the transcript keeps a placeholder.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.actors import Actor
from domain.chart import ChartStep, InvalidChartAnswer
from domain.errors import Conflict, InvalidState, NotFound, RateLimited, ValidationFailed
from domain.knowledge_model import Desk, Guide, Knowledge, Platform
from domain.languages import BASE, language_list_problems, pick, split_key, text_problems
from domain.policy import ensure_consulter
from domain.ports import Clock, Throttle
from domain.text import nfkc
from domain.triage import TriageResult, TriageRules

__all__ = [
    "FREE_TEXT_PLACEHOLDER",
    "MAX_TEXT_CHARS",
    "ChatbotPolicy",
    "ChatbotService",
    "Draft",
    "Engine",
    "FlowError",
    "Flows",
    "References",
    "State",
    "flows_from_dict",
    "iter_paths",
    "validate_flows",
]

MAX_TEXT_CHARS = 1000
FREE_TEXT_PLACEHOLDER = "（自由入力）"
SESSION_NOT_FOUND = "chatbot_session_not_found"

NODE_KINDS = frozenset({"question", "answer", "chart", "handoff", "free_text"})
# Kinds whose choices the engine supplies; the data may not add its own.
ENGINE_KINDS = frozenset({"chart", "handoff", "free_text"})
SPECIAL_FLOWS = {"chart": "chart", "handoff": "handoff", "free_text": "free_text"}

MENU = "menu"  # the menu pseudo-node, and the choice id that returns to it
END = "end"  # the goodbye pseudo-node, and the choice id that leads to it
TRIAGE = "triage"  # the pseudo-node after free text
LEADING_CATEGORIES = 3  # at most this many triage suggestions go into the hand-off draft
RESERVED = frozenset({MENU, END, TRIAGE})
FLOW_PREFIX = "flow:"
CHART_PREFIX = "chart:"
DRAFT_KEYS = ("categories", "desired_outcomes", "platforms")
# Text names; the data has them per language (greeting_ja, greeting_en, ...).
TEXT_NAMES = (
    "greeting",
    "privacy",
    "menu",
    "triage_intro",
    "triage_no_match",
    "urgent_intro",
    "end",
    "guides_intro",
    "handoff_ready",
    # pieces of the engine's own messages, with {placeholders}
    "language_switched",
    "desk_name",
    "desk_phone",
    "desk_hours",
    "desk_call",
    "platform_desk",
    "platform_designated",
    "platform_not_designated",
    "also",
    "list_separator",
)
TEXT_KEYS = tuple(f"{n}_{BASE}" for n in TEXT_NAMES)
LABEL_NAMES = ("menu", "end", "restart", "retry_free_text")
LANG_PREFIX = "lang:"  # the choice that switches the session's language: "lang:en"

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


# ---------------------------------------------------------------------------------------------------------
# The flow model
# ---------------------------------------------------------------------------------------------------------


class FlowError(ValueError):
    """The flows are malformed or refer to something that does not exist; `problems` lists every issue."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid chatbot flows")


@dataclass(frozen=True, slots=True)
class Draft:
    """What the conversation learnt, as intake codes (domain/consultations.Intake): never free text."""

    categories: tuple[str, ...] = ()
    desired_outcomes: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()

    def merge(self, other: Draft) -> Draft:
        def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return a + tuple(x for x in dict.fromkeys(b) if x not in a)

        return Draft(
            union(self.categories, other.categories),
            union(self.desired_outcomes, other.desired_outcomes),
            union(self.platforms, other.platforms),
        )

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in DRAFT_KEYS}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Draft:
        raw = raw or {}
        return cls(*(tuple(str(v) for v in raw.get(k) or ()) for k in DRAFT_KEYS))


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    label_ja: str
    next: str  # a node id of the same flow, or "flow:<id>"
    draft: Draft = Draft()
    note_ja: str = ""  # said when chosen, before the next node
    loop: bool = False  # an explicitly allowed back edge (exempt from the cycle check)
    texts: Mapping[str, str] = field(default_factory=dict, compare=False)  # every label_<lang>, note_<lang>

    def label(self, lang: str) -> str:
        return pick(self.texts, "label", lang) or self.label_ja

    def note(self, lang: str) -> str:
        return pick(self.texts, "note", lang) if self.note_ja else ""


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    flow: str
    kind: str
    text_ja: str = ""
    choices: tuple[Choice, ...] = ()
    desks: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()
    draft: Draft = Draft()
    platform_routes: bool = False  # also show the report routes of the platforms chosen so far
    texts: Mapping[str, str] = field(default_factory=dict, compare=False)  # every text_<lang>

    def text(self, lang: str) -> str:
        return pick(self.texts, "text", lang) or self.text_ja


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    title_ja: str
    start: str
    nodes: tuple[Node, ...]
    draft: Draft = Draft()
    triage_categories: tuple[str, ...] = ()  # free text scoring these categories suggests this flow
    texts: Mapping[str, str] = field(default_factory=dict, compare=False)  # every title_<lang>

    def title(self, lang: str) -> str:
        return pick(self.texts, "title", lang) or self.title_ja


@dataclass(frozen=True)
class Flows:
    version: str
    texts: Mapping[str, str]  # "<name>_<lang>" -> text
    labels: Mapping[str, str]  # "<name>_<lang>" -> label
    greeting_desks: tuple[str, ...]
    handoff_default_outcomes: tuple[str, ...]
    flows: tuple[Flow, ...]
    languages: tuple[str, ...] = (BASE,)
    language_names: Mapping[str, str] = field(default_factory=dict)
    _flows: Mapping[str, Flow] = field(default_factory=dict, repr=False, compare=False)
    _nodes: Mapping[str, Node] = field(default_factory=dict, repr=False, compare=False)
    _choices: Mapping[str, Choice] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        flows: dict[str, Flow] = {}
        nodes: dict[str, Node] = {}
        choices: dict[str, Choice] = {}
        for f in self.flows:
            flows.setdefault(f.id, f)
            for n in f.nodes:
                nodes.setdefault(n.id, n)
                for c in n.choices:
                    choices.setdefault(c.id, c)
        object.__setattr__(self, "_flows", flows)
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "_choices", choices)

    def flow(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def node(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def choice(self, choice_id: str) -> Choice | None:
        return self._choices.get(choice_id)

    def all_nodes(self) -> Iterator[Node]:
        for f in self.flows:
            yield from f.nodes

    def text(self, name: str, lang: str) -> str:
        return pick(self.texts, name, lang)

    def label(self, name: str, lang: str) -> str:
        return pick(self.labels, name, lang)

    def speaks(self, lang: str) -> bool:
        return lang in self.languages


# -- parsing ----------------------------------------------------------------------------------------------


def _mapping(value: Any, where: str, problems: list[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected a mapping")
        return {}
    return value


def _text(raw: Mapping[str, Any], key: str, where: str, problems: list[str], *, required: bool) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"{where}: missing '{key}'")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: '{key}' must be a string")
        return ""
    if required and not value.strip():
        problems.append(f"{where}: '{key}' is empty")
    return value.strip()


def _codes(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: '{key}' must be a list of codes")
        return ()
    return tuple(value)


def _draft(raw: Mapping[str, Any], where: str, problems: list[str]) -> Draft:
    value = raw.get("draft")
    if value is None:
        return Draft()
    d = _mapping(value, f"{where}.draft", problems)
    unknown = set(d) - set(DRAFT_KEYS)
    if unknown:
        problems.append(f"{where}.draft: unknown keys {sorted(map(str, unknown))}")
    return Draft(*(_codes(d, k, f"{where}.draft", problems) for k in DRAFT_KEYS))


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    # A `<name>_<language>` key is accepted wherever `<name>_ja` is; validation checks the languages.
    def known(k: object) -> bool:
        parts = split_key(k)
        return k in allowed or (parts is not None and f"{parts[0]}_{BASE}" in allowed)

    unknown = {k for k in raw if not known(k)}
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(map(str, unknown))}")


def _texts_of(
    raw: Mapping[str, Any], names: tuple[str, ...], where: str, problems: list[str]
) -> dict[str, str]:
    """Every `<name>_<language>` text of an entry, for the given names."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        parts = split_key(key)
        if parts is None or parts[0] not in names:
            continue
        if not isinstance(value, str):
            problems.append(f"{where}: '{key}' must be a string")
            continue
        out[str(key)] = value.strip()
    return out


def _choice(raw: Any, where: str, problems: list[str]) -> Choice | None:
    c = _mapping(raw, where, problems)
    if not c:
        return None
    _check_keys(c, {"id", "label_ja", "next", "draft", "note_ja", "loop"}, where, problems)
    choice_id = _text(c, "id", where, problems, required=True)
    where = f"{where}({choice_id})"
    loop = c.get("loop", False)
    if not isinstance(loop, bool):
        problems.append(f"{where}: 'loop' must be true or false")
        loop = False
    return Choice(
        id=choice_id,
        label_ja=_text(c, "label_ja", where, problems, required=True),
        next=_text(c, "next", where, problems, required=True),
        draft=_draft(c, where, problems),
        note_ja=_text(c, "note_ja", where, problems, required=False),
        loop=loop,
        texts=_texts_of(c, ("label", "note"), where, problems),
    )


def _node(raw: Any, flow_id: str, where: str, problems: list[str]) -> Node | None:
    n = _mapping(raw, where, problems)
    if not n:
        return None
    _check_keys(
        n,
        {"id", "kind", "text_ja", "choices", "desks", "guides", "draft", "platform_routes"},
        where,
        problems,
    )
    node_id = _text(n, "id", where, problems, required=True)
    where = f"flows.{flow_id}.{node_id}"
    choices_raw = n.get("choices") or []
    if not isinstance(choices_raw, list):
        problems.append(f"{where}: 'choices' must be a list")
        choices_raw = []
    choices = tuple(
        c
        for c in (_choice(c, f"{where}.choices[{i}]", problems) for i, c in enumerate(choices_raw))
        if c is not None
    )
    return Node(
        id=node_id,
        flow=flow_id,
        kind=_text(n, "kind", where, problems, required=True),
        text_ja=_text(n, "text_ja", where, problems, required=False),
        choices=choices,
        desks=_codes(n, "desks", where, problems),
        guides=_codes(n, "guides", where, problems),
        draft=_draft(n, where, problems),
        platform_routes=n.get("platform_routes") is True,
        texts=_texts_of(n, ("text",), where, problems),
    )


def _flow(raw: Any, where: str, problems: list[str]) -> Flow | None:
    f = _mapping(raw, where, problems)
    if not f:
        return None
    _check_keys(f, {"id", "title_ja", "start", "nodes", "draft", "triage_categories"}, where, problems)
    flow_id = _text(f, "id", where, problems, required=True)
    where = f"flows.{flow_id}"
    nodes_raw = f.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        problems.append(f"{where}: 'nodes' must be a non-empty list")
        nodes_raw = []
    nodes = tuple(
        n
        for n in (_node(n, flow_id, f"{where}.nodes[{i}]", problems) for i, n in enumerate(nodes_raw))
        if n is not None
    )
    return Flow(
        id=flow_id,
        title_ja=_text(f, "title_ja", where, problems, required=True),
        start=_text(f, "start", where, problems, required=True),
        nodes=nodes,
        draft=_draft(f, where, problems),
        triage_categories=_codes(f, "triage_categories", where, problems),
        texts=_texts_of(f, ("title",), where, problems),
    )


def flows_from_dict(raw: Any) -> Flows:
    """Shape the parsed YAML into the model; raises FlowError listing every structural problem."""
    problems: list[str] = []
    top = _mapping(raw, "chatbot", problems)
    if problems:
        raise FlowError(problems)
    _check_keys(
        top,
        {
            "version",
            "texts",
            "labels",
            "greeting_desks",
            "handoff_default_outcomes",
            "flows",
            "languages",
            "language_names",
        },
        "chatbot",
        problems,
    )
    languages = _codes(top, "languages", "chatbot", problems) or (BASE,)
    names_raw = _mapping(top.get("language_names", {}), "chatbot.language_names", problems)
    language_names = {str(k): str(v) for k, v in names_raw.items() if isinstance(v, str)}
    version = top.get("version")
    if not isinstance(version, str | int) or isinstance(version, bool) or not str(version).strip():
        problems.append("chatbot: 'version' must be a non-empty string")
        version = ""
    texts_raw = _mapping(top.get("texts"), "chatbot.texts", problems)
    _check_keys(texts_raw, set(TEXT_KEYS), "chatbot.texts", problems)
    for k in TEXT_KEYS:
        _text(texts_raw, k, "chatbot.texts", problems, required=True)
    # Texts are kept as written, except the separator, whose spaces are the point (", ").
    texts = _texts_of(texts_raw, TEXT_NAMES, "chatbot.texts", problems)
    texts.update(
        {k: v for k, v in texts_raw.items() if str(k).startswith("list_separator_") and isinstance(v, str)}
    )
    labels_raw = _mapping(top.get("labels"), "chatbot.labels", problems)
    label_keys = {f"{n}_{BASE}" for n in LABEL_NAMES}
    _check_keys(labels_raw, label_keys, "chatbot.labels", problems)
    for k in sorted(label_keys):
        _text(labels_raw, k, "chatbot.labels", problems, required=True)
    labels = _texts_of(labels_raw, LABEL_NAMES, "chatbot.labels", problems)
    flows_raw = top.get("flows")
    if not isinstance(flows_raw, list) or not flows_raw:
        problems.append("chatbot: 'flows' must be a non-empty list")
        flows_raw = []
    flows = tuple(
        f for f in (_flow(f, f"flows[{i}]", problems) for i, f in enumerate(flows_raw)) if f is not None
    )
    if problems:
        raise FlowError(problems)
    return Flows(
        version=str(version),
        texts=texts,
        labels=labels,
        greeting_desks=_codes(top, "greeting_desks", "chatbot", problems),
        handoff_default_outcomes=_codes(top, "handoff_default_outcomes", "chatbot", problems),
        flows=flows,
        languages=languages,
        language_names=language_names,
    )


# -- validation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class References:
    """The codes the flows may refer to: from the knowledge files and the desk directory."""

    desks: frozenset[str]
    guides: frozenset[str]
    categories: frozenset[str]  # leaf categories only: the intake accepts nothing else
    desired_outcomes: frozenset[str]
    platforms: frozenset[str]
    # Languages the chart and the guides have every text in: the chatbot shows them, so it may speak no other.
    languages: frozenset[str] = frozenset()

    @classmethod
    def of(cls, knowledge: Knowledge, desk_codes: Sequence[str] | None = None) -> References:
        return cls(
            desks=frozenset(desk_codes if desk_codes is not None else (d.code for d in knowledge.desks)),
            guides=frozenset(g.slug for g in knowledge.guides),
            categories=frozenset(c.code for c in knowledge.leaf_categories()),
            desired_outcomes=frozenset(i.code for i in knowledge.code_list("desired_outcomes")),
            platforms=frozenset(p.code for p in knowledge.platforms),
            languages=frozenset(knowledge.chart.languages) & frozenset(knowledge.guide_languages),
        )


def _duplicates(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]


def _draft_problems(d: Draft, where: str, refs: References) -> list[str]:
    out = [f"{where}: unknown category '{c}'" for c in d.categories if c not in refs.categories]
    out += [
        f"{where}: unknown desired outcome '{c}'"
        for c in d.desired_outcomes
        if c not in refs.desired_outcomes
    ]
    out += [f"{where}: unknown platform '{c}'" for c in d.platforms if c not in refs.platforms]
    return out


def _edges(flows: Flows, node: Node) -> list[tuple[Choice, str]]:
    """(choice, node id it leads to) for the choices that are not explicitly allowed loops."""
    out = []
    for c in node.choices:
        if c.loop:
            continue
        target = c.next
        if target.startswith(FLOW_PREFIX):
            f = flows.flow(target[len(FLOW_PREFIX) :])
            target = f.start if f else ""
        if flows.node(target) is not None:
            out.append((c, target))
    return out


def language_problems(flows: Flows) -> list[str]:
    """Declared languages: each has a name, and every Japanese text exists in each of them (issue 14 item 23)."""
    langs = flows.languages
    problems = language_list_problems(langs, "chatbot.languages")
    problems += [
        f"chatbot.language_names: no name for declared language '{x}'"
        for x in langs
        if len(langs) > 1 and not flows.language_names.get(x, "").strip()
    ]
    problems += [
        f"chatbot.language_names: '{x}' is not a declared language"
        for x in flows.language_names
        if x not in langs
    ]
    problems += text_problems(flows.texts, langs, "chatbot.texts")
    problems += text_problems(flows.labels, langs, "chatbot.labels")
    for f in flows.flows:
        problems += text_problems(f.texts, langs, f"flows.{f.id}")
        for n in f.nodes:
            problems += text_problems(n.texts, langs, f"flows.{f.id}.{n.id}")
            for c in n.choices:
                problems += text_problems(c.texts, langs, f"flows.{f.id}.{n.id}.{c.id}")
    return problems


def flow_problems(flows: Flows, refs: References | None = None) -> list[str]:
    """Every structural problem; references are checked only when `refs` is given."""
    problems: list[str] = language_problems(flows)
    flow_ids = [f.id for f in flows.flows]
    problems += [f"flows: duplicate flow id '{d}'" for d in _duplicates(flow_ids)]
    all_nodes = list(flows.all_nodes())
    problems += [f"flows: duplicate node id '{d}'" for d in _duplicates([n.id for n in all_nodes])]
    all_choices = [c.id for n in all_nodes for c in n.choices]
    problems += [f"flows: duplicate choice id '{d}'" for d in _duplicates(all_choices)]
    for special, kind in SPECIAL_FLOWS.items():
        f = flows.flow(special)
        start = flows.node(f.start) if f else None
        if start is None or start.kind != kind:
            problems.append(f"flows: a flow '{special}' starting with a '{kind}' node is required")

    for f in flows.flows:
        where = f"flows.{f.id}"
        if not _ID.match(f.id) or f.id in RESERVED:
            problems.append(f"{where}: malformed or reserved flow id")
        own = {n.id for n in f.nodes}
        if f.start not in own:
            problems.append(f"{where}: start node '{f.start}' is not in the flow")
        if refs is not None:
            problems += _draft_problems(f.draft, where, refs)
            problems += [
                f"{where}: unknown triage category '{c}'"
                for c in f.triage_categories
                if c not in refs.categories
            ]
        for n in f.nodes:
            nw = f"{where}.{n.id}"
            if not _ID.match(n.id) or n.id in RESERVED:
                problems.append(f"{nw}: malformed or reserved node id")
            if n.kind not in NODE_KINDS:
                problems.append(f"{nw}: unknown kind '{n.kind}'")
                continue
            if not n.text_ja:
                problems.append(f"{nw}: no text_ja")
            if n.kind == "question" and not n.choices:
                problems.append(f"{nw}: question without choices (dead end)")
            if n.kind in ENGINE_KINDS and n.choices:
                problems.append(f"{nw}: a {n.kind} node gets its choices from the engine")
            if refs is not None:
                problems += [f"{nw}: unknown desk '{d}'" for d in n.desks if d not in refs.desks]
                problems += [f"{nw}: unknown guide '{g}'" for g in n.guides if g not in refs.guides]
                problems += _draft_problems(n.draft, nw, refs)
            for c in n.choices:
                cw = f"{nw}.{c.id}"
                if not _ID.match(c.id) or c.id in RESERVED:
                    problems.append(f"{cw}: malformed or reserved choice id")
                if c.next.startswith(FLOW_PREFIX):
                    if flows.flow(c.next[len(FLOW_PREFIX) :]) is None:
                        problems.append(f"{cw}: leads to unknown flow '{c.next}'")
                elif c.next not in own:
                    problems.append(f"{cw}: leads to '{c.next}', which is not a node of flow '{f.id}'")
                if refs is not None:
                    problems += _draft_problems(c.draft, cw, refs)
        # Reachability inside the flow: a node nobody can reach is a mistake (often a typo in `next`).
        seen: set[str] = set()
        stack = [f.start] if f.start in own else []
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            node = flows.node(nid)
            stack += [c.next for c in (node.choices if node else ()) if c.next in own]
        problems += [
            f"{where}.{nid}: unreachable from '{f.start}'" for nid in sorted(own - seen) if f.start in own
        ]

    # Cycles over every flow (jumps between flows included), except edges marked `loop: true`.
    white, grey, black = 0, 1, 2
    colour = {n.id: white for n in all_nodes}
    cycles: list[str] = []

    def visit(node_id: str, trail: list[str]) -> None:
        colour[node_id] = grey
        node = flows.node(node_id)
        for _, target in _edges(flows, node) if node else ():
            if colour.get(target) == grey:
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif colour.get(target) == white:
                visit(target, trail + [target])
        colour[node_id] = black

    for n in all_nodes:
        if colour[n.id] == white:
            visit(n.id, [n.id])
    problems += [f"flows: cycle {c} (mark a back edge with loop: true if it is meant)" for c in cycles]

    if refs is not None:
        problems += [
            f"chatbot.languages: '{x}' is not a language of the chart and the guides (chart.yaml, guides.yaml)"
            for x in flows.languages
            if refs.languages and x not in refs.languages
        ]
        problems += [
            f"chatbot.greeting_desks: unknown desk '{d}'" for d in flows.greeting_desks if d not in refs.desks
        ]
        problems += [
            f"chatbot.handoff_default_outcomes: unknown desired outcome '{c}'"
            for c in flows.handoff_default_outcomes
            if c not in refs.desired_outcomes
        ]
    return problems


def validate_flows(flows: Flows, refs: References | None = None) -> Flows:
    problems = flow_problems(flows, refs)
    if problems:
        raise FlowError(problems)
    return flows


def iter_paths(flows: Flows) -> Iterator[tuple[str, ...]]:
    """Every sequence of choice ids from the menu through a flow to where it stops offering new choices
    (only the engine's own choices remain: the menu, the hand-off, the end). Flows must be validated."""

    def go(node: Node, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        edges = _edges(flows, node)
        if not edges:
            yield prefix
            return
        for choice, target in edges:
            nxt = flows.node(target)
            if nxt is not None:
                yield from go(nxt, prefix + (choice.id,))

    for f in flows.flows:
        start = flows.node(f.start)
        if start is not None:
            yield from go(start, (FLOW_PREFIX + f.id,))


# ---------------------------------------------------------------------------------------------------------
# The turn engine (pure)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class State:
    node: str = MENU
    chart: tuple[str, ...] | None = None  # answers so far while in the contact-desk chart
    draft: Draft = Draft()
    offered: tuple[tuple[str, str], ...] = ()  # (choice id, label) offered by the last bot turn
    lang: str = BASE  # the language the session speaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "node": self.node,
            "chart": list(self.chart) if self.chart is not None else None,
            "draft": self.draft.to_dict(),
            "offered": [list(c) for c in self.offered],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> State:
        chart = raw.get("chart")
        return cls(
            node=str(raw.get("node") or MENU),
            chart=tuple(str(a) for a in chart) if isinstance(chart, list) else None,
            draft=Draft.from_dict(raw.get("draft")),
            offered=tuple((str(c[0]), str(c[1])) for c in raw.get("offered") or () if len(c) == 2),
            lang=str(raw.get("lang") or BASE),
        )

    def label_of(self, choice_id: str) -> str | None:
        return next((label for cid, label in self.offered if cid == choice_id), None)


@dataclass(frozen=True, slots=True)
class Say:
    """One bot message: text, then the desks (codes, resolved against the directory) and guides (slugs)."""

    text: str
    desks: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # show these platforms' report routes


@dataclass(frozen=True, slots=True)
class Plan:
    state: State
    says: tuple[Say, ...]
    choices: tuple[tuple[str, str], ...]
    action: str | None = None  # "chart": walk the chart with state.chart; "handoff": issue a claim token


class UnknownChoice(ValidationFailed):
    code = "unknown_choice"

    def __init__(self) -> None:
        super().__init__("unknown_choice", field="choice_id")


class Engine:
    def __init__(self, flows: Flows) -> None:
        self.flows = flows

    def language(self, state: State) -> str:
        """The session's language; Japanese when the flows no longer speak the stored one."""
        return state.lang if self.flows.speaks(state.lang) else BASE

    # -- the fixed choices ---------------------------------------------------------------------------

    def menu_choices(self, lang: str = BASE) -> tuple[tuple[str, str], ...]:
        flows = tuple((FLOW_PREFIX + f.id, f.title(lang)) for f in self.flows.flows)
        # The language switch: every other declared language, named in itself ("English", "日本語").
        switch = tuple(
            (LANG_PREFIX + x, self.flows.language_names.get(x, x)) for x in self.flows.languages if x != lang
        )
        return flows + switch

    def _flow_choice(self, flow_id: str, lang: str, label: str | None = None) -> tuple[str, str]:
        f = self.flows.flow(flow_id)
        assert f is not None  # validated: the special flows exist
        return FLOW_PREFIX + f.id, label or f.title(lang)

    def _menu(self, lang: str) -> tuple[str, str]:
        return MENU, self.flows.label("menu", lang)

    def footer(self, lang: str = BASE) -> tuple[tuple[str, str], ...]:
        return (
            self._menu(lang),
            self._flow_choice("handoff", lang),
            (END, self.flows.label("end", lang)),
        )

    def _menu_say(self, lang: str) -> Say:
        return Say(self.flows.text("menu", lang))

    def _plan(
        self, state: State, says: Sequence[Say], choices: Sequence[tuple[str, str]], action: str | None = None
    ) -> Plan:
        unique = tuple(dict.fromkeys(choices))  # a node's own choice can repeat a footer one
        return Plan(replace(state, offered=unique), tuple(says), unique, action)

    # -- turns -----------------------------------------------------------------------------------------

    def greeting(self, lang: str = BASE) -> Plan:
        if not self.flows.speaks(lang):
            lang = BASE
        says = [
            Say(
                self.flows.text("greeting", lang) + "\n" + self.flows.text("privacy", lang),
                desks=self.flows.greeting_desks,
            ),
            self._menu_say(lang),
        ]
        return self._plan(State(lang=lang), says, self.menu_choices(lang))

    def choose(self, state: State, choice_id: str) -> Plan:
        if state.label_of(choice_id) is None:
            raise UnknownChoice()
        lang = self.language(state)
        if choice_id.startswith(LANG_PREFIX):
            new = choice_id[len(LANG_PREFIX) :]
            if not self.flows.speaks(new):
                raise UnknownChoice()
            says = [Say(self.flows.text("language_switched", new)), self._menu_say(new)]
            return self._plan(replace(state, lang=new, node=MENU, chart=None), says, self.menu_choices(new))
        if choice_id == MENU:
            return self._plan(
                replace(state, node=MENU, chart=None), [self._menu_say(lang)], self.menu_choices(lang)
            )
        if choice_id == END:
            restart = ((MENU, self.flows.label("restart", lang)),)
            return self._plan(
                replace(state, node=END, chart=None), [Say(self.flows.text("end", lang))], restart
            )
        if choice_id.startswith(CHART_PREFIX):
            if state.chart is None:
                raise UnknownChoice()
            answers = (*state.chart, choice_id[len(CHART_PREFIX) :])
            return Plan(replace(state, chart=answers), (), (), "chart")
        if choice_id.startswith(FLOW_PREFIX):
            return self._enter(replace(state, chart=None), choice_id, [])
        choice = self.flows.choice(choice_id)
        node = self.flows.node(state.node)
        if choice is None or node is None or choice not in node.choices:
            raise UnknownChoice()
        says = [Say(choice.note(lang))] if choice.note_ja else []
        return self._enter(replace(state, draft=state.draft.merge(choice.draft)), choice.next, says)

    def _enter(self, state: State, target: str, says: list[Say]) -> Plan:
        lang = self.language(state)
        if target.startswith(FLOW_PREFIX):
            f = self.flows.flow(target[len(FLOW_PREFIX) :])
            if f is None:
                raise UnknownChoice()
            state = replace(state, draft=state.draft.merge(f.draft))
            target = f.start
        node = self.flows.node(target)
        if node is None:
            raise UnknownChoice()
        state = replace(state, node=node.id, chart=None, draft=state.draft.merge(node.draft))
        routes = state.draft.platforms if node.platform_routes else ()
        say = Say(node.text(lang), node.desks, node.guides, routes)
        if node.kind == "question":
            # The way back to the menu is always open (an allowed loop, added by the engine).
            own = [(c.id, c.label(lang)) for c in node.choices]
            return self._plan(state, [*says, say], [*own, self._menu(lang)])
        if node.kind == "answer":
            own = [(c.id, c.label(lang)) for c in node.choices]
            return self._plan(state, [*says, say], [*own, *self.footer(lang)])
        if node.kind == "free_text":
            prompt = Say(self.flows.text("privacy", lang) + "\n" + node.text(lang), node.desks, node.guides)
            return self._plan(state, [*says, prompt], [self._menu(lang)])
        if node.kind == "chart":
            return Plan(replace(state, chart=()), (*says, say), (), "chart")
        # handoff
        return Plan(state, (*says, say), (), "handoff")

    def handoff_done(self, plan: Plan) -> Plan:
        lang = self.language(plan.state)
        says = (*plan.says, Say(self.flows.text("handoff_ready", lang)))
        return self._plan(plan.state, says, [self._menu(lang), (END, self.flows.label("end", lang))])

    def chart_step(self, plan: Plan, step: ChartStep) -> Plan:
        """The next chart question, or its outcome with desks and guides, after `walk_chart`."""
        lang = self.language(plan.state)
        node = step.node
        state = replace(plan.state, chart=tuple(step.answers))
        if not step.done:
            options = [(CHART_PREFIX + o.id, o.text("label", lang)) for o in node.options]
            return self._plan(state, [*plan.says, Say(node.text("text", lang))], [*options, self._menu(lang)])
        text = "\n".join(x for x in (node.text("title", lang), node.text("guidance", lang)) if x)
        if step.also:  # あわせて: what else applies (goals combine)
            sep = self.flows.text("list_separator", lang)
            also = self.flows.text("also", lang).format(
                titles=sep.join(n.text("title", lang) for n in step.also)
            )
            text += "\n" + also
        return self._plan(state, [*plan.says, Say(text, node.desks, node.guides)], self.footer(lang))

    def free_text(self, state: State, result: TriageResult) -> Plan:
        """Suggest flows and desks for triaged free text. Urgent flags put their desks first."""
        lang = self.language(state)
        says: list[Say] = []
        urgent = tuple(dict.fromkeys(code for f in result.urgency for code in f.desk_codes))
        if urgent:
            says.append(Say(self.flows.text("urgent_intro", lang), urgent))
        suggested: list[str] = []
        for s in result.categories:
            for f in self.flows.flows:
                if s.code in f.triage_categories and f.id not in suggested:
                    suggested.append(f.id)
        suggested = suggested[:2]
        desks = tuple(d for d in result.desk_codes if d not in urgent)[:3]
        guides = tuple(result.guide_slugs[:2])
        intro = self.flows.text("triage_intro" if suggested else "triage_no_match", lang)
        says.append(Say(intro, desks, guides))
        choices = [
            *(self._flow_choice(f, lang) for f in suggested),
            self._flow_choice("chart", lang),
            self._flow_choice("free_text", lang, self.flows.label("retry_free_text", lang)),
            self._flow_choice("handoff", lang),
            self._menu(lang),
        ]
        # The hand-off carries what triage suggested, as the guided flows carry what their choices set: the
        # leading suggestions only (at least half the best score), so a weak side match does not prefill.
        best = max((s.score for s in result.categories), default=0.0)
        leading = tuple(s.code for s in result.categories if best > 0 and s.score * 2 >= best)
        suggested_categories = Draft(categories=leading[:LEADING_CATEGORIES])
        state = replace(state, node=TRIAGE, chart=None, draft=state.draft.merge(suggested_categories))
        return self._plan(state, says, choices)


# ---------------------------------------------------------------------------------------------------------
# Persistence records and ports
# ---------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChatSession:
    id: uuid.UUID
    token_digest: str
    state: dict[str, Any]
    flows_version: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    turns: int = 0
    version: int = 1


@dataclass(frozen=True, slots=True)
class ChatTurn:
    id: uuid.UUID
    session_id: uuid.UUID
    seq: int
    role: str  # "bot" | "user"
    payload: dict[str, Any]
    created_at: datetime


@dataclass(slots=True)
class ChatDraft:
    id: uuid.UUID
    session_id: uuid.UUID
    token_digest: str
    draft: Draft
    created_at: datetime
    expires_at: datetime
    claimed_at: datetime | None = None
    claimed_by: uuid.UUID | None = None


class ChatbotRepository(Protocol):
    async def add_session(self, s: ChatSession) -> None: ...

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None: ...

    async def save_session(self, s: ChatSession, *, expected_version: int) -> bool:
        """Store state, activity and expiry; False when another turn saved first."""

    async def add_turns(self, turns: Sequence[ChatTurn]) -> None: ...

    async def turns(self, session_id: uuid.UUID) -> list[ChatTurn]: ...

    async def add_draft(self, d: ChatDraft) -> None: ...

    async def claim_draft(self, token_digest: str, user_id: uuid.UUID, *, now: datetime) -> ChatDraft | None:
        """Mark the unclaimed, unexpired draft with this digest as claimed (atomically); None otherwise."""


class ChatbotTokens(Protocol):
    def new_opaque(self) -> str: ...

    def digest(self, opaque: str) -> str: ...


class ChartWalker(Protocol):
    async def walk_chart(self, answers: Sequence[str]) -> Any:
        """domain.guidance.GuidanceService.walk_chart: a result with `.step` (a ChartStep)."""


class DeskResolver(Protocol):
    async def resolve(self, codes: Sequence[str]) -> list[Desk]: ...


# ---------------------------------------------------------------------------------------------------------
# Use cases
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatbotPolicy:
    idle: timedelta = timedelta(minutes=30)  # sliding: each turn moves the expiry
    absolute: timedelta = timedelta(hours=4)  # …but never past this after the start
    claim_lifetime: timedelta = timedelta(hours=24)
    max_turns: int = 400  # user and bot turns together; bounds one transcript
    guide_url: str = "/guides/{slug}"  # the page of a guide on the public site


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class BotMessage:
    text: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class Handoff:
    claim_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TurnReply:
    messages: tuple[BotMessage, ...]
    choices: tuple[tuple[str, str], ...]
    expires_at: datetime
    handoff: Handoff | None = None
    lang: str = BASE  # the language of this turn (and of the session from now on)


@dataclass(frozen=True, slots=True)
class Opened:
    session_id: uuid.UUID
    token: str
    expires_at: datetime
    reply: TurnReply


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    role: str
    at: datetime
    text: str | None  # the user's choice label or the free-text placeholder
    messages: tuple[BotMessage, ...]
    choices: tuple[tuple[str, str], ...]
    handoff_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Transcript:
    session_id: uuid.UUID
    expires_at: datetime
    entries: tuple[TranscriptEntry, ...]
    choices: tuple[tuple[str, str], ...]
    lang: str = BASE


def _tel(phone: str) -> str | None:
    """A tel: link for numbers a phone can dial (#8103, 0570-003-110); None for anything else."""
    digits = phone.replace("-", "").replace(" ", "")
    if not re.fullmatch(r"#?[0-9]{3,15}", digits):
        return None
    return "tel:" + digits.replace("#", "%23")


def _message_payload(m: BotMessage) -> dict[str, Any]:
    return {"text": m.text, "links": [{"title": link.title, "url": link.url} for link in m.links]}


def _message_from(raw: Mapping[str, Any]) -> BotMessage:
    links = tuple(Link(str(x.get("title", "")), str(x.get("url", ""))) for x in raw.get("links") or ())
    return BotMessage(str(raw.get("text", "")), links)


class ChatbotService:
    def __init__(
        self,
        uow,  # type: ignore[no-untyped-def]
        flows: Flows,
        knowledge: Knowledge,
        guidance: ChartWalker,
        desks: DeskResolver,
        triage: TriageRules,
        tokens: ChatbotTokens,
        clock: Clock,
        session_throttle: Throttle,
        turn_throttle: Throttle,
        policy: ChatbotPolicy = ChatbotPolicy(),
    ) -> None:
        self.uow = uow
        self.flows = flows
        self.engine = Engine(flows)
        self.knowledge = knowledge
        self.guidance = guidance
        self.desks = desks
        self.triage = triage
        self.tokens = tokens
        self.clock = clock
        self.session_throttle = session_throttle
        self.turn_throttle = turn_throttle
        self.policy = policy

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    async def _throttle(throttle: Throttle, prefix: str, address: str | None, now: datetime) -> None:
        # Anonymous and public: the client address is the only handle (as for triage).
        if address:
            wait = await throttle.attempt([f"{prefix}:{address}"], now=now)
            if wait:
                raise RateLimited(wait, "too_many_requests")

    def _expiry(self, created_at: datetime, now: datetime) -> datetime:
        return min(now + self.policy.idle, created_at + self.policy.absolute)

    async def _live(self, uow, session_id: str, token: str | None, now: datetime) -> ChatSession:  # type: ignore[no-untyped-def]
        """The session if the token is its own and it has not expired. Every failure is the same 404, so a
        token never learns anything about another session, not even that it exists."""
        try:
            sid = uuid.UUID(session_id)
        except (ValueError, TypeError, AttributeError):
            raise NotFound(SESSION_NOT_FOUND) from None
        expected = self.tokens.digest(token) if token and len(token) <= 256 else ""
        found: ChatSession | None = await uow.chatbot.get_session(sid)
        if (
            found is None
            or not expected
            or not hmac.compare_digest(found.token_digest, expected)
            or found.expires_at <= now
        ):
            raise NotFound(SESSION_NOT_FOUND)
        return found

    async def _render(self, says: Sequence[Say], lang: str = BASE) -> tuple[BotMessage, ...]:
        codes = [c for s in says for c in s.desks]
        by_code = {d.code: d for d in await self.desks.resolve(codes)}
        out: list[BotMessage] = []
        for say in says:
            if say.text:
                out.append(BotMessage(say.text))
            for code in dict.fromkeys(say.desks):
                desk = by_code.get(code)
                if desk is not None:
                    out.append(self._desk_message(desk, lang))
            for code in say.platforms:
                platform = self.knowledge.platform(code)
                if platform is not None and platform.report_routes:
                    out.append(self._platform_message(platform, lang))
            guides = [g for g in (self.knowledge.guide(s) for s in dict.fromkeys(say.guides)) if g]
            if guides:
                out.append(
                    BotMessage(
                        self.flows.text("guides_intro", lang),
                        tuple(self._guide_link(g, lang) for g in guides),
                    )
                )
        return tuple(out)

    def _desk_message(self, desk: Desk, lang: str = BASE) -> BotMessage:
        t = self.flows.text
        # Desks have their name and what they handle in Japanese and English; further languages fall back
        # to English, which a foreign resident is likelier to read than Japanese.
        name = desk.name_ja if lang == BASE else desk.name_en or desk.name_ja
        handles = desk.handles_ja if lang == BASE else desk.handles_en or desk.handles_ja
        lines = [t("desk_name", lang).format(name=name), handles]
        if desk.phone:
            lines.append(t("desk_phone", lang).format(phone=desk.phone))
        if desk.hours_ja:
            lines.append(t("desk_hours", lang).format(hours=desk.hours_ja))
        links = []
        if desk.url:
            links.append(Link(name, desk.url))
        tel = _tel(desk.phone) if desk.phone else None
        if tel:
            links.append(Link(t("desk_call", lang).format(phone=desk.phone), tel))
        return BotMessage("\n".join(x for x in lines if x), tuple(links))

    def _platform_message(self, platform: Platform, lang: str = BASE) -> BotMessage:
        t = self.flows.text
        sep = t("list_separator", lang)

        def named(x: Any) -> str:
            return str(x.name_ja if lang == BASE else x.name_en or x.name_ja)

        names = sep.join(r.name_ja for r in platform.report_routes)
        links = tuple(Link(r.name_ja, r.url) for r in platform.report_routes if r.url)
        lines = [t("platform_desk", lang).format(name=named(platform)), names]
        # Designation under the 2025 platform act is per service: say which ones owe the 7-day answer.
        designated = platform.designated_services()
        others = [s for s in platform.services if not s.designated]
        if designated:
            lines.append(t("platform_designated", lang).format(services=sep.join(map(named, designated))))
        if designated and others:
            lines.append(t("platform_not_designated", lang).format(services=sep.join(map(named, others))))
        return BotMessage("\n".join(lines), links)

    def _guide_link(self, guide: Guide, lang: str = BASE) -> Link:
        return Link(
            guide.text("title", lang) or guide.title_ja, self.policy.guide_url.format(slug=guide.slug)
        )

    @staticmethod
    def _bot_payload(reply: TurnReply) -> dict[str, Any]:
        return {
            "messages": [_message_payload(m) for m in reply.messages],
            "choices": [{"id": cid, "label": label} for cid, label in reply.choices],
            # The claim token itself is shown once and never stored; the transcript keeps its expiry.
            "handoff": {"expires_at": reply.handoff.expires_at.isoformat()} if reply.handoff else None,
        }

    # -- use cases ---------------------------------------------------------------------------------

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the chatbot speaks (chatbot.yaml `languages`), Japanese first."""
        return self.flows.languages

    async def open(self, *, address: str | None, lang: str = BASE) -> Opened:
        """`lang` must be one of `languages` (the API layer chooses it from the request)."""
        if not self.flows.speaks(lang):
            raise ValidationFailed("unsupported_language", field="language")
        now = self.clock.now()
        await self._throttle(self.session_throttle, "chatbot_session", address, now)
        plan = self.engine.greeting(lang)
        token = self.tokens.new_opaque()
        session = ChatSession(
            id=uuid.uuid4(),
            token_digest=self.tokens.digest(token),
            state=plan.state.to_dict(),
            flows_version=self.flows.version,
            created_at=now,
            last_seen_at=now,
            expires_at=self._expiry(now, now),
            turns=1,
        )
        reply = TurnReply(await self._render(plan.says, lang), plan.choices, session.expires_at, lang=lang)
        turn = ChatTurn(uuid.uuid4(), session.id, 0, "bot", self._bot_payload(reply), now)
        async with self.uow() as uow:
            await uow.chatbot.add_session(session)
            await uow.chatbot.add_turns([turn])
            await uow.commit()
        return Opened(session.id, token, session.expires_at, reply)

    async def reply(
        self,
        session_id: str,
        token: str | None,
        *,
        choice_id: str | None = None,
        text: str | None = None,
        address: str | None,
    ) -> TurnReply:
        if (choice_id is None) == (text is None):
            raise ValidationFailed("choice_or_text_required", field="body")
        now = self.clock.now()
        await self._throttle(self.turn_throttle, "chatbot_turn", address, now)
        async with self.uow() as uow:
            session = await self._live(uow, session_id, token, now)
            if session.turns + 2 > self.policy.max_turns:
                raise InvalidState("chatbot_session_full")
            state = State.from_dict(session.state)
            if text is not None:
                if not text.strip() or len(text) > MAX_TEXT_CHARS:
                    raise ValidationFailed("invalid_text", field="text")
                plan = self.engine.free_text(state, self.triage.triage(text))
                user = {"text": FREE_TEXT_PLACEHOLDER, "free_text": True}
            else:
                cid = nfkc(choice_id or "")
                label = state.label_of(cid)
                plan = self.engine.choose(state, cid)
                user = {"choice_id": cid, "text": label}
            if plan.action == "chart":
                try:
                    walked = await self.guidance.walk_chart(list(plan.state.chart or ()))
                except InvalidChartAnswer:
                    raise UnknownChoice() from None
                plan = self.engine.chart_step(plan, walked.step)
            handoff = None
            if plan.action == "handoff":
                handoff = await self._handoff(uow, session, plan.state.draft, now)
                plan = self.engine.handoff_done(plan)
            expires_at = self._expiry(session.created_at, now)
            lang = self.engine.language(plan.state)
            reply = TurnReply(await self._render(plan.says, lang), plan.choices, expires_at, handoff, lang)
            version = session.version
            session.state = plan.state.to_dict()
            session.last_seen_at = now
            session.expires_at = expires_at
            seq = session.turns
            session.turns += 2
            session.version += 1
            if not await uow.chatbot.save_session(session, expected_version=version):
                raise Conflict("chatbot_turn_in_progress")
            await uow.chatbot.add_turns(
                [
                    ChatTurn(uuid.uuid4(), session.id, seq, "user", user, now),
                    ChatTurn(uuid.uuid4(), session.id, seq + 1, "bot", self._bot_payload(reply), now),
                ]
            )
            await uow.commit()
        return reply

    async def _handoff(self, uow, session: ChatSession, draft: Draft, now: datetime) -> Handoff:  # type: ignore[no-untyped-def]
        if not draft.desired_outcomes:
            # The intake needs at least one desired outcome; "advice first" is what a person who has only
            # asked to talk to someone wants.
            draft = replace(draft, desired_outcomes=self.flows.handoff_default_outcomes)
        claim = self.tokens.new_opaque()
        expires_at = now + self.policy.claim_lifetime
        await uow.chatbot.add_draft(
            ChatDraft(uuid.uuid4(), session.id, self.tokens.digest(claim), draft, now, expires_at)
        )
        return Handoff(claim, expires_at)

    async def transcript(self, session_id: str, token: str | None, *, address: str | None) -> Transcript:
        now = self.clock.now()
        await self._throttle(self.turn_throttle, "chatbot_turn", address, now)
        async with self.uow() as uow:
            session = await self._live(uow, session_id, token, now)
            turns = await uow.chatbot.turns(session.id)
        entries = []
        for t in turns:
            p = t.payload or {}
            handoff = p.get("handoff") or {}
            entries.append(
                TranscriptEntry(
                    role=t.role,
                    at=t.created_at,
                    text=p.get("text") if t.role == "user" else None,
                    messages=tuple(_message_from(m) for m in p.get("messages") or ()),
                    choices=tuple((str(c["id"]), str(c["label"])) for c in p.get("choices") or ()),
                    handoff_expires_at=datetime.fromisoformat(handoff["expires_at"]) if handoff else None,
                )
            )
        state = State.from_dict(session.state)
        return Transcript(
            session.id, session.expires_at, tuple(entries), state.offered, self.engine.language(state)
        )

    async def claim(self, actor: Actor, claim_token: str) -> Draft:
        """A signed-in consulter takes over the draft of a hand-off, once. Nothing is submitted for them."""
        ensure_consulter(actor)
        user_id = actor.require_user_id()
        if not claim_token or len(claim_token) > 256:
            raise ValidationFailed("invalid_or_expired_token", field="claim_token")
        now = self.clock.now()
        async with self.uow() as uow:
            found = await uow.chatbot.claim_draft(self.tokens.digest(claim_token), user_id, now=now)
            if found is None:
                raise ValidationFailed("invalid_or_expired_token", field="claim_token")
            await uow.commit()
        return found.draft  # type: ignore[no-any-return]
