"""Requests under a consultation, their clocks, the clock facts, consultation links and the overdue view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Request, Response, status

from api.deps import ContainerDep, Person, require
from api.etag import etag_of, parse_if_match
from api.idempotency import idempotent
from api.pagination import CursorParam, LimitParam, page_by, position
from api.routes.consultations import consultation_out
from api.routes.guidance import desk_out
from api.schemas.common import Page, problem_responses
from api.schemas.consultations import ConsultationOut
from api.schemas.requests import (
    AdviceIn,
    ClockFactsIn,
    ClockFactsOut,
    ClockOut,
    EventOut,
    LinkIn,
    NextStepOut,
    OverdueOut,
    ReplyIn,
    RequestCreate,
    RequestDetail,
    RequestOut,
    RequestUpdate,
    StatusIn,
    SuggestionOut,
    TargetIn,
    TargetOut,
)
from domain import policy
from domain.actors import Actor
from domain.clocks import ClockRules, ComputedClock
from domain.errors import ValidationFailed
from domain.requests import (
    TRANSITIONS,
    ClockFacts,
    OverdueEntry,
    RequestDraft,
    RequestService,
    RequestView,
    Target,
)

router = APIRouter(prefix="/v1/consultations", tags=["requests"])
clocks_router = APIRouter(prefix="/v1/clocks", tags=["requests"])

IfMatch = Annotated[str | None, Header(max_length=100, description='ETag from GET, e.g. "v3"')]
REQUESTS = "/{consultation_id}/requests"


def clock_out(rules: ClockRules, k: ComputedClock, now: datetime) -> ClockOut:
    rule = rules.rule(k.rule)
    assert rule is not None  # stored clocks come from the rules loaded at start
    variant = next(
        (v for v in rule.variants if v.private_sexual_image and k.variant == "private_sexual_image"), None
    )
    return ClockOut(
        rule=rule.code,
        name_ja=rule.name_ja,
        name_en=rule.name_en,
        subject=k.subject,
        subject_id=k.subject_id,
        starts_at=k.starts_at,
        due_at=k.due_at,
        remind_at=k.remind_at,
        counting=rule.counting,
        basis=rule.basis,
        approximate=rule.approximate,
        variant=k.variant,
        settled=k.settled,
        overdue=not k.settled and k.due_at <= now,
        law_ja=variant.law_ja if variant else rule.law_ja,
        source=variant.source if variant else rule.source,
        checked=rule.checked,
    )


Shaped = TypeVar("Shaped", bound=RequestOut)


def request_out(svc: RequestService, view: RequestView, now: datetime) -> RequestOut:
    return request_as(RequestOut, svc, view, now)


def request_as(
    schema: type[Shaped], svc: RequestService, view: RequestView, now: datetime, **more: Any
) -> Shaped:
    """A request as `schema` (RequestOut or one that extends it, given its `more` fields)."""
    r = view.request
    return schema(
        id=r.id,
        consultation_id=r.consultation_id,
        kind=r.kind,
        status=r.status,
        target=TargetOut(
            platform=r.target.platform,
            service=r.target.service,
            name=r.target.name,
            designated=svc.designated_since(r.target) is not None,
        ),
        evidence_ids=r.evidence_ids,
        reply_evidence_ids=r.reply_evidence_ids,
        channel=r.channel,
        sent_at=r.sent_at,
        received_at=r.received_at,
        inquiry=r.inquiry,
        private_sexual_image=r.private_sexual_image,
        reference_number=r.reference_number,
        notes=r.notes,
        advice=r.advice,
        advice_at=r.advice_at,
        letter_id=r.letter_id,
        allowed_statuses=sorted(TRANSITIONS[r.status]),
        clocks=[clock_out(svc.rules, k, now) for k in view.clocks],
        overdue=view.overdue,
        next_steps=[
            NextStepOut(
                outcome=s.outcome.id,
                title_ja=s.outcome.title_ja,
                title_en=s.outcome.title_en,
                guidance_ja=s.outcome.guidance_ja,
                desks=[desk_out(d) for d in s.desks],
            )
            for s in view.next_steps
        ],
        created_at=r.created_at,
        updated_at=r.updated_at,
        version=r.version,
        **more,
    )


def detail_out(svc: RequestService, view: RequestView, now: datetime, response: Response) -> RequestDetail:
    response.headers["ETag"] = etag_of(view.request.version)
    return request_as(
        RequestDetail,
        svc,
        view,
        now,
        history=[
            EventOut(
                from_status=e.from_status,
                to_status=e.to_status,
                at=e.at,
                note=e.note,
                by_staff=e.actor_id != view.request.created_by,
            )
            for e in view.history
        ],
    )


def target_of(t: TargetIn) -> Target:
    return Target(platform=t.platform, service=t.service, name=t.name)


async def replay_request(
    actor: Actor, container: Any, request_id: uuid.UUID, request: Request
) -> tuple[Any, dict[str, str]]:
    consultation_id = uuid.UUID(request.path_params["consultation_id"])
    view = await container.requests.get(actor, consultation_id, request_id)
    response = Response()
    body = detail_out(container.requests, view, container.clock.now(), response)
    location = f"/v1/consultations/{consultation_id}/requests/{request_id}"
    return body, {"location": location, "etag": response.headers["etag"]}


@router.get(
    REQUESTS,
    operation_id="requests_list",
    response_model=Page[RequestOut],
    responses=problem_responses(401, 403, 404, 422),
    summary="The requests sent (or to send) about a consultation, with their clocks",
    description="Includes the requests of the earlier consultations this one follows (their "
    "`consultation_id` says where they belong). The consulter and the staff who may see the case read them.",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_requests(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[RequestOut]:
    svc, now = container.requests, container.clock.now()
    found = await svc.list_for(actor, consultation_id, after=position(cursor), limit=limit + 1)
    return page_by(
        found,
        limit,
        lambda v: request_out(svc, v, now),
        lambda v: (v.request.created_at, v.request.id),
    )


@router.post(
    REQUESTS,
    operation_id="requests_create",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="The consulter records a request: its kind, target service or provider, evidence and channel",
    dependencies=[
        require(policy.CONSULTERS),
        idempotent("requests_create", "consultation_request", replay_request),
    ],
)
async def create_request(
    consultation_id: uuid.UUID,
    body: RequestCreate,
    actor: Person,
    container: ContainerDep,
    response: Response,
) -> RequestDetail:
    """A request starts as `drafted`. The target is a platform service from the reference data (its designation under 情報流通プラットフォーム対処法 starts the 7-day response clock once sent) or a free host or provider name. Evidence items must belong to this consultation (422 `unknown_evidence` otherwise, whatever the id is). Send an Idempotency-Key."""
    svc = container.requests
    view = await svc.create(
        actor,
        consultation_id,
        RequestDraft(
            kind=body.kind,
            target=target_of(body.target),
            evidence_ids=body.evidence_ids,
            channel=body.channel,
            reference_number=body.reference_number,
            notes=body.notes,
            received_at=body.received_at,
            inquiry=body.inquiry,
            private_sexual_image=body.private_sexual_image,
            letter_id=body.letter_id,
        ),
    )
    response.headers["Location"] = f"/v1/consultations/{consultation_id}/requests/{view.request.id}"
    return detail_out(svc, view, container.clock.now(), response)


@router.get(
    REQUESTS + "/{request_id}",
    operation_id="requests_get",
    response_model=RequestDetail,
    responses=problem_responses(401, 403, 404),
    summary="One request: its status history, clocks and, when refused or unanswered, the next steps",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def get_request(
    consultation_id: uuid.UUID,
    request_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    response: Response,
) -> RequestDetail:
    svc = container.requests
    return detail_out(svc, await svc.get(actor, consultation_id, request_id), container.clock.now(), response)


@router.patch(
    REQUESTS + "/{request_id}",
    operation_id="requests_update",
    response_model=RequestDetail,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
    summary="The consulter corrects a request: reference number, channel, evidence, target (If-Match)",
    dependencies=[require(policy.CONSULTERS)],
)
async def update_request(
    consultation_id: uuid.UUID,
    request_id: uuid.UUID,
    body: RequestUpdate,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> RequestDetail:
    """Needs If-Match with the request's ETag. The clocks are recomputed from the changed facts."""
    svc = container.requests
    changes = body.model_dump(exclude_unset=True)
    if "target" in changes:
        if body.target is None:
            raise ValidationFailed("target_required", field="target")
        changes["target"] = target_of(body.target)
    view = await svc.update(
        actor, consultation_id, request_id, changes, expected_version=parse_if_match(if_match)
    )
    return detail_out(svc, view, container.clock.now(), response)


