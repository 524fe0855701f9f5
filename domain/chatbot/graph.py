"""The checks of the flows that a schema cannot express: references into the knowledge, ids, reachability,
cycles and languages. Pure functions over the model."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from domain.chatbot.model import (
    ENGINE_KINDS,
    FLOW_PREFIX,
    NODE_KINDS,
    RESERVED,
    SPECIAL_FLOWS,
    Choice,
    Draft,
    FlowError,
    Flows,
    Node,
)
from domain.knowledge_model import Knowledge
from domain.languages import language_list_problems, text_problems

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


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
    repeated: list[str] = []
    for v in values:
        if v in seen:
            repeated.append(v)
        seen.add(v)
    return repeated


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
