"""Reference knowledge (categories, desks, platforms, the contact-desk chart, guides) as plain data.

Built from plain dicts so the domain stays free of YAML and I/O; `infra.knowledge` does the reading.
`Knowledge.from_raw` only shapes the data; `validate` checks that every reference resolves, so a broken
edit to a YAML file fails loudly at load time instead of sending a user to a desk that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

NATURES = frozenset({"illegal", "harmful", "other"})
DESK_KINDS = frozenset(
    {
        "police",
        "human_rights",
        "legal",
        "private_hotline",
        "mental_health",
        "children",
        "consumer",
        "platform",
        "government",
    }
)
LETTER_ANSWERS = frozenset({"yes", "no", "uncertain"})
NODE_KINDS = frozenset({"question", "outcome"})

# Codes are persisted with consultations and sent over the API, so they are kept to plain ASCII.
_CATEGORY_CODE = re.compile(r"^[A-Z]+(\.[A-Z][A-Z_]*)?$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class KnowledgeError(ValueError):
    """The reference data is malformed or inconsistent; `problems` lists every issue found."""

    code = "invalid_knowledge"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid knowledge")


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class CodeItem:
    code: str
    label_ja: str
    label_en: str


@dataclass(frozen=True)
class Category:
    code: str
    label_ja: str
    label_en: str
    nature: str
    description_ja: str
    description_en: str = ""
    parent: str | None = None  # None for a top group
    urgent: bool = False

    @property
    def is_group(self) -> bool:
        return self.parent is None


@dataclass(frozen=True)
class Desk:
    code: str
    name_ja: str
    name_en: str
    handles_ja: str
    handles_en: str
    phone: str | None
    url: str | None
    hours_ja: str | None
    kind: str
    categories: tuple[str, ...]  # empty = serves any topic
    emergency: bool
    last_verified: date | None
    uncertain: bool = False
    notes_ja: str | None = None

    @property
    def is_general(self) -> bool:
        return not self.categories


@dataclass(frozen=True)
class ReportRoute:
    name_ja: str
    url: str | None = None


@dataclass(frozen=True)
class Platform:
    code: str
    name_ja: str
    name_en: str
    operator: str
    report_routes: tuple[ReportRoute, ...]
    designated: bool
    designated_since: date | None
    accepts_standard_letters: str  # yes | no | uncertain
    notes_ja: str = ""
    uncertain: bool = False


@dataclass(frozen=True)
class ChartOption:
    id: str
    label_ja: str
    label_en: str
    next: str


@dataclass(frozen=True)
class ChartNode:
    id: str
    kind: str  # question | outcome
    text_ja: str = ""
    text_en: str = ""
    options: tuple[ChartOption, ...] = ()
    title_ja: str = ""
    title_en: str = ""
    guidance_ja: str = ""
    guidance_en: str = ""
    desks: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()

    @property
    def is_outcome(self) -> bool:
        return self.kind == "outcome"

    def option(self, option_id: str) -> ChartOption | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class Chart:
    version: str
    start: str
    nodes: tuple[ChartNode, ...]
    _index: Mapping[str, ChartNode] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # First occurrence wins; duplicates are reported by validate().
        index: dict[str, ChartNode] = {}
        for node in self.nodes:
            index.setdefault(node.id, node)
        object.__setattr__(self, "_index", index)

    def node(self, node_id: str) -> ChartNode | None:
        return self._index.get(node_id)


@dataclass(frozen=True)
class GuideStep:
    title_ja: str
    body_ja: str
    title_en: str = ""


@dataclass(frozen=True)
class Guide:
    slug: str
    title_ja: str
    title_en: str
    summary_ja: str
    steps: tuple[GuideStep, ...]
    related_desks: tuple[str, ...] = ()
    related_categories: tuple[str, ...] = ()
    summary_en: str = ""


# ---------------------------------------------------------------- parsing helpers


def _req(d: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, Mapping):
        raise KnowledgeError([f"{where}: expected a mapping, got {type(d).__name__}"])
    if key not in d or d[key] is None:
        raise KnowledgeError([f"{where}: missing '{key}'"])
    return d[key]


def _str(d: Mapping[str, Any], key: str, where: str) -> str:
    value = _req(d, key, where)
    if not isinstance(value, str | int):
        raise KnowledgeError([f"{where}: '{key}' must be a string"])
    return str(value)


def _opt_str(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return None if value is None else str(value)


def _list(d: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> list[Any]:
    value = _req(d, key, where) if required else (d.get(key) or [])
    if not isinstance(value, list):
        raise KnowledgeError([f"{where}: '{key}' must be a list"])
    return value


def _strs(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(d, key, where))


def _date(value: Any, where: str) -> date | None:
    # YAML turns 2025-04-30 into a date; dicts built in code may hold the ISO string.
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise KnowledgeError([f"{where}: '{value}' is not an ISO date"]) from None


def _letters(value: Any) -> str:
    # Unquoted yes/no in YAML 1.1 become booleans.
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def _code_item(d: Mapping[str, Any], where: str) -> CodeItem:
    return CodeItem(_str(d, "code", where), _str(d, "label_ja", where), _str(d, "label_en", where))


def _category(d: Mapping[str, Any], where: str, parent: str | None) -> Category:
    return Category(
        code=_str(d, "code", where),
        label_ja=_str(d, "label_ja", where),
        label_en=_str(d, "label_en", where),
        nature=_str(d, "nature", where),
        description_ja=_str(d, "description_ja", where),
        description_en=str(d.get("description_en") or ""),
        parent=parent,
        urgent=bool(d.get("urgent", False)),
    )


def _desk(d: Mapping[str, Any], where: str) -> Desk:
    return Desk(
        code=_str(d, "code", where),
        name_ja=_str(d, "name_ja", where),
        name_en=_str(d, "name_en", where),
        handles_ja=_str(d, "handles_ja", where),
        handles_en=_str(d, "handles_en", where),
        phone=_opt_str(d, "phone"),
        url=_opt_str(d, "url"),
        hours_ja=_opt_str(d, "hours_ja"),
        kind=_str(d, "kind", where),
        categories=_strs(d, "categories", where),
        emergency=bool(d.get("emergency", False)),
        last_verified=_date(d.get("last_verified"), where),
        uncertain=bool(d.get("uncertain", False)),
        notes_ja=_opt_str(d, "notes_ja"),
    )


def _platform(d: Mapping[str, Any], where: str) -> Platform:
    routes = tuple(
        ReportRoute(name_ja=_str(r, "name_ja", f"{where}.report_routes[{i}]"), url=_opt_str(r, "url"))
        for i, r in enumerate(_list(d, "report_routes", where))
    )
    return Platform(
        code=_str(d, "code", where),
        name_ja=_str(d, "name_ja", where),
        name_en=_str(d, "name_en", where),
        operator=_str(d, "operator", where),
        report_routes=routes,
        designated=bool(d.get("designated", False)),
        designated_since=_date(d.get("designated_since"), where),
        accepts_standard_letters=_letters(d.get("accepts_standard_letters", "uncertain")),
        notes_ja=str(d.get("notes_ja") or ""),
        uncertain=bool(d.get("uncertain", False)),
    )


def _chart_node(d: Mapping[str, Any], where: str) -> ChartNode:
    node_id = _str(d, "id", where)
    where = f"chart.{node_id}"
    options = tuple(
        ChartOption(
            id=_str(o, "id", f"{where}.options[{i}]"),
            label_ja=_str(o, "label_ja", f"{where}.options[{i}]"),
            label_en=_str(o, "label_en", f"{where}.options[{i}]"),
            next=_str(o, "next", f"{where}.options[{i}]"),
        )
        for i, o in enumerate(_list(d, "options", where))
    )
    return ChartNode(
        id=node_id,
        kind=_str(d, "kind", where),
        text_ja=str(d.get("text_ja") or ""),
        text_en=str(d.get("text_en") or ""),
        options=options,
        title_ja=str(d.get("title_ja") or ""),
        title_en=str(d.get("title_en") or ""),
        guidance_ja=str(d.get("guidance_ja") or ""),
        guidance_en=str(d.get("guidance_en") or ""),
        desks=_strs(d, "desks", where),
        guides=_strs(d, "guides", where),
    )


def chart_from_raw(raw: Mapping[str, Any]) -> Chart:
    return Chart(
        version=_str(raw, "version", "chart"),
        start=_str(raw, "start", "chart"),
        nodes=tuple(
            _chart_node(n, f"chart.nodes[{i}]")
            for i, n in enumerate(_list(raw, "nodes", "chart", required=True))
        ),
    )


def _guide(d: Mapping[str, Any], where: str) -> Guide:
    slug = _str(d, "slug", where)
    where = f"guides.{slug}"
    return Guide(
        slug=slug,
        title_ja=_str(d, "title_ja", where),
        title_en=_str(d, "title_en", where),
        summary_ja=_str(d, "summary_ja", where),
        summary_en=str(d.get("summary_en") or ""),
        steps=tuple(
            GuideStep(
                title_ja=_str(s, "title_ja", f"{where}.steps[{i}]"),
                body_ja=_str(s, "body_ja", f"{where}.steps[{i}]"),
                title_en=str(s.get("title_en") or ""),
            )
            for i, s in enumerate(_list(d, "steps", where, required=True))
        ),
        related_desks=_strs(d, "related_desks", where),
        related_categories=_strs(d, "related_categories", where),
    )


def _first_by(items: tuple[Any, ...], attr: str) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for item in items:
        index.setdefault(getattr(item, attr), item)
    return index


# ---------------------------------------------------------------- the aggregate


@dataclass(frozen=True)
class Knowledge:
    categories: tuple[Category, ...]  # groups and leaves, in file order
    desks: tuple[Desk, ...]
    platforms: tuple[Platform, ...]
    chart: Chart
    guides: tuple[Guide, ...]
    intake: Mapping[str, tuple[CodeItem, ...]]  # relations, desired_outcomes, channels, victim_types
    _categories: Mapping[str, Category] = field(default_factory=dict, repr=False, compare=False)
    _desks: Mapping[str, Desk] = field(default_factory=dict, repr=False, compare=False)
    _platforms: Mapping[str, Platform] = field(default_factory=dict, repr=False, compare=False)
    _guides: Mapping[str, Guide] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_categories", _first_by(self.categories, "code"))
        object.__setattr__(self, "_desks", _first_by(self.desks, "code"))
        object.__setattr__(self, "_platforms", _first_by(self.platforms, "code"))
        object.__setattr__(self, "_guides", _first_by(self.guides, "slug"))

    @classmethod
    def from_raw(cls, raw: Mapping[str, Mapping[str, Any]]) -> Knowledge:
        """Build from the parsed YAML documents, keyed by file stem (categories, desks, ...)."""
        missing = [
            k for k in ("categories", "intake", "desks", "platforms", "chart", "guides") if k not in raw
        ]
        if missing:
            raise KnowledgeError([f"missing knowledge file(s): {', '.join(missing)}"])

        categories: list[Category] = []
        for i, group in enumerate(_list(raw["categories"], "groups", "categories", required=True)):
            where = f"categories.groups[{i}]"
            top = _category(group, where, parent=None)
            categories.append(top)
            for j, leaf in enumerate(_list(group, "children", where)):
                categories.append(_category(leaf, f"{where}.children[{j}]", parent=top.code))

        intake_raw = raw["intake"]
        if not isinstance(intake_raw, Mapping):
            raise KnowledgeError(["intake: expected a mapping of code lists"])
        intake = {
            name: tuple(_code_item(item, f"intake.{name}[{i}]") for i, item in enumerate(items or []))
            for name, items in intake_raw.items()
        }

        return cls(
            categories=tuple(categories),
            desks=tuple(
                _desk(d, f"desks[{i}]")
                for i, d in enumerate(_list(raw["desks"], "desks", "desks", required=True))
            ),
            platforms=tuple(
                _platform(p, f"platforms[{i}]")
                for i, p in enumerate(_list(raw["platforms"], "platforms", "platforms", required=True))
            ),
            chart=chart_from_raw(raw["chart"]),
            guides=tuple(
                _guide(g, f"guides[{i}]")
                for i, g in enumerate(_list(raw["guides"], "guides", "guides", required=True))
            ),
            intake=intake,
        )

    # ---- lookups

    def category(self, code: str) -> Category | None:
        return self._categories.get(code)

    def desk(self, code: str) -> Desk | None:
        return self._desks.get(code)

    def platform(self, code: str) -> Platform | None:
        return self._platforms.get(code)

    def guide(self, slug: str) -> Guide | None:
        return self._guides.get(slug)

    def category_tree(self) -> list[tuple[Category, list[Category]]]:
        """Top groups in file order, each with its leaves."""
        return [
            (g, [c for c in self.categories if c.parent == g.code]) for g in self.categories if g.is_group
        ]

    def leaf_categories(self) -> list[Category]:
        return [c for c in self.categories if not c.is_group]

    def emergency_desks(self) -> list[Desk]:
        return [d for d in self.desks if d.emergency]

    def code_list(self, name: str) -> tuple[CodeItem, ...]:
        return self.intake.get(name, ())


# ---------------------------------------------------------------- validation


def _duplicates(values: list[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for v in values:
        if v in seen and v not in dups:
            dups.append(v)
        seen.add(v)
    return dups


def chart_problems(
    chart: Chart, desk_codes: set[str] | None = None, guide_slugs: set[str] | None = None
) -> list[str]:
    """Structural problems of a chart; desk/guide references are checked only when the sets are given."""
    problems: list[str] = []
    for dup in _duplicates([n.id for n in chart.nodes]):
        problems.append(f"chart: duplicate node id '{dup}'")
    if chart.node(chart.start) is None:
        problems.append(f"chart: start node '{chart.start}' does not exist")

    for node in chart.nodes:
        where = f"chart.{node.id}"
        if node.kind not in NODE_KINDS:
            problems.append(f"{where}: unknown kind '{node.kind}'")
            continue
        if node.kind == "question":
            if not node.text_ja:
                problems.append(f"{where}: question without text_ja")
            if not node.options:
                problems.append(f"{where}: question has no options (dead end)")
            for dup in _duplicates([o.id for o in node.options]):
                problems.append(f"{where}: duplicate option id '{dup}'")
            for opt in node.options:
                if not opt.label_ja:
                    problems.append(f"{where}.{opt.id}: option without label_ja")
                if chart.node(opt.next) is None:
                    problems.append(f"{where}.{opt.id}: points to unknown node '{opt.next}'")
            if node.desks or node.guides:
                problems.append(f"{where}: only outcomes carry desks and guides")
        else:
            if node.options:
                problems.append(f"{where}: outcome must not have options")
            if not node.title_ja:
                problems.append(f"{where}: outcome without title_ja")
            if not node.desks:
                problems.append(f"{where}: outcome has no desk")
            if desk_codes is not None:
                problems += [f"{where}: unknown desk '{d}'" for d in node.desks if d not in desk_codes]
            if guide_slugs is not None:
                problems += [f"{where}: unknown guide '{g}'" for g in node.guides if g not in guide_slugs]

    # Cycles and reachability: a walk must always end at an outcome, and every node must be usable.
    white, grey, black = 0, 1, 2
    colour = {n.id: white for n in chart.nodes}
    cycles: list[str] = []

    def visit(node_id: str, trail: list[str]) -> None:
        colour[node_id] = grey
        node = chart.node(node_id)
        for opt in node.options if node else ():
            nxt = opt.next
            if nxt not in colour:
                continue
            if colour[nxt] == grey:
                loop = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node_id, nxt]
                cycles.append(" -> ".join(loop))
            elif colour[nxt] == white:
                visit(nxt, trail + [nxt])
        colour[node_id] = black

    if chart.start in colour:
        visit(chart.start, [chart.start])
    problems += [f"chart: cycle {c}" for c in cycles]
    if chart.start in colour:
        problems += [
            f"chart: node '{nid}' is unreachable from '{chart.start}'"
            for nid, c in colour.items()
            if c == white
        ]
    return problems


def is_https_url(url: str) -> bool:
    """A desk's page is shown to anonymous people as a link to follow: https only, to a named host, with no
    user part (`https://www.npa.go.jp@attacker.example/` reads like the police and goes elsewhere)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme == "https" and bool(host) and "@" not in parts.netloc and url == url.strip()


