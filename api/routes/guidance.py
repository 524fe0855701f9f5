"""Guidance for every front door: the desk directory, platforms, the contact-desk chart, triage, guides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from api.deps import ContainerDep, Person, client_address, public_security, public_with_scope, require
from api.etag import etag_of, parse_if_match
from api.idempotency import idempotent
from api.schemas.common import QueryFlag, problem_responses
from api.schemas.guidance import (
    CategorySuggestionOut,
    ChartNodeOut,
    ChartOptionOut,
    ChartOut,
    ChartSourceOut,
    ChartWalkIn,
    ChartWalkOut,
    DeskCreate,
    DeskDetail,
    DeskOut,
    DeskUpdate,
    DeskVersionOut,
    GuideBrief,
    GuideOut,
    GuideStepOut,
    PlatformOut,
    ReportRouteOut,
    TriageIn,
    TriageOut,
    UrgencyFlagOut,
)
from api.schemas.text import SingleLine
from domain import policy
from domain.actors import Actor
from domain.desks import DeskFilter, DeskVersion
from domain.errors import NotFound
from domain.knowledge_model import ChartNode, Desk, Guide

router = APIRouter(tags=["guidance"])
# Codes, slugs and pseudonyms in the path: one line of text; an unknown one is 404.
CodePath = Annotated[str, Path(max_length=64), SingleLine()]


def desk_out(d: Desk) -> DeskOut:
    return DeskOut(
        code=d.code,
        name_ja=d.name_ja,
        name_en=d.name_en,
        phone=d.phone,
        url=d.url,
        hours_ja=d.hours_ja,
        kind=d.kind,
    )


def desk_detail(d: Desk, version: int) -> DeskDetail:
    return DeskDetail(
        **desk_out(d).model_dump(),
        handles_ja=d.handles_ja,
        handles_en=d.handles_en,
        categories=list(d.categories),
        emergency=d.emergency,
        last_verified=d.last_verified,
        uncertain=d.uncertain,
        notes_ja=d.notes_ja,
        version=version,
    )


def version_out(v: DeskVersion) -> DeskVersionOut:
    return DeskVersionOut(
        version=v.version,
        changed_at=v.changed_at,
        changed_by=v.changed_by,
        note=v.note,
        desk=desk_detail(v.desk, v.version),
    )


def node_out(n: ChartNode) -> ChartNodeOut:
    return ChartNodeOut(
        id=n.id,
        kind=n.kind,
        text_ja=n.text_ja,
        text_en=n.text_en,
        options=[
            ChartOptionOut(id=o.id, label_ja=o.label_ja, label_en=o.label_en, next=o.next) for o in n.options
        ],
        title_ja=n.title_ja,
        title_en=n.title_en,
        guidance_ja=n.guidance_ja,
        guidance_en=n.guidance_en,
        desks=list(n.desks),
        guides=list(n.guides),
        multiple=n.multiple,
        also=list(n.also),
        goals=list(n.goals),
        origin=n.origin,
    )


def guide_brief(g: Guide) -> GuideBrief:
    return GuideBrief(slug=g.slug, title_ja=g.title_ja, title_en=g.title_en, summary_ja=g.summary_ja)


# -- desks ------------------------------------------------------------------------------------------


@router.get(
    "/v1/desks",
    operation_id="desks_list",
    response_model=list[DeskDetail],
    tags=["desks"],
    responses=problem_responses(422),
    summary="The contact-desk directory (public), with filters",
)
async def list_desks(
    container: ContainerDep,
    kind: Annotated[str | None, Query(max_length=32), SingleLine()] = None,
    category: Annotated[
        str | None, Query(max_length=64, description="A category or group code"), SingleLine()
    ] = None,
    emergency: QueryFlag | None = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="Text in the name or what the desk handles"),
        SingleLine(),
    ] = None,
) -> list[DeskDetail]:
    found = await container.desks.search(
        DeskFilter(kind=kind, category=category, emergency=emergency, text=q)
    )
    return [desk_detail(v.desk, v.version) for v in found]


@router.post(
    "/v1/desks",
    operation_id="desks_create",
    summary="Add a contact desk to the directory (supervisors and admins)",
    status_code=status.HTTP_201_CREATED,
    response_model=DeskDetail,
    tags=["desks"],
    responses=problem_responses(401, 403, 409, 422),
    dependencies=[require(policy.EDITORS), idempotent("desks_create", "desk_version")],
)
async def create_desk(
    body: DeskCreate, actor: Person, container: ContainerDep, response: Response
) -> DeskDetail:
    desk = Desk(**body.model_dump(exclude={"note", "categories"}), categories=tuple(body.categories))
    version = await container.desks.create(actor, desk, body.note)
    response.headers["Location"] = f"/v1/desks/{version.desk.code}"
    response.headers["ETag"] = etag_of(version.version)
    return desk_detail(version.desk, version.version)


@router.get(
    "/v1/desks/{code}",
    operation_id="desks_get",
    summary="One contact desk as currently published, with its version",
    response_model=DeskDetail,
    tags=["desks"],
    responses=problem_responses(404),
)
async def get_desk(code: CodePath, container: ContainerDep, response: Response) -> DeskDetail:
    version = await container.desks.get(code)
    response.headers["ETag"] = etag_of(version.version)
    return desk_detail(version.desk, version.version)


@router.patch(
    "/v1/desks/{code}",
    operation_id="desks_update",
    response_model=DeskDetail,
    tags=["desks"],
    responses=problem_responses(401, 403, 404, 412, 422, 428),
    summary="Supervisors and admins: change a desk; every change is a new version",
    dependencies=[require(policy.EDITORS)],
)
async def update_desk(
    code: CodePath,
    body: DeskUpdate,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> DeskDetail:
    """Needs If-Match. Every change is a new version; GET /v1/desks/{code}/versions lists them."""
    changes = body.model_dump(exclude_unset=True, exclude={"note"})
    version = await container.desks.update(
        actor, code, changes, expected_version=parse_if_match(if_match), note=body.note
    )
    response.headers["ETag"] = etag_of(version.version)
    return desk_detail(version.desk, version.version)


@router.get(
    "/v1/desks/{code}/versions",
    operation_id="desks_versions",
    summary="Every published version of a desk, with who changed what and when",
    response_model=list[DeskVersionOut],
    tags=["desks"],
    responses=problem_responses(401, 403, 404),
    dependencies=[require(policy.EDITORS)],
)
async def desk_versions(code: CodePath, actor: Person, container: ContainerDep) -> list[DeskVersionOut]:
    return [version_out(v) for v in await container.desks.versions(actor, code)]


# -- platforms, guides ------------------------------------------------------------------------------


@router.get(
    "/v1/platforms",
    operation_id="platforms_list",
    response_model=list[PlatformOut],
    tags=["platforms"],
    summary="Platforms and their reporting routes; designation under the 2025 platform act",
)
async def list_platforms(container: ContainerDep, designated: QueryFlag | None = None) -> list[PlatformOut]:
    return [
        PlatformOut(
            code=p.code,
            name_ja=p.name_ja,
            name_en=p.name_en,
            operator=p.operator,
            report_routes=[ReportRouteOut(name_ja=r.name_ja, url=r.url) for r in p.report_routes],
            designated=p.designated,
            designated_since=p.designated_since,
            accepts_standard_letters=p.accepts_standard_letters,
            notes_ja=p.notes_ja,
        )
        for p in container.knowledge.platforms
        if designated is None or p.designated == designated
    ]


@router.get(
    "/v1/guides",
    operation_id="guides_list",
    summary="The self-help guides (removal requests, disclosure, evidence, …), briefly",
    response_model=list[GuideBrief],
    tags=["guides"],
)
async def list_guides(container: ContainerDep) -> list[GuideBrief]:
    return [guide_brief(g) for g in container.knowledge.guides]


@router.get(
    "/v1/guides/{slug}",
    operation_id="guides_get",
    summary="One self-help guide in full",
    response_model=GuideOut,
    tags=["guides"],
    responses=problem_responses(404),
)
async def get_guide(slug: CodePath, container: ContainerDep) -> GuideOut:
    g = container.knowledge.guide(slug)
    if g is None:
        raise NotFound("guide_not_found")
    return GuideOut(
        **guide_brief(g).model_dump(),
        summary_en=g.summary_en,
        steps=[
            GuideStepOut(title_ja=s.title_ja, title_en=s.title_en, body_ja=s.body_ja, body_en=s.body_en)
            for s in g.steps
        ],
        related_desks=list(g.related_desks),
        related_categories=list(g.related_categories),
    )


# -- the chart and triage ---------------------------------------------------------------------------

ChartReader = Annotated[Actor | None, public_with_scope("chart:read")]
TriageRunner = Annotated[Actor | None, public_with_scope("triage:run")]


@router.get(
    "/v1/chart",
    operation_id="chart_get",
    response_model=ChartOut,
    tags=["chart"],
    responses=problem_responses(401, 403),
    openapi_extra=public_security("chart:read"),
    summary="The whole contact-desk chart (各種窓口のチャート), for any front end to render",
)
async def get_chart(container: ContainerDep, _: ChartReader) -> ChartOut:
    chart = container.knowledge.chart
    src = chart.source
    return ChartOut(
        version=chart.version,
        start=chart.start,
        nodes=[node_out(n) for n in chart.nodes],
        source=None
        if src is None
        else ChartSourceOut(
            title_ja=src.title_ja,
            publisher_ja=src.publisher_ja,
            urls=list(src.urls),
            checked=src.checked,
            edition=src.edition,
            notes_ja=src.notes_ja,
        ),
    )


@router.post(
    "/v1/chart/walk",
    operation_id="chart_walk",
    response_model=ChartWalkOut,
    tags=["chart"],
    responses=problem_responses(401, 403, 422),
    openapi_extra=public_security("chart:read"),
    summary="Send the option ids chosen so far; get the next question or the outcome with desks",
)
async def walk_chart(body: ChartWalkIn, container: ContainerDep, _: ChartReader) -> ChartWalkOut:
    result = await container.guidance.walk_chart(body.answers)
    return ChartWalkOut(
        chart_version=result.step.chart_version,
        done=result.step.done,
        answers=list(result.step.answers),
        node=node_out(result.step.node),
        also=[node_out(n) for n in result.step.also],
        desks=[desk_out(d) for d in result.desks],
        guides=[guide_brief(g) for g in result.guides],
    )


@router.post(
    "/v1/triage",
    operation_id="triage_run",
    response_model=TriageOut,
    tags=["triage"],
    responses=problem_responses(401, 403, 422, 429),
    openapi_extra=public_security("triage:run"),
    summary="Suggest categories, urgency, desks and guides for Japanese free text (not stored)",
    description="Public and rate-limited per client address. A service client may send its token (scope "
    "`triage:run`) to be limited per client instead of per address.",
)
async def run_triage(
    body: TriageIn, container: ContainerDep, request: Request, caller: TriageRunner
) -> TriageOut:
    bucket = (
        f"client:{caller.service_client_id}" if caller and not caller.is_person else client_address(request)
    )
    advice = await container.guidance.triage(body.text, address=bucket)
    labels = {cat.code: cat for cat in container.knowledge.categories}
    return TriageOut(
        categories=[
            CategorySuggestionOut(
                code=s.code,
                label_ja=labels[s.code].label_ja,
                label_en=labels[s.code].label_en,
                score=s.score,
                triggers=s.triggers,
            )
            for s in advice.categories
            if s.code in labels
        ],
        urgency=[
            UrgencyFlagOut(flag=f.flag, triggers=f.triggers, desks=f.desk_codes) for f in advice.urgency
        ],
        desks=[desk_out(d) for d in advice.desks],
        guides=[guide_brief(g) for g in advice.guides],
        rules_version=advice.rules_version,
    )
