"""The quality loop: answer drafts and the legal advisor's review, the manual, supervision, the council."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status

from api.deps import ContainerDep, Person, require
from api.idempotency import idempotent
from api.pagination import CursorParam, LimitParam, page_by, page_of, position
from api.schemas.common import Page, problem_responses
from api.schemas.quality import (
    AnonymisedCaseOut,
    AnswerVersionOut,
    AuditEventOut,
    CouncilStatisticsOut,
    DraftIn,
    DraftOut,
    DraftRevisionIn,
    FindingIn,
    FindingOut,
    ManualEntryOut,
    ManualRefOut,
    OverviewOut,
    ProposalIn,
    ProposalOut,
    ReviewCase,
    ReviewDecisionIn,
    ReviewOut,
    ReviewQueueEntry,
    SampleIn,
    SampleOut,
    SectionRevisionIn,
    StaleUseOut,
)
from api.schemas.text import SingleLine
from domain import policy
from domain.actors import Actor
from domain.answers import AnswerDraft
from domain.errors import NotFound
from domain.quality import Finding, ManualEntry, Period, Proposal, Sample

router = APIRouter(tags=["quality"])
# Codes, slugs and pseudonyms in the path: one line of text; an unknown one is 404.
CodePath = Annotated[str, Path(max_length=64), SingleLine()]
ANSWERS = "/v1/consultations/{consultation_id}/answers"
ERRORS = problem_responses(401, 403, 404, 409, 422)


def draft_out(d: AnswerDraft) -> DraftOut:
    return DraftOut(
        id=d.id,
        consultation_id=d.consultation_id,
        state=d.state.value,
        review_reasons=d.review_reasons,
        needs_review=d.needs_review,
        created_at=d.created_at,
        submitted_at=d.submitted_at,
        published_at=d.published_at,
        versions=[
            AnswerVersionOut(
                number=v.number,
                body=v.body,
                author_id=v.author_id,
                created_at=v.created_at,
                manual_refs=[ManualRefOut(code=r.code, version=r.version) for r in v.manual_refs],
                template=ManualRefOut(code=v.template.code, version=v.template.version)
                if v.template
                else None,
                template_values=dict(v.template_values),
            )
            for v in d.versions
        ],
        reviews=[
            ReviewOut(
                version_number=r.version_number,
                reviewer_id=r.reviewer_id,
                decision=r.decision,
                advice=r.advice,
                created_at=r.created_at,
            )
            for r in d.reviews
        ],
    )


def entry_out(e: ManualEntry) -> ManualEntryOut:
    return ManualEntryOut(
        code=e.code,
        version=e.version,
        title_ja=e.title_ja,
        title_en=e.title_en,
        body_ja=e.body_ja,
        sections=list(e.sections),
        created_at=e.created_at,
        created_by=e.created_by,
        note=e.note,
    )


def sample_out(s: Sample) -> SampleOut:
    return SampleOut(
        id=s.id,
        period_from=s.period_from,
        period_to=s.period_to,
        method=s.method,
        size=s.size,
        created_at=s.created_at,
        items=[p for p, _ in s.items],
    )


def finding_out(f: Finding) -> FindingOut:
    return FindingOut(
        id=f.id,
        pseudonym=f.pseudonym,
        member_id=f.member_id,
        comment=f.comment,
        created_at=f.created_at,
        **f.scores,
    )


def proposal_out(p: Proposal) -> ProposalOut:
    return ProposalOut(
        id=p.id,
        section_code=p.section_code,
        based_on_version=p.based_on_version,
        proposed_body=p.proposed_body,
        rationale=p.rationale,
        state=p.state,
        created_at=p.created_at,
        decided_at=p.decided_at,
        resulting_version=p.resulting_version,
    )


FromQ = Annotated[datetime, Query(alias="from", description="Start of the period (with a time zone)")]
ToQ = Annotated[datetime, Query(alias="to", description="End of the period, exclusive (with a time zone)")]


# -- answer drafts ---------------------------------------------------------------------------------


@router.get(
    ANSWERS,
    operation_id="answers_list",
    summary="The answer drafts of a consultation, oldest first (staff)",
    response_model=Page[DraftOut],
    responses=ERRORS,
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_drafts(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 25,
) -> Page[DraftOut]:
    found = await container.answers.list_for(actor, consultation_id, after=position(cursor), limit=limit + 1)
    return page_of(found, limit, draft_out)


async def replay_draft(
    actor: Actor, container: Any, draft_id: uuid.UUID, request: Request
) -> tuple[Any, dict[str, str]]:
    consultation_id = uuid.UUID(request.path_params["consultation_id"])
    return draft_out(await container.answers.get(actor, consultation_id, draft_id)), {}


@router.post(
    ANSWERS,
    operation_id="answers_create",
    status_code=status.HTTP_201_CREATED,
    response_model=DraftOut,
    responses=ERRORS,
    summary="Draft an answer; the review rules decide whether the legal advisor must see it",
    dependencies=[
        require(policy.CONSULTATION_READERS),
        idempotent("answers_create", "answer_draft", replay_draft),
    ],
)
async def create_draft(
    consultation_id: uuid.UUID, body: DraftIn, actor: Person, container: ContainerDep
) -> DraftOut:
    draft = await container.answers.create(
        actor, consultation_id, body.body, body.manual_sections, body.template, body.request_review
    )
    return draft_out(draft)


@router.get(
    ANSWERS + "/{draft_id}",
    operation_id="answers_get",
    summary="One answer draft with its versions and review state (staff)",
    response_model=DraftOut,
    responses=ERRORS,
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def get_draft(
    consultation_id: uuid.UUID, draft_id: uuid.UUID, actor: Person, container: ContainerDep
) -> DraftOut:
    return draft_out(await container.answers.get(actor, consultation_id, draft_id))


@router.post(
    ANSWERS + "/{draft_id}/versions",
    operation_id="answers_revise",
    response_model=DraftOut,
    responses=ERRORS,
    summary="A new immutable version (after advice, or before submitting)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def revise_draft(
    consultation_id: uuid.UUID,
    draft_id: uuid.UUID,
    body: DraftRevisionIn,
    actor: Person,
    container: ContainerDep,
) -> DraftOut:
    draft = await container.answers.revise(
        actor, consultation_id, draft_id, body.body, body.manual_sections, body.template
    )
    return draft_out(draft)


@router.post(
    ANSWERS + "/{draft_id}/submit",
    operation_id="answers_submit",
    response_model=DraftOut,
    responses=ERRORS,
    summary="Send the draft to the legal advisor",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def submit_draft(
    consultation_id: uuid.UUID, draft_id: uuid.UUID, actor: Person, container: ContainerDep
) -> DraftOut:
    """Sends the draft to the legal advisor's queue. Whether review is needed is decided again from the current case and text."""
    return draft_out(await container.answers.submit(actor, consultation_id, draft_id))


