"""A person's request to erase their account, and the supervisors' list of pending ones (issue 17 §3)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import ContainerDep, Person, require
from api.pagination import CursorParam, LimitParam, page_by, position
from api.schemas.common import Page, problem_responses
from api.schemas.erasure import ErasureOut, PendingErasureOut
from domain import policy
from domain.erasure import ErasureRequest

router = APIRouter(tags=["me"])


def erasure_out(r: ErasureRequest) -> ErasureOut:
    return ErasureOut(
        id=r.id,
        status=r.status,
        requested_at=r.requested_at,
        due_at=r.due_at,
        cancelled_at=r.cancelled_at,
        completed_at=r.completed_at,
    )


@router.post(
    "/v1/me/erasure",
    operation_id="me_erasure_request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureOut,
    responses=problem_responses(401, 403, 409),
    summary="Ask to delete one's account (a fresh sign-in or step-up is required; consulters)",
    dependencies=[require(policy.CONSULTERS)],
)
async def request_erasure(actor: Person, container: ContainerDep) -> ErasureOut:
    """Carried out after the grace period (cancellable until then); a confirmation mail says when. Staff
    accounts are removed by an administrator (403)."""
    return erasure_out(await container.erasure.request(actor))


@router.get(
    "/v1/me/erasure",
    operation_id="me_erasure_show",
    response_model=ErasureOut,
    responses=problem_responses(401, 403, 404),
    summary="One's latest request to delete the account",
    dependencies=[require(policy.CONSULTERS)],
)
async def show_erasure(actor: Person, container: ContainerDep) -> ErasureOut:
    return erasure_out(await container.erasure.current(actor))


@router.delete(
    "/v1/me/erasure",
    operation_id="me_erasure_cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
    summary="Cancel one's pending request to delete the account (during the grace period)",
    dependencies=[require(policy.CONSULTERS)],
)
async def cancel_erasure(actor: Person, container: ContainerDep) -> Response:
    await container.erasure.cancel(actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/erasure-requests",
    operation_id="erasure_requests_pending",
    response_model=Page[PendingErasureOut],
    responses=problem_responses(401, 403, 422),
    summary="Pending account erasure requests, oldest first (supervisors)",
    tags=["retention"],
    dependencies=[require(policy.SUPERVISORS)],
)
async def pending_erasures(
    actor: Person,
    container: ContainerDep,
    cursor: CursorParam = None,
    limit: LimitParam = 25,
) -> Page[PendingErasureOut]:
    found = await container.erasure.pending(actor, position(cursor), limit + 1)
    return page_by(
        found,
        limit,
        lambda r: PendingErasureOut(id=r.id, user_id=r.user_id, requested_at=r.requested_at, due_at=r.due_at),
        lambda r: (r.requested_at, r.id),
    )
