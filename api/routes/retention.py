"""Retention and the legal hold (issue 17 §2): supervisors see what the worker's next retention pass would shred,
and place or lift a hold on a case (a reason is required; both are on the case's chain of custody)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from api.deps import ContainerDep, Person, require
from api.schemas.common import problem_responses
from api.schemas.retention import LegalHoldIn, LegalHoldOut, RetentionReportOut, RetentionRuleOut
from domain import policy
from domain.errors import NotFound

router = APIRouter(tags=["retention"])
HOLD = "/v1/consultations/{consultation_id}/legal-hold"


@router.get(
    "/v1/retention",
    operation_id="retention_report",
    response_model=RetentionReportOut,
    responses=problem_responses(401, 403),
    summary="Supervisor: the retention rules and what the next retention pass would shred (a dry run)",
    dependencies=[require(policy.SUPERVISORS)],
)
async def retention_report(actor: Person, container: ContainerDep) -> RetentionReportOut:
    """Closed and withdrawn consultations are shredded once their period has passed (the rules, with their basis
    and source), unless a legal hold keeps them. Shredding destroys the case's data key: what people wrote, the
    thread, evidence texts and files become unreadable everywhere; coded fields stay for the statistics."""
    report = await container.retention.report(actor)
    return RetentionReportOut(
        rules=[RetentionRuleOut.model_validate(r) for r in container.retention.rules.values()],
        due=report.due,
        held=report.held,
        consultation_ids=list(report.consultation_ids),
    )


@router.get(
    HOLD,
    operation_id="legal_hold_get",
    response_model=LegalHoldOut,
    responses=problem_responses(401, 403, 404),
    summary="Supervisor: the legal hold in force on a consultation",
    dependencies=[require(policy.SUPERVISORS)],
)
async def get_legal_hold(consultation_id: uuid.UUID, actor: Person, container: ContainerDep) -> LegalHoldOut:
    hold = await container.retention.hold(actor, consultation_id)
    if hold is None:
        raise NotFound("legal_hold_not_found")
    return LegalHoldOut.model_validate(hold)


@router.put(
    HOLD,
    operation_id="legal_hold_place",
    response_model=LegalHoldOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Supervisor: place a legal hold (the case is kept whatever its retention says)",
    dependencies=[require(policy.SUPERVISORS)],
)
async def place_legal_hold(
    consultation_id: uuid.UUID, body: LegalHoldIn, actor: Person, container: ContainerDep
) -> LegalHoldOut:
    """The reason stays with the hold (staff see it); the chain of custody records that a hold was placed and by
    whom. One hold at a time per case (409 legal_hold_exists)."""
    return LegalHoldOut.model_validate(
        await container.retention.place_hold(actor, consultation_id, body.reason)
    )


@router.delete(
    HOLD,
    operation_id="legal_hold_lift",
    status_code=204,
    responses=problem_responses(401, 403, 404),
    summary="Supervisor: lift the legal hold (retention applies again)",
    dependencies=[require(policy.SUPERVISORS)],
)
async def lift_legal_hold(consultation_id: uuid.UUID, actor: Person, container: ContainerDep) -> Response:
    await container.retention.lift_hold(actor, consultation_id)
    return Response(status_code=204)
