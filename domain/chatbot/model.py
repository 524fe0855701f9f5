"""The flow model of the homepage chatbot: flows, nodes, choices and the draft they collect, as plain
immutable objects. infra/chatbot_loader.py builds them from domain/knowledge/chatbot.yaml."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.languages import BASE, pick

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