@router.post(
    ANSWERS + "/{draft_id}/publish",
    operation_id="answers_publish",
    response_model=DraftOut,
    responses=ERRORS,
    summary="Publish an approved or review-exempt draft to the consulter (notifies them)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def publish_draft(
    consultation_id: uuid.UUID, draft_id: uuid.UUID, actor: Person, container: ContainerDep
) -> DraftOut:
    """Only an approved or review-exempt draft is published; whether the legal advisor must see it is decided again from the case and the text at this moment. The consulter is told by mail (and LINE if linked) in the same transaction, without any case content."""
    return draft_out(await container.answers.publish(actor, consultation_id, draft_id))


# -- the legal advisor -----------------------------------------------------------------------------


@router.get(
    "/v1/reviews",
    operation_id="reviews_queue",
    response_model=Page[ReviewQueueEntry],
    responses=problem_responses(401, 403, 422),
    summary="The legal advisor's queue, longest waiting first",
    dependencies=[require(policy.LEGAL_ADVISORS)],
)
async def review_queue(
    actor: Person, container: ContainerDep, cursor: CursorParam = None, limit: LimitParam = 50
) -> Page[ReviewQueueEntry]:
    found = await container.answers.queue(actor, after=position(cursor), limit=limit + 1)
    return page_by(
        found,
        limit,
        lambda e: ReviewQueueEntry(
            draft_id=e.draft.id,
            consultation_id=e.consultation.id,
            review_reasons=e.draft.review_reasons,
            waiting_seconds=e.waiting_seconds,
            categories=e.consultation.categories,
            urgent=e.consultation.urgent,
        ),
        lambda e: (e.draft.submitted_at or e.draft.created_at, e.draft.id),
    )


