"""The signed-in person's copy of what the centre holds about them (APPI right of access, issue 17 §3)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.deps import ContainerDep, Person, require
from api.schemas.common import problem_responses
from api.schemas.exports import ExportOut
from domain import policy
from domain.exports import PersonalExport

router = APIRouter(prefix="/v1/me/exports", tags=["me"])


def export_out(export: PersonalExport) -> ExportOut:
    return ExportOut(
        id=export.id,
        status=export.state,
        requested_at=export.requested_at,
        ready_at=export.ready_at,
        expires_at=export.expires_at,
        downloaded_at=export.downloaded_at,
        size=export.stored.size if export.stored else None,
    )


@router.post(
    "",
    operation_id="me_exports_create",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    responses=problem_responses(401, 403, 409),
    summary="Ask for a copy of everything held about oneself (prepared in the background, mailed when ready)",
    dependencies=[require(policy.EVERYONE)],
)
async def create_export(actor: Person, container: ContainerDep, response: Response) -> ExportOut:
    """Account, consultations with their messages, answers, evidence and files, requests with their
    history, referrals, letters (every version), the dates given for the clocks, consents, the LINE link,
    sign-in history, erasure requests and earlier exports, as a ZIP (`export.json` in UTF-8 and the files).
    Staff members are not named: what staff wrote or did says only that it was staff. Prepared by
    the worker; a mail without any content says when it is ready. Needs a fresh proof of identity (a sign-in
    or POST /v1/auth/step-up within the last few minutes): otherwise 401 `step_up_required`. One export at a
    time: while one is pending or ready, 409 `export_already_open`."""
    container.accounts.ensure_fresh(actor)
    export = await container.exports.request(actor)
    response.headers["Location"] = f"/v1/me/exports/{export.id}"
    return export_out(export)


@router.get(
    "/{export_id}",
    operation_id="me_exports_get",
    response_model=ExportOut,
    responses=problem_responses(401, 403, 404),
    summary="Whether one's export is ready, downloaded or expired",
    dependencies=[require(policy.EVERYONE)],
)
async def get_export(export_id: uuid.UUID, actor: Person, container: ContainerDep) -> ExportOut:
    """Only one's own exports; any other id is 404."""
    return export_out(await container.exports.get(actor, export_id))


@router.get(
    "/{export_id}/download",
    operation_id="me_exports_download",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The ZIP"},
        **problem_responses(401, 403, 404, 409, 410),
    },
    summary="Download one's export, once",
    dependencies=[require(policy.EVERYONE)],
)
async def download_export(export_id: uuid.UUID, actor: Person, container: ContainerDep) -> Response:
    """Once, before `expires_at`: afterwards (or once downloaded) the stored copy is deleted and this answers
    410 `export_gone`; a copy that can no longer be read answers 410 with `state` failed (ask for a new
    export); still being prepared: 409 `export_not_ready`. Needs a fresh proof of identity, like the
    request (otherwise 401 `step_up_required`)."""
    container.accounts.ensure_fresh(actor)
    export, data = await container.exports.download(actor, export_id)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="madoguchi-export-{export.id}.zip"',
            "Cache-Control": "no-store",
        },
    )
