"""The signed-in person's consent ledger: read it, give what the page offers, withdraw (issue 17 §4)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import ContainerDep, Person
from api.idempotency import idempotent
from api.schemas.common import problem_responses
from api.schemas.consents import ConsentGrantIn, ConsentList, ConsentOut, ConsentWithdrawalIn
from domain.consents import ACTION_LABELS, ConsentRecord, Purpose

router = APIRouter(prefix="/v1/me/consents", tags=["me"])


def consent_out(record: ConsentRecord, in_force: bool) -> ConsentOut:
    ja, en = record.label
    action_ja, action_en = ACTION_LABELS[record.action]
    return ConsentOut(
        id=record.id,
        purpose=record.purpose,
        purpose_label_ja=ja,
        purpose_label_en=en,
        action=record.action,
        action_label_ja=action_ja,
        action_label_en=action_en,
        source=record.source,
        recorded_at=record.recorded_at,
        in_force=in_force,
        terms_version=record.terms_version,
        consultation_id=record.consultation_id,
        referral_id=record.referral_id,
        desk_code=record.desk_code,
    )


@router.get(
    "",
    operation_id="me_consents_list",
    summary="Every consent one has given or withdrawn, newest first",
    response_model=ConsentList,
    responses=problem_responses(401, 403),
)
async def list_consents(actor: Person, container: ContainerDep) -> ConsentList:
    """Only the caller's own records. `in_force` says whether a grant still holds."""
    records = await container.consents.of_person(actor)
    return ConsentList(items=[consent_out(r, active) for r, active in records])


@router.post(
    "",
    operation_id="me_consents_grant",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentOut,
    responses=problem_responses(401, 403, 409, 422),
    summary="Give consent to LINE notifications or to research use (consulters)",
    dependencies=[idempotent("me_consents_grant", "consent")],
)
async def grant_consent(body: ConsentGrantIn, actor: Person, container: ContainerDep) -> ConsentOut:
    record = await container.consents.grant(actor, Purpose(body.purpose))
    return consent_out(record, True)


@router.post(
    "/withdrawals",
    operation_id="me_consents_withdraw",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentOut,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Withdraw a consent; the withdrawal is itself recorded (consulters)",
    dependencies=[idempotent("me_consents_withdraw", "consent")],
)
async def withdraw_consent(body: ConsentWithdrawalIn, actor: Person, container: ContainerDep) -> ConsentOut:
    """LINE notifications: no more push notices on LINE. Sharing with a desk: name the referral (that one) or
    the desk (every referral to it consented to so far); a referral not yet made can then no longer be made.
    Terms and sensitive data cannot be withdrawn here (409): withdraw the consultation instead."""
    record = await container.consents.withdraw(
        actor, Purpose(body.purpose), referral_id=body.referral_id, desk_code=body.desk_code
    )
    return consent_out(record, False)