@router.get(
    "/v1/reviews/{draft_id}",
    operation_id="reviews_get",
    summary="The case behind a draft waiting for legal review (legal advisor)",
    response_model=ReviewCase,
    responses=ERRORS,
    dependencies=[require(policy.LEGAL_ADVISORS)],
)
async def review_case(draft_id: uuid.UUID, actor: Person, container: ContainerDep) -> ReviewCase:
    """Readable only while a draft of this case waits for review by the legal advisor."""
    draft, consultation = await container.answers.for_review(actor, draft_id)
    return ReviewCase(
        draft=draft_out(draft),
        consultation={
            "id": str(consultation.id),
            "title": consultation.title,
            "narrative": consultation.narrative,
            "categories": consultation.categories,
            "desired_outcomes": consultation.desired_outcomes,
            "platforms": consultation.platforms,
            "victim_is_minor": consultation.victim_is_minor,
            "urgency_flags": consultation.urgency_flags,
            "tried": consultation.tried,
        },
    )


@router.post(
    "/v1/reviews/{draft_id}/approve",
    operation_id="reviews_approve",
    summary="Approve a draft so it can be published (legal advisor); a note is optional",
    response_model=DraftOut,
    responses=ERRORS,
    dependencies=[require(policy.LEGAL_ADVISORS)],
)
async def approve_draft(
    draft_id: uuid.UUID, actor: Person, container: ContainerDep, body: ReviewDecisionIn | None = None
) -> DraftOut:
    # Advice is optional on approval, so an empty body (like submit and publish) is an approval without it.
    return draft_out(await container.answers.decide(actor, draft_id, True, body.advice if body else None))


@router.post(
    "/v1/reviews/{draft_id}/return",
    operation_id="reviews_return",
    response_model=DraftOut,
    responses=ERRORS,
    summary="Return the draft with advice (助言) the consultant sees and answers",
    dependencies=[require(policy.LEGAL_ADVISORS)],
)
async def return_draft(
    draft_id: uuid.UUID, body: ReviewDecisionIn, actor: Person, container: ContainerDep
) -> DraftOut:
    return draft_out(await container.answers.decide(actor, draft_id, False, body.advice))


# -- the manual ------------------------------------------------------------------------------------


@router.get(
    "/v1/manual/{kind}",
    operation_id="manual_list",
    response_model=list[ManualEntryOut],
    responses=problem_responses(401, 403, 404, 422),
    summary="Current manual sections or answer templates",
    dependencies=[require(policy.STAFF)],
)
async def list_manual(kind: CodePath, actor: Person, container: ContainerDep) -> list[ManualEntryOut]:
    return [entry_out(e) for e in await container.quality.manual(actor, _kind(kind))]


@router.get(
    "/v1/manual/{kind}/{code}",
    operation_id="manual_versions",
    response_model=list[ManualEntryOut],
    responses=ERRORS,
    summary="Every version of one section or template, oldest first",
    dependencies=[require(policy.STAFF)],
)
async def manual_versions(
    kind: CodePath, code: CodePath, actor: Person, container: ContainerDep
) -> list[ManualEntryOut]:
    return [entry_out(e) for e in await container.quality.manual_entry(actor, _kind(kind), code)]


@router.post(
    "/v1/manual/sections/{code}/versions",
    operation_id="manual_revise",
    status_code=status.HTTP_201_CREATED,
    response_model=ManualEntryOut,
    responses=ERRORS,
    summary="Supervisors: a new version of a section (accepting a council proposal if named)",
    dependencies=[require(policy.SUPERVISORS), idempotent("manual_revise", "manual_entry")],
)
async def revise_section(
    code: CodePath, body: SectionRevisionIn, actor: Person, container: ContainerDep
) -> ManualEntryOut:
    entry = await container.quality.revise_section(
        actor, code, body.body_ja, body.note, title_ja=body.title_ja, proposal_id=body.proposal_id
    )
    return entry_out(entry)