def knowledge_problems(k: Knowledge) -> list[str]:
    problems: list[str] = []

    # categories
    for dup in _duplicates([c.code for c in k.categories]):
        problems.append(f"categories: duplicate code '{dup}'")
    category_codes = {c.code for c in k.categories}
    for c in k.categories:
        where = f"categories.{c.code}"
        if not _CATEGORY_CODE.match(c.code):
            problems.append(f"{where}: malformed code")
        elif c.parent is not None and not c.code.startswith(c.parent + "."):
            problems.append(f"{where}: code must start with its group '{c.parent}.'")
        elif c.parent is None and "." in c.code:
            problems.append(f"{where}: a top group code has no dot")
        if c.nature not in NATURES:
            problems.append(f"{where}: unknown nature '{c.nature}'")
        if not c.label_ja.strip() or not c.label_en.strip():
            problems.append(f"{where}: empty label")

    # intake code lists
    for name, items in k.intake.items():
        for dup in _duplicates([i.code for i in items]):
            problems.append(f"intake.{name}: duplicate code '{dup}'")
        for item in items:
            if not _SNAKE.match(item.code):
                problems.append(f"intake.{name}.{item.code}: malformed code")
            if not item.label_ja.strip() or not item.label_en.strip():
                problems.append(f"intake.{name}.{item.code}: empty label")

    # desks
    for dup in _duplicates([d.code for d in k.desks]):
        problems.append(f"desks: duplicate code '{dup}'")
    for d in k.desks:
        where = f"desks.{d.code}"
        if not _SNAKE.match(d.code):
            problems.append(f"{where}: malformed code")
        if d.kind not in DESK_KINDS:
            problems.append(f"{where}: unknown kind '{d.kind}'")
        if not d.name_ja.strip() or not d.name_en.strip():
            problems.append(f"{where}: empty name")
        problems += [f"{where}: unknown category '{c}'" for c in d.categories if c not in category_codes]
        if d.url is not None and not is_https_url(d.url):
            problems.append(f"{where}: url must be https://")
        for dup in _duplicates(list(d.categories)):
            problems.append(f"{where}: category '{dup}' listed twice")

    # platforms
    for dup in _duplicates([p.code for p in k.platforms]):
        problems.append(f"platforms: duplicate code '{dup}'")
    for p in k.platforms:
        where = f"platforms.{p.code}"
        if not _SNAKE.match(p.code):
            problems.append(f"{where}: malformed code")
        if p.accepts_standard_letters not in LETTER_ANSWERS:
            problems.append(f"{where}: accepts_standard_letters must be yes, no or uncertain")
        if p.designated_since is not None and not p.designated:
            problems.append(f"{where}: designated_since set on a platform that is not designated")
        if not p.report_routes:
            problems.append(f"{where}: no report route")

    # guides
    desk_codes = {d.code for d in k.desks}
    guide_slugs = {g.slug for g in k.guides}
    for dup in _duplicates([g.slug for g in k.guides]):
        problems.append(f"guides: duplicate slug '{dup}'")
    for g in k.guides:
        where = f"guides.{g.slug}"
        if not _KEBAB.match(g.slug):
            problems.append(f"{where}: slug must be kebab-case")
        if not g.steps:
            problems.append(f"{where}: no steps")
        problems += [f"{where}: unknown desk '{d}'" for d in g.related_desks if d not in desk_codes]
        problems += [
            f"{where}: unknown category '{c}'" for c in g.related_categories if c not in category_codes
        ]

    problems += chart_problems(k.chart, desk_codes, guide_slugs)
    return problems


def validate(knowledge: Knowledge) -> None:
    """Raise KnowledgeError listing every problem, or return None when the data is consistent."""
    problems = knowledge_problems(knowledge)
    if problems:
        raise KnowledgeError(problems)


def desk_from_dict(d: Mapping[str, Any]) -> Desk:
    """A desk from stored or submitted fields (same rules as the reference file)."""
    return _desk(d, f"desk {d.get('code', '?')}")


def desk_to_dict(desk: Desk) -> dict[str, Any]:
    return {
        "code": desk.code,
        "name_ja": desk.name_ja,
        "name_en": desk.name_en,
        "handles_ja": desk.handles_ja,
        "handles_en": desk.handles_en,
        "phone": desk.phone,
        "url": desk.url,
        "hours_ja": desk.hours_ja,
        "kind": desk.kind,
        "categories": list(desk.categories),
        "emergency": desk.emergency,
        "last_verified": desk.last_verified.isoformat() if desk.last_verified else None,
        "uncertain": desk.uncertain,
        "notes_ja": desk.notes_ja,
    }
