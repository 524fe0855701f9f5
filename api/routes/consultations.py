"""Consultations: intake, queue, actions, messages and evidence. Routes parse, call one use case, shape."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from api.deps import ContainerDep, Person, require
from api.errors import BodyTooLarge
from api.etag import etag_of, parse_if_match
from api.idempotency import idempotent
from api.pagination import CursorParam, LimitParam, page_by, page_of, position
from api.routes.guidance import desk_out
from api.schemas.common import Moment, Page, QueryFlag, problem_responses
from api.schemas.consultations import (
    AssignIn,
    ConsultationCreate,
    ConsultationDetail,
    ConsultationOut,
    ConsultationUpdate,
    EvidenceCorrection,
    EvidenceFileOut,
    EvidenceIn,
    EvidenceOut,
    ImageHashesOut,
    IntakeOut,
    MessageIn,
    MessageOut,
    SimilarEvidenceOut,
    TransitionOut,
    UploadSlotIn,
    UploadSlotOut,
    UrgencyOut,
)
from api.schemas.guidance import ReferralIn, ReferralOut
from api.schemas.reading import MessagesReadIn, ReadStateOut
from api.schemas.text import SingleLine
from domain import policy
from domain.actors import Actor
from domain.clocks import ClockRules, EvidenceFacts, evidence_clocks, time_to_act
from domain.consultations import (
    Consultation,
    Evidence,
    ImageHashes,
    Intake,
    IntakeResult,
    Message,
    Priority,
    QueueFilter,
    Status,
)
from domain.errors import NotFound
from domain.knowledge_model import Desk
from domain.referrals import Referral, ReferralAction
from infra.bundle import chunks, spool
from infra.storage import EXTENSIONS

router = APIRouter(prefix="/v1/consultations", tags=["consultations"])

IfMatch = Annotated[str | None, Header(max_length=100, description='ETag from GET, e.g. "v3"')]


Shaped = TypeVar("Shaped", bound=ConsultationOut)
Detailed = TypeVar("Detailed", bound=ConsultationDetail)


def consultation_out(c: Consultation, now: datetime, actor: Actor) -> ConsultationOut:
    return consultation_as(ConsultationOut, c, now, actor)


def consultation_as(
    schema: type[Shaped], c: Consultation, now: datetime, actor: Actor, **more: Any
) -> Shaped:
    """A consultation as `schema` (ConsultationOut or one that extends it, given its `more` fields): the one
    mapping of a case's fields to a response, as `actor` may see it (no staff identity for a consulter)."""
    return schema(
        id=c.id,
        status=c.status,
        channel=c.channel,
        relation=c.relation,
        title=c.title,
        categories=c.categories,
        desired_outcomes=c.desired_outcomes,
        platforms=c.platforms,
        platform_other=c.platform_other,
        victim_is_minor=c.victim_is_minor,
        priority=c.priority,
        urgent=c.urgent,
        urgency_flags=c.urgency_flags,
        assignee_id=policy.staff_identity(actor, c.assignee_id),
        created_at=c.created_at,
        updated_at=c.updated_at,
        first_answer_due_at=c.first_answer_due_at,
        first_answered_at=c.first_answered_at,
        overdue=c.overdue(now),
        unread_answers=c.unread_answers,
        version=c.version,
        time_to_act_at=c.time_to_act_at,
        follows_id=c.follows_id,
        **more,
    )


def detail_as(schema: type[Detailed], c: Consultation, now: datetime, actor: Actor, **more: Any) -> Detailed:
    """A consultation with its narrative and consent, as ConsultationDetail or one that extends it."""
    return consultation_as(
        schema,
        c,
        now,
        actor,
        narrative=c.narrative,
        tried=c.tried,
        terms_version=c.consent.terms_version,
        consented_at=c.consent.agreed_at,
        **more,
    )