@router.post(
    REQUESTS + "/{request_id}/status",
    operation_id="requests_set_status",
    response_model=RequestDetail,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    summary="The consulter records what happened: sent, acknowledged, removed, refused, no answer …",
    description="Only the moves of the state machine are allowed (`allowed_statuses`; 409 otherwise); "
    "every change is kept in `history`. `sent` sets the date the response clock starts from. If-Match is "
    "optional here: with it, a stale ETag answers 412.",
    dependencies=[require(policy.CONSULTERS)],
)
async def set_request_status(
    consultation_id: uuid.UUID,
    request_id: uuid.UUID,
    body: StatusIn,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> RequestDetail:
    svc = container.requests
    view = await svc.move(
        actor,
        consultation_id,
        request_id,
        body.status,
        at=body.at,
        note=body.note,
        expected_version=parse_if_match(if_match) if if_match else None,
    )
    return detail_out(svc, view, container.clock.now(), response)


@router.post(
    REQUESTS + "/{request_id}/advice",
    operation_id="requests_advise",
    response_model=RequestDetail,
    responses=problem_responses(401, 403, 404, 422),
    summary="The staff working the case advise on a request (the consulter reads the advice)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def advise_request(
    consultation_id: uuid.UUID,
    request_id: uuid.UUID,
    body: AdviceIn,
    actor: Person,
    container: ContainerDep,
    response: Response,
) -> RequestDetail:
    svc = container.requests
    view = await svc.advise(actor, consultation_id, request_id, body.note)
    return detail_out(svc, view, container.clock.now(), response)


@router.post(
    REQUESTS + "/{request_id}/replies",
    operation_id="requests_attach_reply",
    response_model=RequestDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Link the reply the consulter received, kept as an evidence item, to the request",
    description="Upload the reply with the evidence routes (POST …/evidence, then PUT …/evidence/{id}/file), "
    "then link that item here. It must be an item of the request's own consultation, or of the consultation "
    "it is addressed through when it was carried over from an earlier one.",
    dependencies=[require(policy.CONSULTERS)],
)
async def attach_reply(
    consultation_id: uuid.UUID,
    request_id: uuid.UUID,
    body: ReplyIn,
    actor: Person,
    container: ContainerDep,
    response: Response,
) -> RequestDetail:
    svc = container.requests
    view = await svc.attach_reply(actor, consultation_id, request_id, body.evidence_id)
    return detail_out(svc, view, container.clock.now(), response)


# -- clocks -------------------------------------------------------------------------------------------


@router.get(
    "/{consultation_id}/clocks",
    operation_id="clocks_list",
    response_model=Page[ClockOut],
    tags=["requests"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Every clock of a consultation (and of the earlier ones it follows), soonest first",
    description="Computed from the rules in domain/knowledge/clocks.yaml, each with its legal basis, source "
    "and counting. A rule that does not apply gives no clock.",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_clocks(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[ClockOut]:
    svc, now = container.requests, container.clock.now()
    found = await svc.clocks(actor, consultation_id, after=position(cursor), limit=limit + 1)
    return page_by(
        found, limit, lambda s: clock_out(svc.rules, s.clock, now), lambda s: (s.clock.due_at, s.id)
    )


@router.get(
    "/{consultation_id}/clock-facts",
    operation_id="clock_facts_get",
    response_model=ClockFactsOut,
    responses=problem_responses(401, 403, 404),
    summary="The dates clocks start from: when the person learnt of the offender and of the damage",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def get_clock_facts(
    consultation_id: uuid.UUID, actor: Person, container: ContainerDep
) -> ClockFactsOut:
    facts = await container.requests.facts(actor, consultation_id)
    return ClockFactsOut(offender_known_on=facts.offender_known_on, damage_known_on=facts.damage_known_on)


@router.put(
    "/{consultation_id}/clock-facts",
    operation_id="clock_facts_set",
    response_model=ClockFactsOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="Record when the offender and the damage became known (complaint and limitation periods)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def set_clock_facts(
    consultation_id: uuid.UUID, body: ClockFactsIn, actor: Person, container: ContainerDep
) -> ClockFactsOut:
    """The consulter or the staff working the case. Dates in the future answer 422."""
    facts = await container.requests.set_facts(
        actor, consultation_id, ClockFacts(body.offender_known_on, body.damage_known_on)
    )
    return ClockFactsOut(offender_known_on=facts.offender_known_on, damage_known_on=facts.damage_known_on)


@clocks_router.get(
    "/overdue",
    operation_id="clocks_overdue",
    response_model=Page[OverdueOut],
    responses=problem_responses(401, 403, 422),
    summary="Staff: clocks that ran out with nothing done, oldest first, in the cases they may see",
    dependencies=[require(policy.CASEWORKERS)],
)
async def overdue_clocks(
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 25,
) -> Page[OverdueOut]:
    svc, now = container.requests, container.clock.now()
    found = await svc.overdue(actor, after=position(cursor), limit=limit + 1)

    def shape(entry: OverdueEntry) -> OverdueOut:
        request = None
        if entry.request is not None:
            view = RequestView(entry.request, (entry.stored.clock,), overdue=True)
            request = request_out(svc, view, now)
        return OverdueOut(
            clock=clock_out(svc.rules, entry.stored.clock, now),
            consultation=consultation_out(entry.consultation, now, actor),
            request=request,
        )

    return page_by(found, limit, shape, lambda e: (e.stored.clock.due_at, e.stored.id))


# -- continuity ---------------------------------------------------------------------------------------


@router.post(
    "/{consultation_id}/follows",
    operation_id="consultations_link_earlier",
    response_model=list[ConsultationOut],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="The consulter links a new consultation to an earlier, closed one of their own",
    description="For a person who comes back after the reopen window. The earlier consultation's requests "
    "and clocks carry over. Another person's consultation answers 404. Answers the chain, nearest first.",
    dependencies=[require(policy.CONSULTERS)],
)
async def link_earlier(
    consultation_id: uuid.UUID, body: LinkIn, actor: Person, container: ContainerDep
) -> list[ConsultationOut]:
    now = container.clock.now()
    chain = await container.requests.link(actor, consultation_id, body.earlier_id)
    return [consultation_out(x, now, actor) for x in chain]


@router.get(
    "/{consultation_id}/earlier",
    operation_id="consultations_earlier",
    response_model=list[ConsultationOut],
    responses=problem_responses(401, 403, 404),
    summary="The earlier consultations this one follows, nearest first (the case's history)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def earlier_consultations(
    consultation_id: uuid.UUID, actor: Person, container: ContainerDep
) -> list[ConsultationOut]:
    now = container.clock.now()
    related = await container.requests.related(actor, consultation_id)
    return [consultation_out(x, now, actor) for x in related]


# -- answer templates ---------------------------------------------------------------------------------


@router.get(
    "/{consultation_id}/answer-suggestions",
    operation_id="answers_suggest_templates",
    response_model=list[SuggestionOut],
    tags=["answers"],
    responses=problem_responses(401, 403, 404),
    summary="Staff: the answer templates that fit the case, best first, filled from it",
    description="Filled from the case: the platform or service of its requests (else its intake), the first "
    "evidence URL, the template's desk from the directory and the deadline from the case's clocks. What the "
    "case cannot fill stays as written and is listed in `unfilled`. A draft written from a template "
    "(POST …/answers with `template`) records the values with its version.",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def suggest_templates(
    consultation_id: uuid.UUID, actor: Person, container: ContainerDep
) -> list[SuggestionOut]:
    return [
        SuggestionOut(
            template=s.template.code,
            version=s.template.version,
            title_ja=s.template.title_ja,
            title_en=s.template.title_en,
            sections=list(s.template.sections),
            score=s.score,
            body=s.body,
            values=dict(s.values),
            unfilled=list(s.unfilled),
        )
        for s in await container.suggestions.suggest(actor, consultation_id)
    ]