@router.get(
    "/v1/manual/sections/{code}/stale",
    operation_id="manual_stale_uses",
    response_model=list[StaleUseOut],
    responses=ERRORS,
    summary="Open consultations and drafts that used an older version of this section",
    dependencies=[require(policy.ANSWER_WRITERS)],
)
async def stale_uses(code: CodePath, actor: Person, container: ContainerDep) -> list[StaleUseOut]:
    return [
        StaleUseOut(
            consultation_id=u.consultation_id,
            draft_id=u.draft_id,
            draft_state=u.draft_state,
            used_version=u.used_version,
            current_version=u.current_version,
        )
        for u in await container.quality.stale_uses(actor, code)
    ]


def _kind(kind: str) -> str:
    if kind not in ("sections", "templates"):
        raise NotFound("not_found")
    return kind[:-1]


# -- supervision, council, trail -------------------------------------------------------------------


@router.get(
    "/v1/supervision/overview",
    operation_id="supervision_overview",
    response_model=OverviewOut,
    responses=problem_responses(401, 403, 422),
    summary="Workload, overdue first answers, review times, counts by status/category/channel/month",
    dependencies=[require(policy.SUPERVISORS)],
)
async def supervision_overview(actor: Person, container: ContainerDep, start: FromQ, end: ToQ) -> OverviewOut:
    o = await container.quality.overview(actor, Period(start, end))
    return OverviewOut(
        workload=o.workload,
        overdue_first_answers=o.overdue_first_answers,
        review=o.review,
        by_status=o.by_status,
        by_category=o.by_category,
        by_channel=o.by_channel,
        by_month=o.by_month,
    )


@router.post(
    "/v1/council/samples",
    operation_id="council_sample_create",
    status_code=status.HTTP_201_CREATED,
    response_model=SampleOut,
    responses=ERRORS,
    summary="Supervisors draw a sample of closed consultations",
    dependencies=[require(policy.SUPERVISORS), idempotent("council_sample_create", "council_sample")],
)
async def create_sample(body: SampleIn, actor: Person, container: ContainerDep) -> SampleOut:
    sample = await container.quality.draw_sample(
        actor, Period(body.period_from, body.period_to), body.size, body.method, body.seed
    )
    return sample_out(sample)


@router.get(
    "/v1/council/samples",
    operation_id="council_samples_list",
    summary="The samples of closed cases drawn for the council's verification, newest first",
    response_model=Page[SampleOut],
    responses=problem_responses(401, 403, 422),
    dependencies=[require(policy.COUNCIL_READERS)],
)
async def list_samples(
    actor: Person, container: ContainerDep, cursor: CursorParam = None, limit: LimitParam = 25
) -> Page[SampleOut]:
    found = await container.quality.samples(actor, after=position(cursor), limit=limit + 1)
    return page_of(found, limit, sample_out)


@router.get(
    "/v1/council/samples/{sample_id}/items/{pseudonym}",
    operation_id="council_case_get",
    response_model=AnonymisedCaseOut,
    responses=ERRORS,
    summary="One sampled case, anonymised (names, contacts, addresses, URLs and IDs masked; no files)",
    dependencies=[require(policy.COUNCIL_READERS)],
)
async def anonymised_case(
    sample_id: uuid.UUID, pseudonym: CodePath, actor: Person, container: ContainerDep
) -> AnonymisedCaseOut:
    """What council members see of a sampled case: structured fields, the month it opened, days instead of timestamps, and the texts with names, contacts, addresses, URLs and other identifiers masked. No files."""
    return AnonymisedCaseOut.model_validate(
        await container.quality.anonymised_case(actor, sample_id, pseudonym)
    )


@router.post(
    "/v1/council/samples/{sample_id}/items/{pseudonym}/findings",
    operation_id="council_finding_create",
    summary="Record a finding on one anonymised case of a sample, scored against the rubric",
    status_code=status.HTTP_201_CREATED,
    response_model=FindingOut,
    responses=ERRORS,
    dependencies=[require(policy.COUNCIL), idempotent("council_finding_create", "council_finding")],
)
async def create_finding(
    sample_id: uuid.UUID, pseudonym: CodePath, body: FindingIn, actor: Person, container: ContainerDep
) -> FindingOut:
    scores = body.model_dump(include={"accuracy", "timeliness", "tone", "referral_fit"})
    return finding_out(
        await container.quality.record_finding(actor, sample_id, pseudonym, scores, body.comment)
    )