def evidence_out(e: Evidence, rules: ClockRules | None = None, actor: Actor | None = None) -> EvidenceOut:
    file = (
        EvidenceFileOut(
            content_type=e.file.content_type,
            size=e.file.size,
            sha256=e.file.sha256,
            copy_sha256=e.file.copy_sha256,
            original_kept=e.file.original_key is not None,
            sealed=e.file.sealed,
        )
        if e.file
        else None
    )
    hashes = e.image_hashes
    # A slot names the staff member who opened it.
    slot = e.upload_slot if actor is not None and policy.sees_staff_identities(actor) else None
    return EvidenceOut(
        id=e.id,
        url=e.url,
        platform=e.platform,
        posted_at=e.posted_at,
        captured_at=e.captured_at,
        poster_account=e.poster_account,
        excerpt=e.excerpt,
        notes=e.notes,
        context_captured=e.context_captured,
        file=file,
        image_hashes=ImageHashesOut.model_validate(hashes) if hashes else None,
        upload_slot=UploadSlotOut.model_validate(slot) if slot else None,
        created_at=e.created_at,
        missing=e.missing(),
        time_to_act_at=time_to_act(rules, evidence_clocks(rules, EvidenceFacts(e.id, e.posted_at, False)))
        if rules is not None
        else None,
    )


def message_out(m: Message) -> MessageOut:
    return MessageOut(
        id=m.id, kind=m.kind, body=m.body, created_at=m.created_at, from_staff=m.kind.value != "consulter"
    )


def with_etag(response: Response, c: Consultation) -> None:
    response.headers["ETag"] = etag_of(c.version)


def detail_with_etag(response: Response, c: Consultation, now: datetime, actor: Actor) -> ConsultationDetail:
    with_etag(response, c)
    return detail_as(ConsultationDetail, c, now, actor)


def intake_out(result: IntakeResult, response: Response, now: datetime, actor: Actor) -> IntakeOut:
    consultation = result.consultation
    response.headers["Location"] = f"/v1/consultations/{consultation.id}"
    with_etag(response, consultation)
    return detail_as(
        IntakeOut,
        consultation,
        now,
        actor,
        urgency=[UrgencyOut(flag=f.flag, triggers=f.triggers, desks=f.desk_codes) for f in result.urgency],
        urgency_desks=[desk_out(d) for d in result.urgency_desks],
        emergency_desks=[desk_out(d) for d in result.emergency_desks],
    )


async def replay_intake(
    actor: Actor, container: Any, consultation_id: uuid.UUID, _: Request
) -> tuple[Any, dict[str, str]]:
    response = Response()
    result = await container.consultations.intake_result(
        await container.consultations.get(actor, consultation_id)
    )
    body = intake_out(result, response, container.clock.now(), actor)
    return body, {k: v for k, v in response.headers.items() if k in ("location", "etag")}


@router.post(
    "",
    operation_id="consultations_create",
    status_code=status.HTTP_201_CREATED,
    response_model=IntakeOut,
    responses=problem_responses(401, 403, 409, 422, 429),
    summary="Submit a consultation (consulter). Idempotency-Key makes retries safe.",
    dependencies=[
        require(policy.CONSULTERS),
        idempotent("consultations_create", "consultation", replay_intake),
    ],
)
async def create_consultation(
    body: ConsultationCreate, actor: Person, container: ContainerDep, response: Response
) -> IntakeOut:
    """Consent to the current terms (`terms_version` from GET /v1/intake-options) and to the handling of sensitive personal data is required. Urgency flags come from the narrative and categories, and the answer lists the emergency desks. The first-answer due time counts Japanese business days. Send an Idempotency-Key: a retry with the same key answers the first 201 again and never makes a second consultation."""
    intake = Intake(
        channel=body.channel,
        relation=body.relation,
        title=body.title,
        narrative=body.narrative,
        categories=body.categories,
        desired_outcomes=body.desired_outcomes,
        platforms=body.platforms,
        platform_other=body.platform_other,
        tried=body.tried,
        victim_is_minor=body.victim_is_minor,
        terms_version=body.consent.terms_version,
        agreed_to_terms=body.consent.terms,
        agreed_to_sensitive_data=body.consent.sensitive_data,
    )
    return intake_out(
        await container.consultations.open(actor, intake), response, container.clock.now(), actor
    )


# A staff id (a UUID as the API writes it), `me` or `none`.
ASSIGNEE_PATTERN = "^(me|none|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"


