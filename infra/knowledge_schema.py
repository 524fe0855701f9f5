"""The shape of the reference knowledge files (categories, intake, desks, platforms, chart, guides) as pydantic
schemas, and the domain's plain objects (domain/knowledge_model.py) built from them.

Unknown keys are refused and nothing is coerced (infra/yaml_data.Schema). Every required text is a
non-blank string, as written. What a schema cannot say (codes that resolve, enumerations, the chart's
graph, the languages every text exists in) is domain/knowledge_model.knowledge_problems.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, TypeAdapter, ValidationError

from domain.knowledge_model import (
    Category,
    Chart,
    ChartNode,
    ChartOption,
    ChartSource,
    CodeItem,
    Desk,
    DeskSource,
    Guide,
    GuideStep,
    Knowledge,
    KnowledgeError,
    Platform,
    PlatformService,
    ReportRoute,
)
from infra.yaml_data import Schema, Texted, schema_problems

STEMS = ("categories", "intake", "desks", "platforms", "chart", "guides")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value


def _iso_date(value: Any) -> Any:
    # YAML turns 2025-04-30 into a date; a stored desk holds the ISO string.
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an ISO date") from None
    return value


def _letters(value: Any) -> Any:
    # A YAML 1.1 reader turns an unquoted yes/no into a boolean.
    return {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value


# A required text: YAML 1.1 reads `No`, `yes`, `on` as booleans and `1` as a number; such a value in a label
# is a mistake in the data (quote it), never something to stringify.
Text = Annotated[str, AfterValidator(_not_blank)]
Texts = list[Text]
Day = Annotated[date | None, BeforeValidator(_iso_date)]


class _Texted(Texted):
    texts: dict[str, Text] = {}


class CodeItemDoc(Schema):
    code: Text
    label_ja: Text
    label_en: Text

    def model(self) -> CodeItem:
        return CodeItem(self.code, self.label_ja, self.label_en)


class CategoryDoc(Schema):
    code: Text
    label_ja: Text
    label_en: Text
    nature: Text
    description_ja: Text
    description_en: Text | None = None
    urgent: bool = False

    def model(self, parent: str | None) -> Category:
        return Category(
            code=self.code,
            label_ja=self.label_ja,
            label_en=self.label_en,
            nature=self.nature,
            description_ja=self.description_ja,
            description_en=self.description_en or "",
            parent=parent,
            urgent=self.urgent,
        )


class GroupDoc(CategoryDoc):
    children: list[CategoryDoc] = []


class CategoriesDoc(Schema):
    groups: list[GroupDoc]

    def model(self) -> tuple[Category, ...]:
        out: list[Category] = []
        for group in self.groups:
            top = group.model(None)
            out += [top, *(c.model(top.code) for c in group.children)]
        return tuple(out)


class DeskSourceDoc(Schema):
    fact: Text
    url: Text
    checked: Day = None
    basis: Text | None = None

    def model(self) -> DeskSource:
        return DeskSource(self.fact, self.url, self.checked, self.basis or "")


class DeskDoc(Schema):
    code: Text
    name_ja: Text
    name_en: Text
    handles_ja: Text
    handles_en: Text
    phone: Text | None = None
    url: Text | None = None
    hours_ja: Text | None = None
    kind: Text
    categories: Texts = []
    emergency: bool = False
    last_verified: Day = None  # a stored desk may carry it; the file records `checked` per source
    uncertain: bool = False
    notes_ja: Text | None = None
    sources: list[DeskSourceDoc] = []
    languages: Texts = []

    def model(self) -> Desk:
        sources = tuple(s.model() for s in self.sources)
        checked = [s.checked for s in sources if s.checked is not None]
        return Desk(
            code=self.code,
            name_ja=self.name_ja,
            name_en=self.name_en,
            handles_ja=self.handles_ja,
            handles_en=self.handles_en,
            phone=self.phone,
            url=self.url,
            hours_ja=self.hours_ja,
            kind=self.kind,
            categories=tuple(self.categories),
            emergency=self.emergency,
            # last_verified is the latest of the sources' checks.
            last_verified=self.last_verified or (max(checked) if checked else None),
            uncertain=self.uncertain,
            notes_ja=self.notes_ja,
            sources=sources,
            languages=tuple(self.languages),
        )


class DesksDoc(Schema):
    desks: list[DeskDoc]


class ReportRouteDoc(Schema):
    name_ja: Text
    url: Text | None = None


class PlatformServiceDoc(Schema):
    code: Text
    name_ja: Text
    name_en: Text
    designated: bool = False
    designated_since: Day = None

    def model(self) -> PlatformService:
        return PlatformService(self.code, self.name_ja, self.name_en, self.designated, self.designated_since)


class PlatformDoc(Schema):
    code: Text
    name_ja: Text
    name_en: Text
    operator: Text
    kind: Text = "other"
    report_routes: list[ReportRouteDoc] = []
    services: list[PlatformServiceDoc] = []
    designated: bool = False
    designated_since: Day = None
    accepts_standard_letters: Annotated[str, BeforeValidator(_letters)] = "uncertain"
    notes_ja: Text | None = None
    uncertain: bool = False

    def model(self) -> Platform:
        services = tuple(s.model() for s in self.services)
        since = [s.designated_since for s in services if s.designated and s.designated_since]
        return Platform(
            code=self.code,
            name_ja=self.name_ja,
            name_en=self.name_en,
            operator=self.operator,
            report_routes=tuple(ReportRoute(r.name_ja, r.url) for r in self.report_routes),
            # With services listed, the platform is "designated" when any of its services is, since the first.
            designated=any(s.designated for s in services) if services else self.designated,
            designated_since=min(since) if since else self.designated_since,
            accepts_standard_letters=self.accepts_standard_letters,
            notes_ja=self.notes_ja or "",
            uncertain=self.uncertain,
            services=services,
            kind=self.kind,
        )


class PlatformsDoc(Schema):
    platforms: list[PlatformDoc]


class ChartOptionDoc(_Texted):
    TEXT_NAMES = ("label",)
    id: Text
    label_ja: Text
    label_en: Text
    next: Text

    def model(self) -> ChartOption:
        return ChartOption(self.id, self.label_ja, self.label_en, self.next, dict(self.texts))


class ChartNodeDoc(_Texted):
    TEXT_NAMES = ("text", "title", "guidance")
    id: Text
    kind: Text
    origin: Text = "centre"
    text_ja: Text | None = None
    text_en: Text | None = None
    options: list[ChartOptionDoc] = []
    title_ja: Text | None = None
    title_en: Text | None = None
    guidance_ja: Text | None = None
    guidance_en: Text | None = None
    desks: Texts = []
    guides: Texts = []
    multiple: bool = False
    also: Texts = []
    goals: Texts = []

    def model(self) -> ChartNode:
        return ChartNode(
            id=self.id,
            kind=self.kind,
            text_ja=self.text_ja or "",
            text_en=self.text_en or "",
            options=tuple(o.model() for o in self.options),
            title_ja=self.title_ja or "",
            title_en=self.title_en or "",
            guidance_ja=self.guidance_ja or "",
            guidance_en=self.guidance_en or "",
            desks=tuple(self.desks),
            guides=tuple(self.guides),
            multiple=self.multiple,
            also=tuple(self.also),
            goals=tuple(self.goals),
            origin=self.origin,
            texts=dict(self.texts),
        )


class ChartSourceDoc(Schema):
    title_ja: Text
    publisher_ja: Text
    urls: Texts = []
    checked: Day = None
    edition: Text | None = None
    notes_ja: Text | None = None

    def model(self) -> ChartSource:
        return ChartSource(
            self.title_ja,
            self.publisher_ja,
            tuple(self.urls),
            self.checked,
            self.edition,
            self.notes_ja or "",
        )


class ChartDoc(Schema):
    version: Text
    start: Text
    nodes: list[ChartNodeDoc]
    source: ChartSourceDoc | None = None
    languages: Texts = []

    def model(self) -> Chart:
        return Chart(
            version=self.version,
            start=self.start,
            nodes=tuple(n.model() for n in self.nodes),
            source=self.source.model() if self.source else None,
            languages=tuple(self.languages) or ("ja",),
        )


class GuideStepDoc(_Texted):
    TEXT_NAMES = ("title", "body")
    title_ja: Text
    body_ja: Text
    title_en: Text | None = None
    body_en: Text | None = None

    def model(self) -> GuideStep:
        return GuideStep(
            self.title_ja, self.body_ja, self.title_en or "", self.body_en or "", dict(self.texts)
        )


class GuideDoc(_Texted):
    TEXT_NAMES = ("title", "summary")
    slug: Text
    title_ja: Text
    title_en: Text
    summary_ja: Text
    summary_en: Text | None = None
    steps: list[GuideStepDoc]
    related_desks: Texts = []
    related_categories: Texts = []

    def model(self) -> Guide:
        return Guide(
            slug=self.slug,
            title_ja=self.title_ja,
            title_en=self.title_en,
            summary_ja=self.summary_ja,
            steps=tuple(s.model() for s in self.steps),
            related_desks=tuple(self.related_desks),
            related_categories=tuple(self.related_categories),
            summary_en=self.summary_en or "",
            texts=dict(self.texts),
        )


class GuidesDoc(Schema):
    guides: list[GuideDoc]
    languages: Texts = []


_SCHEMAS: dict[str, type[Schema]] = {
    "categories": CategoriesDoc,
    "desks": DesksDoc,
    "platforms": PlatformsDoc,
    "chart": ChartDoc,
    "guides": GuidesDoc,
}


# intake.yaml: a mapping of code lists (relations, desired_outcomes, ...), each a list of coded labels.
_INTAKE = TypeAdapter(dict[str, list[CodeItemDoc] | None])


def knowledge_from_raw(raw: dict[str, Any]) -> Knowledge:
    """Build from the parsed YAML documents, keyed by file stem. Raises KnowledgeError listing every problem
    of shape, each naming the file and the place; `validate` then checks the references."""
    missing = [k for k in STEMS if k not in raw]
    if missing:
        raise KnowledgeError([f"missing knowledge file(s): {', '.join(missing)}"])
    problems: list[str] = []
    docs: dict[str, Any] = {}
    for stem, schema in _SCHEMAS.items():
        try:
            docs[stem] = schema.model_validate(raw[stem])
        except ValidationError as exc:
            problems += schema_problems(exc, f"{stem}.yaml", raw[stem])
    try:
        intake = _INTAKE.validate_python(raw["intake"])
    except ValidationError as exc:
        problems += schema_problems(exc, "intake.yaml", raw["intake"])
    if problems:
        raise KnowledgeError(problems)
    return Knowledge(
        categories=docs["categories"].model(),
        desks=tuple(d.model() for d in docs["desks"].desks),
        platforms=tuple(p.model() for p in docs["platforms"].platforms),
        chart=docs["chart"].model(),
        guides=tuple(g.model() for g in docs["guides"].guides),
        intake={name: tuple(i.model() for i in items or ()) for name, items in intake.items()},
        guide_languages=tuple(docs["guides"].languages) or ("ja",),
    )


def chart_from_raw(raw: Any) -> Chart:
    """The chart alone (chart.yaml's document); raises KnowledgeError naming the place."""
    try:
        return ChartDoc.model_validate(raw).model()
    except ValidationError as exc:
        raise KnowledgeError(schema_problems(exc, "chart.yaml", raw)) from None


def desk_to_dict(desk: Desk) -> dict[str, Any]:
    """A desk as stored in a desk version (JSON); DeskDoc reads it back."""
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
        "languages": list(desk.languages),
        "sources": [
            {
                "fact": s.fact,
                "url": s.url,
                "checked": s.checked.isoformat() if s.checked else None,
                "basis": s.basis or None,
            }
            for s in desk.sources
        ],
    }