@router.get(
    "/v1/council/samples/{sample_id}/findings",
    operation_id="council_findings_list",
    summary="The findings council members recorded against a sample, oldest first, one page at a time",
    response_model=Page[FindingOut],
    responses=ERRORS,
    dependencies=[require(policy.COUNCIL_READERS)],
)
async def list_findings(
    sample_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[FindingOut]:
    found = await container.quality.findings(actor, sample_id, after=position(cursor), limit=limit + 1)
    return page_of(found, limit, finding_out)


@router.post(
    "/v1/council/proposals",
    operation_id="council_proposal_create",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalOut,
    responses=ERRORS,
    summary="Council members propose a manual revision",
    dependencies=[require(policy.COUNCIL), idempotent("council_proposal_create", "manual_proposal")],
)
async def create_proposal(body: ProposalIn, actor: Person, container: ContainerDep) -> ProposalOut:
    return proposal_out(
        await container.quality.propose(actor, body.section_code, body.proposed_body, body.rationale)
    )


@router.get(
    "/v1/council/proposals",
    operation_id="council_proposals_list",
    summary="The council's proposals to revise the manual, with their decisions, newest first",
    response_model=Page[ProposalOut],
    responses=problem_responses(401, 403, 422),
    dependencies=[require(policy.COUNCIL_READERS)],
)
async def list_proposals(
    actor: Person, container: ContainerDep, cursor: CursorParam = None, limit: LimitParam = 25
) -> Page[ProposalOut]:
    found = await container.quality.proposals(actor, after=position(cursor), limit=limit + 1)
    return page_of(found, limit, proposal_out)


@router.post(
    "/v1/council/proposals/{proposal_id}/reject",
    operation_id="council_proposal_reject",
    summary="Decline a council proposal, with the reason (supervisors)",
    response_model=ProposalOut,
    responses=ERRORS,
    dependencies=[require(policy.SUPERVISORS)],
)
async def reject_proposal(proposal_id: uuid.UUID, actor: Person, container: ContainerDep) -> ProposalOut:
    return proposal_out(await container.quality.reject_proposal(actor, proposal_id))


@router.get(
    "/v1/council/statistics",
    operation_id="council_statistics",
    response_model=CouncilStatisticsOut,
    responses=problem_responses(401, 403, 422),
    summary="Counts of one closed month for the council; fewer than 5 are suppressed",
    dependencies=[require(policy.COUNCIL_READERS)],
)
async def council_statistics(
    actor: Person, container: ContainerDep, start: FromQ, end: ToQ
) -> CouncilStatisticsOut:
    """Counts of the consultations of one calendar month (Japan time) that has ended: `from` its first instant,
    `to` the first instant of the next month (422 period_not_a_closed_month otherwise, so that two periods can
    never be subtracted). Any count below 5 is suppressed, and whatever would let it be recomputed from the
    month's total; when the total itself is below 5, every count is."""
    return CouncilStatisticsOut.model_validate(
        await container.quality.council_statistics(actor, Period(start, end))
    )


@router.get(
    "/v1/audit-events",
    operation_id="audit_events_list",
    response_model=Page[AuditEventOut],
    responses=problem_responses(401, 403, 422),
    summary="The trail of staff actions (ids only), newest first",
    dependencies=[require(policy.AUDITORS)],
)
async def audit_events(
    actor: Person,
    container: ContainerDep,
    object_type: Annotated[str | None, Query(max_length=32), SingleLine()] = None,
    object_id: Annotated[str | None, Query(max_length=64), SingleLine()] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
) -> Page[AuditEventOut]:
    found = await container.quality.trail(
        actor, object_type, object_id, after=position(cursor), limit=limit + 1
    )
    return page_by(found, limit, AuditEventOut.model_validate, lambda e: (e.at, e.id))