@router.get(
    "",
    operation_id="consultations_list",
    response_model=Page[ConsultationOut],
    responses=problem_responses(401, 403, 422),
    summary="Consulters: their own consultations with unread counts. Staff: the queue, with filters.",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_consultations(
    actor: Person,
    container: ContainerDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    category: Annotated[str | None, Query(max_length=64), SingleLine()] = None,
    urgent: QueryFlag | None = None,
    priority: Priority | None = None,
    assignee: Annotated[
        str | None, Query(description="A staff id, `me` or `none`", pattern=ASSIGNEE_PATTERN), SingleLine()
    ] = None,
    channel: Annotated[str | None, Query(max_length=16), SingleLine()] = None,
    created_from: Moment | None = None,
    created_to: Moment | None = None,
    overdue: QueryFlag | None = None,
    cursor: CursorParam = None,
    limit: LimitParam = 25,
) -> Page[ConsultationOut]:
    """For a consulter: their own consultations, newest first, with the count of unread answers. For staff: the queue they may see (a consultant sees the unassigned queue and their own cases; supervisors see all), with filters and keyset pages (`next_cursor`). Unknown query parameters answer 422."""
    assignee_id, unassigned = None, False
    if assignee == "me":
        assignee_id = actor.user_id
    elif assignee == "none":
        unassigned = True
    elif assignee is not None:
        assignee_id = uuid.UUID(assignee)
    queue_filter = QueueFilter(
        status=status_,
        category=category,
        urgent=urgent,
        priority=priority,
        assignee_id=assignee_id,
        unassigned=unassigned,
        channel=channel,
        created_from=created_from,
        created_to=created_to,
        overdue=overdue,
    )
    found = await container.consultations.page(actor, queue_filter, after=position(cursor), limit=limit + 1)
    now = container.clock.now()
    return page_of(found, limit, lambda x: consultation_out(x, now, actor))


@router.get(
    "/{consultation_id}",
    operation_id="consultations_get",
    summary="Read one consultation: its status, categories, due time and the consulter's own account of it",
    response_model=ConsultationDetail,
    responses=problem_responses(401, 403, 404),
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def get_consultation(
    consultation_id: uuid.UUID, actor: Person, container: ContainerDep, response: Response
) -> ConsultationDetail:
    consultation = await container.consultations.get(actor, consultation_id)
    return detail_with_etag(response, consultation, container.clock.now(), actor)


@router.patch(
    "/{consultation_id}",
    operation_id="consultations_update",
    summary="Change a consultation: the consulter edits their account, staff set priority and categories (If-Match)",
    response_model=ConsultationDetail,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def update_consultation(
    consultation_id: uuid.UUID,
    body: ConsultationUpdate,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationDetail:
    """Needs If-Match with the ETag of the version being changed (412 when someone changed it first, 428 without it). Consulters change their own account of the case; staff change priority and categories."""
    consultation = await container.consultations.update(
        actor, consultation_id, body.model_dump(exclude_unset=True), expected_version=parse_if_match(if_match)
    )
    return detail_with_etag(response, consultation, container.clock.now(), actor)


@router.post(
    "/{consultation_id}/assign",
    operation_id="consultations_assign",
    response_model=ConsultationDetail,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
    summary="Assign (supervisor) or take (consultant, for self); submitted becomes in_progress",
    dependencies=[require(policy.CASEWORKERS)],
)
async def assign_consultation(
    consultation_id: uuid.UUID,
    body: AssignIn,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationDetail:
    """A consultant may only take a case for themselves; a supervisor assigns anyone who works cases. Needs If-Match."""
    consultation = await container.consultations.assign(
        actor, consultation_id, body.assignee_id, expected_version=parse_if_match(if_match)
    )
    return detail_with_etag(response, consultation, container.clock.now(), actor)


@router.post(
    "/{consultation_id}/close",
    operation_id="consultations_close",
    summary="Close a consultation once it has been answered (If-Match)",
    response_model=ConsultationDetail,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def close_consultation(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> ConsultationDetail:
    consultation = await container.consultations.close(
        actor, consultation_id, expected_version=parse_if_match(if_match)
    )
    return detail_with_etag(response, consultation, container.clock.now(), actor)


@router.post(
    "/{consultation_id}/reopen",
    operation_id="consultations_reopen",
    response_model=ConsultationDetail,
    responses=problem_responses(401, 403, 404, 409),
    summary="Reopen a closed consultation within the window",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def reopen_consultation(
    consultation_id: uuid.UUID, actor: Person, container: ContainerDep, response: Response
) -> ConsultationDetail:
    consultation = await container.consultations.reopen(actor, consultation_id)
    return detail_with_etag(response, consultation, container.clock.now(), actor)


@router.post(
    "/{consultation_id}/withdraw",
    operation_id="consultations_withdraw",
    response_model=ConsultationDetail,
    responses=problem_responses(401, 403, 404, 409),
    summary="The consulter withdraws the consultation",
    dependencies=[require(policy.CONSULTERS)],
)
async def withdraw_consultation(
    consultation_id: uuid.UUID, actor: Person, container: ContainerDep, response: Response
) -> ConsultationDetail:
    consultation = await container.consultations.withdraw(actor, consultation_id)
    return detail_with_etag(response, consultation, container.clock.now(), actor)


@router.get(
    "/{consultation_id}/history",
    operation_id="consultations_history",
    response_model=Page[TransitionOut],
    responses=problem_responses(401, 403, 404, 422),
    summary="Every status transition: who (staff or not), when; oldest first, one page at a time",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def consultation_history(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[TransitionOut]:
    consultation, transitions = await container.consultations.history(
        actor, consultation_id, after=position(cursor), limit=limit + 1
    )
    return page_by(
        transitions,
        limit,
        lambda t: TransitionOut(
            from_status=t.from_status,
            to_status=t.to_status,
            at=t.at,
            reason=t.reason,
            by_staff=t.actor_id != consultation.owner_id,
        ),
        lambda t: (t.at, t.id),
    )


@router.get(
    "/{consultation_id}/messages",
    operation_id="messages_list",
    response_model=Page[MessageOut],
    responses=problem_responses(401, 403, 404),
    summary="The thread, oldest first, a page at a time. Consulters never see internal notes",
    description="Keyset pages: pass `next_cursor` as `cursor` for the next page (null at the end). Reading "
    "the thread changes nothing: a consulter marks answers read with `POST …/messages/read`.",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_messages(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[MessageOut]:
    found = await container.consultations.messages(
        actor, consultation_id, after=position(cursor), limit=limit + 1
    )
    return page_of(found, limit, message_out)


async def replay_message(
    actor: Actor, container: Any, message_id: uuid.UUID, request: Request
) -> tuple[Any, dict[str, str]]:
    consultation_id = uuid.UUID(request.path_params["consultation_id"])
    return message_out(await container.consultations.get_message(actor, consultation_id, message_id)), {}


@router.post(
    "/{consultation_id}/messages/read",
    operation_id="messages_mark_read",
    response_model=ReadStateOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="Consulters: mark the thread read up to a message",
    description="Every answer up to and including `up_to` counts as read; the mark never moves back. "
    "Answers the unread count of the thread after the call. A message that is not in the caller's "
    "thread answers 404.",
    dependencies=[require(policy.CONSULTERS)],
)
async def mark_messages_read(
    consultation_id: uuid.UUID, body: MessagesReadIn, actor: Person, container: ContainerDep
) -> ReadStateOut:
    unread = await container.consultations.mark_read(actor, consultation_id, body.up_to)
    return ReadStateOut(unread_answers=unread)


@router.post(
    "/{consultation_id}/messages",
    operation_id="messages_create",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Consulter reply, or staff answer (notifies the consulter) or internal note",
    dependencies=[
        require(policy.CONSULTATION_READERS),
        idempotent("messages_create", "message", replay_message),
    ],
    description=(
        "A consulter's reply that reveals danger (a threat, suicidal intent, a new sexual image, someone at "
        "the door) makes the case urgent and alerts its consultant (the supervisors when unassigned); the "
        "response then lists the urgency flags and the emergency desks, as intake does."
    ),
)
async def post_message(
    consultation_id: uuid.UUID, body: MessageIn, actor: Person, container: ContainerDep
) -> MessageOut:
    posted = await container.consultations.post_message(actor, consultation_id, body.body, body.kind)
    out = message_out(posted.message)
    if not posted.urgency:
        return out
    return out.model_copy(
        update={
            "urgency": [
                UrgencyOut(flag=f.flag, triggers=f.triggers, desks=f.desk_codes) for f in posted.urgency
            ],
            "urgency_desks": [desk_out(d) for d in posted.urgency_desks],
            "emergency_desks": [desk_out(d) for d in posted.emergency_desks],
        }
    )


@router.get(
    "/{consultation_id}/evidence",
    operation_id="evidence_list",
    summary="The evidence items recorded for a consultation, oldest first, a page at a time",
    response_model=Page[EvidenceOut],
    responses=problem_responses(401, 403, 404),
    description="Keyset pages: pass `next_cursor` as `cursor` for the next page (null at the end).",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_evidence(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[EvidenceOut]:
    found = await container.consultations.evidence(
        actor, consultation_id, after=position(cursor), limit=limit + 1
    )
    return page_of(found, limit, lambda e: evidence_out(e, container.requests.rules, actor))


async def replay_evidence(
    actor: Actor, container: Any, evidence_id: uuid.UUID, request: Request
) -> tuple[Any, dict[str, str]]:
    consultation_id = uuid.UUID(request.path_params["consultation_id"])
    return evidence_out(
        await container.consultations.get_evidence(actor, consultation_id, evidence_id),
        container.requests.rules,
        actor,
    ), {}


@router.post(
    "/{consultation_id}/evidence",
    operation_id="evidence_create",
    status_code=status.HTTP_201_CREATED,
    response_model=EvidenceOut,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Record an evidence item; the URL is stored as text and never fetched",
    dependencies=[
        require(policy.CONSULTATION_READERS),
        idempotent("evidence_create", "evidence", replay_evidence),
    ],
)
async def create_evidence(
    consultation_id: uuid.UUID, body: EvidenceIn, actor: Person, container: ContainerDep
) -> EvidenceOut:
    """The URL is stored as text and never fetched by the server. Send an Idempotency-Key to retry safely."""
    item = Evidence(
        id=uuid.uuid4(),
        consultation_id=consultation_id,
        created_by=actor.require_user_id(),
        created_at=container.clock.now(),
        url=body.url,
        platform=body.platform,
        posted_at=body.posted_at,
        captured_at=body.captured_at,
        poster_account=body.poster_account,
        excerpt=body.excerpt,
        notes=body.notes,
        context_captured=body.context_captured,
        image_hashes=(
            ImageHashes(
                sha256=body.image_hashes.sha256,
                pdq=body.image_hashes.pdq,
                pdq_quality=body.image_hashes.pdq_quality,
                width=body.image_hashes.width,
                height=body.image_hashes.height,
            )
            if body.image_hashes
            else None
        ),
    )
    return evidence_out(
        await container.consultations.add_evidence(actor, consultation_id, item),
        container.requests.rules,
        actor,
    )


@router.get(
    "/{consultation_id}/evidence/bundle",
    operation_id="evidence_bundle",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The bundle as a ZIP attachment",
            "headers": {
                "Content-Disposition": {
                    "description": 'Always `attachment; filename="evidence-bundle-{consultation_id}.zip"`',
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(401, 403, 404),
    },
    summary="Download the evidence bundle (ZIP: manifest, files, chain of custody, PDF report in Japanese)",
)
async def evidence_bundle(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    originals: Annotated[
        QueryFlag,
        Query(description="Include the originals as received (the consulter only; staff are answered 403)"),
    ] = False,
) -> StreamingResponse:
    """For the consulter and the staff member the case is assigned to (anyone else: 404). A ZIP with
    `manifest.json` (each item's URL, posting time and capture time in JST, poster account, SHA-256 of the
    original and of the cleaned copy, the chain-of-custody head and its RFC 3161 token if any), the cleaned
    files under `files/`, the originals under `originals/` when the consulter asks (`originals=true`), the
    chain under `custody/` and `report.pdf`, a report in Japanese that lists every item and explains how to
    check the hashes. The export is recorded on the chain before the bundle is written. Staff need a fresh
    proof of identity (a sign-in or POST /v1/auth/step-up within the last few minutes; otherwise 401
    `step_up_required`): a bundle carries a whole case out of the service."""
    if actor.is_staff:
        container.accounts.ensure_fresh(actor)
    bundle = await container.consultations.evidence_bundle(actor, consultation_id, originals=originals)
    spooled = await anyio.to_thread.run_sync(spool, bundle)
    return StreamingResponse(
        iterate_in_threadpool(chunks(spooled)),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="evidence-bundle-{bundle.consultation_id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/{consultation_id}/evidence/{evidence_id}",
    operation_id="evidence_get",
    summary="One evidence item: URL, posting time, poster account, excerpt and whether a file is attached",
    response_model=EvidenceOut,
    responses=problem_responses(401, 403, 404),
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def get_evidence(
    consultation_id: uuid.UUID,
    evidence_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    response: Response,
) -> EvidenceOut:
    """The ETag is what a correction sends back in If-Match."""
    item = await container.consultations.get_evidence(actor, consultation_id, evidence_id)
    response.headers["ETag"] = etag_of(item.version)
    return evidence_out(item, container.requests.rules, actor)


@router.patch(
    "/{consultation_id}/evidence/{evidence_id}",
    operation_id="evidence_correct",
    summary="Correct what was recorded about an evidence item (If-Match); the correction is on the chain of custody",
    response_model=EvidenceOut,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def correct_evidence(
    consultation_id: uuid.UUID,
    evidence_id: uuid.UUID,
    body: EvidenceCorrection,
    actor: Person,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> EvidenceOut:
    """By the consulter or the staff working the case, with If-Match from GET …/evidence/{id} (412 when someone corrected it first, 428 without it). The chain of custody records which fields changed and a keyed digest (HMAC-SHA256) of their earlier values. The file and image hashes are not corrected."""
    item = await container.consultations.correct_evidence(
        actor,
        consultation_id,
        evidence_id,
        body.model_dump(exclude_unset=True),
        expected_version=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag_of(item.version)
    return evidence_out(item, container.requests.rules, actor)


@router.delete(
    "/{consultation_id}/evidence/{evidence_id}",
    operation_id="evidence_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409),
    summary="Consulters: delete an evidence item and its files; the chain of custody keeps that it existed",
    dependencies=[require(policy.CONSULTERS)],
)
async def delete_evidence(
    consultation_id: uuid.UUID, evidence_id: uuid.UUID, actor: Person, container: ContainerDep
) -> Response:
    """The item, its cleaned copy and its sealed original are removed; the chain of custody keeps the deletion with the files' hashes. An item a request names answers 409 evidence_in_use (unlink it from the request first)."""
    await container.consultations.delete_evidence(actor, consultation_id, evidence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{consultation_id}/evidence/{evidence_id}/file",
    operation_id="evidence_upload_file",
    response_model=EvidenceOut,
    responses=problem_responses(401, 403, 404, 409, 413, 422),
    summary="Attach a screenshot or PDF (PNG, JPEG, PDF by content; image metadata such as GPS removed)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def upload_evidence_file(
    consultation_id: uuid.UUID,
    evidence_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG or PDF")],
) -> EvidenceOut:
    """The file is recognised by its content (PNG, JPEG or PDF), not its name or declared type. Images are re-encoded without metadata (GPS, EXIF, text chunks); PDFs are rewritten without scripts, actions, forms, attachments or media, and refused (422 pdf_not_cleanable) when that cannot be proved. One file per evidence item."""
    data = await file.read(container.settings.max_upload_bytes + 1)
    if len(data) > container.settings.max_upload_bytes:
        raise BodyTooLarge()
    return evidence_out(
        await container.consultations.attach_file(actor, consultation_id, evidence_id, data),
        container.requests.rules,
        actor,
    )


@router.get(
    "/{consultation_id}/evidence/{evidence_id}/file",
    operation_id="evidence_download_file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problem_responses(401, 403, 404)},
    summary="Download the cleaned copy of the file (always as an attachment; the original is never served)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def download_evidence_file(
    consultation_id: uuid.UUID, evidence_id: uuid.UUID, actor: Person, container: ContainerDep
) -> Response:
    """The cleaned copy (its SHA-256 is `file.copy_sha256`), always as an attachment with a fixed content type,
    never rendered inline. The original as received is never served by any route. A sealed file (an upload
    slot in an intimate-image case) is 404 for everyone but the assigned consultant."""
    item, stream = await container.consultations.read_file(actor, consultation_id, evidence_id)
    assert item.file is not None
    name = f"evidence-{item.id}.{EXTENSIONS.get(item.file.content_type, 'bin')}"
    # Streamed from the store (a local file or an object in S3) without holding the whole file in memory.
    return StreamingResponse(
        stream,
        media_type=item.file.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(item.file.size),
        },
    )


@router.post(
    "/{consultation_id}/evidence/{evidence_id}/upload-slot",
    operation_id="evidence_open_upload_slot",
    response_model=EvidenceOut,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Supervisor: allow one file upload to this evidence item of an intimate-image case, with a reason",
    dependencies=[require(policy.SUPERVISORS)],
)
async def open_upload_slot(
    consultation_id: uuid.UUID,
    evidence_id: uuid.UUID,
    body: UploadSlotIn,
    actor: Person,
    container: ContainerDep,
) -> EvidenceOut:
    """In a consultation about private sexual images, child sexual abuse material or voyeur images, no picture is
    taken by default (evidence is a URL, a description and hashes computed on the device). When an adult insists,
    a supervisor may open one upload slot for one item; the reason is recorded. The file is then sealed: only
    the assigned consultant can open it. Never for a consultation about a minor (403
    minor_images_never_accepted)."""
    return evidence_out(
        await container.consultations.open_upload_slot(actor, consultation_id, evidence_id, body.reason),
        container.requests.rules,
        actor,
    )


@router.get(
    "/{consultation_id}/evidence/{evidence_id}/similar",
    operation_id="evidence_similar",
    response_model=list[SimilarEvidenceOut],
    responses=problem_responses(401, 403, 404),
    summary="Staff: evidence items in any consultation whose picture hash (PDQ) is near this one's",
    dependencies=[require(policy.CASEWORKERS)],
)
async def similar_evidence(
    consultation_id: uuid.UUID, evidence_id: uuid.UUID, actor: Person, container: ContainerDep
) -> list[SimilarEvidenceOut]:
    """The same picture spreading, seen as one pattern without anyone opening it: items whose PDQ hashes differ
    in at most MADOGUCHI_PDQ_MATCH_DISTANCE bits, closest first. Ids and distances only; consultants and
    supervisors only (consulters never see other consultations)."""
    return [
        SimilarEvidenceOut(
            evidence_id=s.evidence_id,
            consultation_id=s.consultation_id,
            distance=s.distance,
            created_at=s.created_at,
        )
        for s in await container.consultations.similar(actor, consultation_id, evidence_id)
    ]


# -- referrals ----------------------------------------------------------------------------------------


def referral_out(referral: Referral, desk: Desk | None) -> ReferralOut:
    return ReferralOut(
        id=referral.id,
        desk_code=referral.desk_code,
        desk=desk_out(desk) if desk else None,
        reason=referral.reason,
        state=referral.state.value,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
    )


@router.get(
    "/{consultation_id}/referrals",
    operation_id="referrals_list",
    response_model=Page[ReferralOut],
    tags=["referrals"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Referrals to other desks, oldest first, with the desks' current contact details",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_referrals(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 25,
) -> Page[ReferralOut]:
    found = await container.referrals.list_for(
        actor, consultation_id, after=position(cursor), limit=limit + 1
    )
    return page_by(found, limit, lambda x: referral_out(*x), lambda x: (x[0].created_at, x[0].id))


async def replay_referral(
    actor: Actor, container: Any, referral_id: uuid.UUID, request: Request
) -> tuple[Any, dict[str, str]]:
    consultation_id = uuid.UUID(request.path_params["consultation_id"])
    for referral, desk in await container.referrals.list_for(actor, consultation_id):
        if referral.id == referral_id:
            return referral_out(referral, desk), {}
    raise NotFound("referral_not_found")


@router.post(
    "/{consultation_id}/referrals",
    operation_id="referrals_create",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralOut,
    tags=["referrals"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Staff propose a referral to a desk, with the reason; the consulter then consents or declines",
    dependencies=[
        require(policy.CONSULTATION_READERS),
        idempotent("referrals_create", "referral", replay_referral),
    ],
)
async def create_referral(
    consultation_id: uuid.UUID, body: ReferralIn, actor: Person, container: ContainerDep
) -> ReferralOut:
    referral, desk = await container.referrals.propose(actor, consultation_id, body.desk_code, body.reason)
    return referral_out(referral, desk)


@router.post(
    "/{consultation_id}/referrals/{referral_id}/{action}",
    operation_id="referrals_act",
    response_model=ReferralOut,
    tags=["referrals"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="consent / decline (consulter); make / close / withdraw (staff)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def act_on_referral(
    consultation_id: uuid.UUID,
    referral_id: uuid.UUID,
    action: ReferralAction,
    actor: Person,
    container: ContainerDep,
) -> ReferralOut:
    """The consulter consents to or declines a proposed referral; staff then make, close or withdraw it. Each action is allowed only from the states where it applies (409 otherwise)."""
    referral, desk = await container.referrals.act(actor, consultation_id, referral_id, action)
    return referral_out(referral, desk)
