"""Letters built from the evidence (issue 15 §3): the removal letter per right and the disclosure request, as
PDF and as text for a service's web form; staff and the legal advisor review them like answers."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response, status

from api.deps import ContainerDep, Person, require
from api.idempotency import idempotent
from api.pagination import CursorParam, LimitParam, page_by, page_of, position
from api.schemas.common import Page, problem_responses
from api.schemas.letters import (
    FormFieldOut,
    FormTextOut,
    LetterDecisionIn,
    LetterFormOut,
    LetterFormTextOut,
    LetterIn,
    LetterItemOut,
    LetterNoticeOut,
    LetterOut,
    LetterQueueEntry,
    LetterReviewOut,
    LetterRevisionIn,
    LetterVersionOut,
    SenderOut,
)
from api.schemas.text import SingleLine
from domain import policy
from domain.actors import Actor
from domain.letters import (
    Draft,
    Letter,
    LetterCatalogue,
    LetterForm,
    LetterKind,
    LetterService,
    LetterState,
    Sender,
    form_texts,
    missing_fields,
)
from infra.letters_pdf import render_letter_pdf

router = APIRouter(tags=["letters"])
L = "/v1/consultations/{consultation_id}/letters"
ERRORS = problem_responses(401, 403, 404)


def notice_out(catalogue: LetterCatalogue) -> LetterNoticeOut:
    return LetterNoticeOut(
        forwarding_ja=catalogue.notice.forwarding_ja, address_ja=catalogue.notice.address_ja
    )


def form_out(form: LetterForm) -> LetterFormOut:
    return LetterFormOut(
        kind=form.kind.value,
        title_ja=form.title_ja,
        subtitle_ja=form.subtitle_ja,
        title_en=form.title_en,
        source_url=form.source_url,
        form_url=form.form_url,
        checked=form.checked,
        fields=[
            FormFieldOut(
                code=f.code,
                kind=f.kind,
                label_ja=f.label_ja,
                help_ja=f.help_ja,
                required=f.required,
                max_length=f.max_length,
                choices=list(f.choices),
            )
            for f in form.fields
        ],
    )


def letter_out(letters: LetterService, letter: Letter, actor: Actor) -> LetterOut:
    """A letter as `actor` may see it: a consulter is told which role reviewed it, not who."""
    form = letters.form(letter.kind)
    return LetterOut(
        id=letter.id,
        consultation_id=letter.consultation_id,
        kind=letter.kind.value,
        title_ja=f"{form.title_ja}({form.subtitle_ja})",
        state=letter.state.value,
        review_reasons=letter.review_reasons,
        needs_advisor=bool(letters.rule_reasons(letter)),
        missing_fields=missing_fields(form, letter.latest.content),
        notice=notice_out(letters.catalogue),
        created_at=letter.created_at,
        updated_at=letter.updated_at,
        submitted_at=letter.submitted_at,
        finalised_at=letter.finalised_at,
        version=letter.version,
        versions=[
            LetterVersionOut(
                number=v.number,
                author_id=v.author_id,
                created_at=v.created_at,
                recipient=v.content.recipient,
                items=[LetterItemOut.model_validate(i) for i in v.content.items],
                choices={k: list(x) for k, x in v.content.choices.items()},
                texts=dict(v.content.texts),
                sender=SenderOut.model_validate(v.content.sender),
            )
            for v in letter.versions
        ],
        reviews=[
            LetterReviewOut(
                version_number=r.version_number,
                reviewer_id=policy.staff_identity(actor, r.reviewer_id),
                reviewer_role=r.reviewer_role,
                decision=r.decision,
                advice=r.advice,
                created_at=r.created_at,
            )
            for r in letter.reviews
        ],
    )


def draft_of(body: LetterRevisionIn) -> Draft:
    return Draft(
        recipient=body.recipient,
        evidence_ids=tuple(body.evidence_ids),
        choices={k: tuple(v) for k, v in body.choices.items()},
        texts=dict(body.texts),
        sender=Sender(body.sender.name or None, body.sender.address or None, body.sender.contact or None),
    )


@router.get(
    "/v1/letter-forms",
    operation_id="letter_forms_list",
    response_model=list[LetterFormOut],
    summary="The standard letter forms: fields, labels, help for the guided fields, source and date checked",
)
async def list_letter_forms(container: ContainerDep) -> list[LetterFormOut]:
    """Public reference data: the forms follow the structure of the standard forms published by the 情報流通プラットフォーム対処法ガイドライン等検討協議会 (https://www.isplaw.jp/), in the centre's own words."""
    return [form_out(f) for f in container.letters.catalogue.forms]


@router.get(
    L,
    operation_id="letters_list",
    response_model=Page[LetterOut],
    responses=ERRORS,
    summary="The letters of a consultation, newest first (the consulter and the assigned staff)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def list_letters(
    consultation_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 25,
) -> Page[LetterOut]:
    found = await container.letters.list_for(actor, consultation_id, after=position(cursor), limit=limit + 1)
    return page_of(found, limit, lambda x: letter_out(container.letters, x, actor))


async def replay_letter(
    actor: Actor, container: Any, letter_id: uuid.UUID, request: Request
) -> tuple[Any, dict[str, str]]:
    consultation_id = uuid.UUID(request.path_params["consultation_id"])
    letters = container.letters
    return letter_out(letters, await letters.get(actor, consultation_id, letter_id), actor), {}


@router.post(
    L,
    operation_id="letters_create",
    status_code=status.HTTP_201_CREATED,
    response_model=LetterOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="Build a letter from evidence items of this consultation (the consulter)",
    dependencies=[require(policy.CONSULTERS), idempotent("letters_create", "letter", replay_letter)],
)
async def create_letter(
    consultation_id: uuid.UUID, body: LetterIn, actor: Person, container: ContainerDep
) -> LetterOut:
    """The URLs, posting times (JST) and excerpts come from the chosen evidence items, which must belong to this consultation (any other id is refused as unknown_evidence). The guided fields (why the right is infringed, why disclosure is needed) are written by the person; empty ones are allowed in a draft and listed in missing_fields. Send an Idempotency-Key to retry safely."""
    letters = container.letters
    letter = await letters.create(actor, consultation_id, LetterKind(body.kind), draft_of(body))
    return letter_out(letters, letter, actor)


@router.get(
    L + "/{letter_id}",
    operation_id="letters_get",
    response_model=LetterOut,
    responses=ERRORS,
    summary="One letter with every version, its reviews and what the recipient may forward to the poster",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def get_letter(
    consultation_id: uuid.UUID, letter_id: uuid.UUID, actor: Person, container: ContainerDep
) -> LetterOut:
    letters = container.letters
    return letter_out(letters, await letters.get(actor, consultation_id, letter_id), actor)


@router.post(
    L + "/{letter_id}/versions",
    operation_id="letters_revise",
    response_model=LetterOut,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    summary="Save a new version of the letter (every change is kept); an approved letter goes back to draft",
    dependencies=[require(policy.CONSULTERS)],
)
async def revise_letter(
    consultation_id: uuid.UUID,
    letter_id: uuid.UUID,
    body: LetterRevisionIn,
    actor: Person,
    container: ContainerDep,
) -> LetterOut:
    letters = container.letters
    return letter_out(letters, await letters.revise(actor, consultation_id, letter_id, draft_of(body)), actor)


@router.post(
    L + "/{letter_id}/submit",
    operation_id="letters_submit",
    response_model=LetterOut,
    responses=problem_responses(401, 403, 404, 409, 412),
    summary="Ask for review (the consulter or the assigned staff)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def submit_letter(
    consultation_id: uuid.UUID, letter_id: uuid.UUID, actor: Person, container: ContainerDep
) -> LetterOut:
    letters = container.letters
    return letter_out(letters, await letters.submit(actor, consultation_id, letter_id), actor)


@router.post(
    L + "/{letter_id}/finalise",
    operation_id="letters_finalise",
    response_model=LetterOut,
    responses=problem_responses(401, 403, 404, 409, 412),
    summary="Make the letter final: every required field written and, where the review rules apply, approved",
    dependencies=[require(policy.CONSULTERS)],
)
async def finalise_letter(
    consultation_id: uuid.UUID, letter_id: uuid.UUID, actor: Person, container: ContainerDep
) -> LetterOut:
    """A disclosure request (and a letter about private sexual images) is final only after the legal advisor approved its latest version: the answer review rules (review_rules.yaml) decide, applied to the case and the letter."""
    letters = container.letters
    return letter_out(letters, await letters.finalise(actor, consultation_id, letter_id), actor)


@router.get(
    L + "/{letter_id}/pdf",
    operation_id="letters_pdf",
    response_class=Response,
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The letter as an A4 PDF with an embedded Japanese font; a draft is marked 下書き",
        },
        **ERRORS,
    },
    summary="Download the letter as PDF (A4, Japanese font embedded)",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def letter_pdf(
    consultation_id: uuid.UUID, letter_id: uuid.UUID, actor: Person, container: ContainerDep
) -> Response:
    """Read the notice in the letter (GET) before sending: the recipient may forward the letter to the poster. The sender's name and address appear only as the person entered them."""
    letters = container.letters
    letter = await letters.get(actor, consultation_id, letter_id)
    final = letter.state is LetterState.final
    # Drawing the PDF is CPU work: off the event loop, so one download does not stall every other request.
    data = await anyio.to_thread.run_sync(
        functools.partial(
            render_letter_pdf,
            letters.form(letter.kind),
            letter.latest.content,
            letters.catalogue.notice,
            final=final,
            dated=letter.finalised_at or letter.latest.created_at,
            version_number=letter.latest.number,
        )
    )
    return Response(
        content=data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="letter-{letter.id}-v{letter.latest.number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    L + "/{letter_id}/form-text",
    operation_id="letters_form_text",
    response_model=LetterFormTextOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="The letter as text for each field of a service's web form, within that form's length limits",
    dependencies=[require(policy.CONSULTATION_READERS)],
)
async def letter_form_text(
    consultation_id: uuid.UUID,
    letter_id: uuid.UUID,
    actor: Person,
    container: ContainerDep,
    service: Annotated[
        str,
        Query(
            max_length=64, description="A service code of the platform reference data: x, youtube, openchat …"
        ),
        SingleLine(min_length=1, max_length=64),
    ],
) -> LetterFormTextOut:
    """Text is never cut: a field over its limit says so (fits false, over_by) and the person shortens it."""
    letters = container.letters
    letter = await letters.get(actor, consultation_id, letter_id)
    web = letters.web_form(service)
    fields = form_texts(letters.form(letter.kind), letter.latest.content, web)
    return LetterFormTextOut(
        letter_id=letter.id,
        service=web.service,
        form_name_ja=web.form_name_ja,
        url=web.url,
        source_url=web.source_url,
        checked=web.checked,
        fits=all(f.fits for f in fields),
        fields=[
            FormTextOut(
                code=f.code,
                label_ja=f.label_ja,
                text=f.text,
                length=f.length,
                max_length=f.max_length,
                limit=f.limit,
                fits=f.fits,
                over_by=f.over_by,
            )
            for f in fields
        ],
        notice=notice_out(letters.catalogue),
    )


# -- review ------------------------------------------------------------------------------------------


@router.get(
    "/v1/letter-reviews",
    operation_id="letter_reviews_queue",
    response_model=Page[LetterQueueEntry],
    responses=problem_responses(401, 403, 422),
    summary="Letters waiting for the legal advisor, longest waiting first",
    dependencies=[require(policy.LEGAL_ADVISORS)],
)
async def letter_review_queue(
    actor: Person, container: ContainerDep, cursor: CursorParam = None, limit: LimitParam = 50
) -> Page[LetterQueueEntry]:
    found = await container.letters.queue(
        actor, after=position(cursor), limit=limit
    )  # gives limit + 1 when more follow
    return page_by(
        found,
        limit,
        lambda x: LetterQueueEntry(
            letter=letter_out(container.letters, x, actor), waiting_since=x.submitted_at or x.created_at
        ),
        lambda x: (x.submitted_at or x.created_at, x.id),
    )


@router.post(
    "/v1/letter-reviews/{letter_id}",
    operation_id="letter_reviews_decide",
    response_model=LetterOut,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
    summary="Approve or return a letter waiting for review (legal advisor, or the assigned staff)",
    dependencies=[require(policy.LETTER_REVIEWERS)],
)
async def decide_letter(
    letter_id: uuid.UUID, body: LetterDecisionIn, actor: Person, container: ContainerDep
) -> LetterOut:
    """Returning needs advice for the person. Only the legal advisor's approval of the latest version satisfies the review rules (disclosure requests)."""
    letters = container.letters
    return letter_out(
        letters, await letters.decide(actor, letter_id, body.decision == "approved", body.advice), actor
    )
