"""Reference knowledge (categories, desks, platforms, the contact-desk chart, guides) as plain data.

The domain stays free of YAML and I/O: `infra.knowledge` reads the files and infra/knowledge_schema.py
checks their shape (pydantic) and builds these objects. `validate` checks what a schema cannot: that every
reference resolves, the enumerations, the chart's graph, the languages, so a broken edit to a YAML file
fails loudly at load time instead of sending a user to a desk that does not exist.
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
# What a person may want from the chart; an outcome says which it serves, so a test can prove that every
# topic reaches every goal that applies to it (directly or through "あわせて").
CHART_GOALS = frozenset(
    {"listen", "compensation", "police", "removal_self", "removal_delegate", "advice", "report"}
)
# Whose the node is: the government flowchart's, or the centre's own addition (issue 14 item 18).
CHART_ORIGINS = frozenset({"government", "centre"})

# Codes are persisted with consultations and sent over the API, so they are kept to plain ASCII.
_CATEGORY_CODE = re.compile(r"^[A-Z]+(\.[A-Z][A-Z_]*)?$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}$")


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
class DeskSource:
    """One fact about a desk, where it was checked and when. `checked` is None for a fact nobody could
    confirm; its desk is then `uncertain` and says in notes_ja what is unknown."""

    fact: str
    url: str
    checked: date | None
    basis: str = ""


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
    sources: tuple[DeskSource, ...] = ()
    languages: tuple[str, ...] = ()  # ISO 639 codes of languages served besides Japanese

    @property
    def is_general(self) -> bool:
        return not self.categories


@dataclass(frozen=True)
class ReportRoute:
    name_ja: str
    url: str | None = None


@dataclass(frozen=True)
class PlatformService:
    """One service of an operator. Designation under the 2025 platform act is per service (MIC designated
    LINEオープンチャット and LINE VOOM, not LINE's 1:1 talk; Yahoo!知恵袋, not Yahoo! search)."""

    code: str
    name_ja: str
    name_en: str
    designated: bool = False
    designated_since: date | None = None


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
    services: tuple[PlatformService, ...] = ()
    kind: str = "other"  # a code of intake.platform_kinds (sns, anonymous_board, search, video, blog, ...)

    def designated_services(self) -> tuple[PlatformService, ...]:
        return tuple(s for s in self.services if s.designated)

    def service(self, code: str) -> PlatformService | None:
        return next((s for s in self.services if s.code == code), None)


def _no_texts() -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class ChartOption:
    id: str
    label_ja: str
    label_en: str
    next: str
    # Every `<field>_<language>` text of the entry, so a further language is only data (see `text`).
    texts: Mapping[str, str] = field(default_factory=_no_texts, compare=False, hash=False, repr=False)

    def text(self, name: str, lang: str) -> str:
        return _pick(self.texts, name, lang)


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
    # A question with `multiple` lets the walk choose several of its options at once (goals combine:
    # remove the post *and* claim damages); all its options lead to outcomes.
    multiple: bool = False
    # An outcome's "あわせて": other outcomes that usually apply as well.
    also: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()
    origin: str = "centre"
    texts: Mapping[str, str] = field(default_factory=_no_texts, compare=False, hash=False, repr=False)

    def text(self, name: str, lang: str) -> str:
        return _pick(self.texts, name, lang)

    @property
    def is_outcome(self) -> bool:
        return self.kind == "outcome"

    def option(self, option_id: str) -> ChartOption | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class ChartSource:
    """Which government flowchart the chart follows, where it was read and when."""

    title_ja: str
    publisher_ja: str
    urls: tuple[str, ...]
    checked: date | None
    edition: str | None = None  # None: the edition date could not be read from the sources
    notes_ja: str = ""


@dataclass(frozen=True)
class Chart:
    version: str
    start: str
    nodes: tuple[ChartNode, ...]
    source: ChartSource | None = None
    languages: tuple[str, ...] = ("ja",)
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
    body_en: str = ""
    texts: Mapping[str, str] = field(default_factory=_no_texts, compare=False, hash=False, repr=False)

    def text(self, name: str, lang: str) -> str:
        return _pick(self.texts, name, lang)


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
    texts: Mapping[str, str] = field(default_factory=_no_texts, compare=False, hash=False, repr=False)

    def text(self, name: str, lang: str) -> str:
        return _pick(self.texts, name, lang)


# ---------------------------------------------------------------- texts and the stored desk's fields


def _pick(texts: Mapping[str, str], name: str, lang: str) -> str:
    """The text in `lang`, else Japanese (the language every entry has)."""
    return texts.get(f"{name}_{lang}") or texts.get(f"{name}_ja", "")


def _missing_languages(
    texts: Mapping[str, str], names: tuple[str, ...], languages: tuple[str, ...]
) -> list[str]:
    return [
        f"{n}_{lang}" for n in names if f"{n}_ja" in texts for lang in languages if f"{n}_{lang}" not in texts
    ]


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
    guide_languages: tuple[str, ...] = ("ja",)
    _categories: Mapping[str, Category] = field(default_factory=dict, repr=False, compare=False)
    _desks: Mapping[str, Desk] = field(default_factory=dict, repr=False, compare=False)
    _platforms: Mapping[str, Platform] = field(default_factory=dict, repr=False, compare=False)
    _guides: Mapping[str, Guide] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_categories", _first_by(self.categories, "code"))
        object.__setattr__(self, "_desks", _first_by(self.desks, "code"))
        object.__setattr__(self, "_platforms", _first_by(self.platforms, "code"))
        object.__setattr__(self, "_guides", _first_by(self.guides, "slug"))

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
        if node.origin not in CHART_ORIGINS:
            problems.append(f"{where}: origin must be government or centre")
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
            if node.also or node.goals:
                problems.append(f"{where}: only outcomes carry also and goals")
            if node.multiple:
                for opt in node.options:
                    target = chart.node(opt.next)
                    if target is not None and not target.is_outcome:
                        problems.append(
                            f"{where}.{opt.id}: an option of a multiple question must end the walk"
                        )
        else:
            if node.options:
                problems.append(f"{where}: outcome must not have options")
            if not node.title_ja:
                problems.append(f"{where}: outcome without title_ja")
            if not node.desks:
                problems.append(f"{where}: outcome has no desk")
            for other in node.also:
                target = chart.node(other)
                if target is None or not target.is_outcome or other == node.id:
                    problems.append(f"{where}: also '{other}' is not another outcome")
            problems += [f"{where}: unknown goal '{g}'" for g in node.goals if g not in CHART_GOALS]
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
        problems += [f"{where}: malformed language code '{x}'" for x in d.languages if not _LANG.match(x)]
        # Reference desks say what was checked, where and when (issue 14 item 14).
        if not d.sources:
            problems.append(f"{where}: no source (fact, url, checked)")
        for s in d.sources:
            if not s.url.startswith(("https://", "http://")):
                problems.append(f"{where}: source url '{s.url}' is not a web address")
        unchecked = [s for s in d.sources if s.checked is None]
        if unchecked and not (d.uncertain and d.notes_ja):
            problems.append(f"{where}: an unconfirmed source needs uncertain: true and notes_ja saying what")
        if d.uncertain and d.sources and not unchecked:
            problems.append(f"{where}: uncertain, but every source is checked (say which fact is not)")

    # platforms
    for dup in _duplicates([p.code for p in k.platforms]):
        problems.append(f"platforms: duplicate code '{dup}'")
    platform_kinds = {i.code for i in k.intake.get("platform_kinds", ())}
    for p in k.platforms:
        where = f"platforms.{p.code}"
        if not _SNAKE.match(p.code):
            problems.append(f"{where}: malformed code")
        if p.kind not in platform_kinds:
            problems.append(f"{where}: kind '{p.kind}' is not in intake.platform_kinds")
        if p.accepts_standard_letters not in LETTER_ANSWERS:
            problems.append(f"{where}: accepts_standard_letters must be yes, no or uncertain")
        if p.designated_since is not None and not p.designated:
            problems.append(f"{where}: designated_since set on a platform that is not designated")
        if not p.report_routes:
            problems.append(f"{where}: no report route")
        # Designation is per service: a designated operator must say which of its services are.
        if p.designated and not p.designated_services():
            problems.append(f"{where}: designated, but no designated service is listed")
        for dup in _duplicates([sv.code for sv in p.services]):
            problems.append(f"{where}: duplicate service '{dup}'")
        for sv in p.services:
            if not _SNAKE.match(sv.code):
                problems.append(f"{where}.{sv.code}: malformed service code")
            if sv.designated != (sv.designated_since is not None):
                problems.append(
                    f"{where}.{sv.code}: a designated service needs designated_since, and only it"
                )

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
    # Declared languages: no missing text (issue 14 item 23). A further language is only data.
    for lang in {*k.guide_languages, *k.chart.languages}:
        if not _LANG.match(lang):
            problems.append(f"languages: malformed language code '{lang}'")
    for g in k.guides:
        miss = _missing_languages(g.texts, ("title", "summary"), k.guide_languages)
        for i, step in enumerate(g.steps):
            miss += [
                f"steps[{i}].{m}"
                for m in _missing_languages(step.texts, ("title", "body"), k.guide_languages)
            ]
        problems += [f"guides.{g.slug}: missing {m}" for m in miss]
    for node in k.chart.nodes:
        miss = _missing_languages(node.texts, ("text", "title", "guidance"), k.chart.languages)
        for o in node.options:
            miss += [f"{o.id}.{m}" for m in _missing_languages(o.texts, ("label",), k.chart.languages)]
        problems += [f"chart.{node.id}: missing {m}" for m in miss]
    # The reference chart says which government version it follows (issue 14 item 18).
    if k.chart.source is None:
        problems.append("chart: no source (which government flowchart, where, when)")
    elif not k.chart.source.urls:
        problems.append("chart.source: no url")
    return problems


def validate(knowledge: Knowledge) -> None:
    """Raise KnowledgeError listing every problem, or return None when the data is consistent."""
    problems = knowledge_problems(knowledge)
    if problems:
        raise KnowledgeError(problems)
