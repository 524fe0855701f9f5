"""The signed-in person: profile, password, TOTP enrolment."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.deps import ContainerDep, Person, PersonPreMfa, SignedInUser, client_address, require
from api.schemas.accounts import (
    Accepted,
    EmailChangeIn,
    MeOut,
    MeUpdate,
    PasswordChangeIn,
    TotpConfirmIn,
    TotpEnrolmentOut,
)
from api.schemas.common import problem_responses
from domain import policy
from domain.models import User

router = APIRouter(prefix="/v1/me", tags=["me"])

EMAIL_CHANGE_MESSAGE = (
    "新しいメールアドレスに確認のメールを送信しました。メールのリンクから変更を完了してください。"
)


def me_out(user: User) -> MeOut:
    return MeOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        locale=user.locale,
        role=user.role,
        email_verified=user.email_verified_at is not None,
        totp_enabled=user.totp_enabled,
        created_at=user.created_at,
    )


@router.get(
    "",
    operation_id="me_get",
    summary="The signed-in person's own account",
    response_model=MeOut,
    responses=problem_responses(401, 403),
)
async def get_me(user: SignedInUser) -> MeOut:
    return me_out(user)


@router.patch(
    "",
    operation_id="me_update",
    summary="Change one's display name or language",
    response_model=MeOut,
    responses=problem_responses(401, 403, 422),
)
async def update_me(body: MeUpdate, actor: Person, container: ContainerDep) -> MeOut:
    user = await container.accounts.update_me(
        actor, display_name=body.display_name, locale=body.locale, fields=body.model_fields_set
    )
    return me_out(user)


@router.post(
    "/password",
    operation_id="me_change_password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422, 429),
    summary="Change the password; every other session of this account ends",
    description="Needs a fresh proof of identity (a sign-in or POST /v1/auth/step-up within the last few minutes): otherwise 401 `step_up_required`.",
)
async def change_password(
    body: PasswordChangeIn, actor: Person, container: ContainerDep, request: Request
) -> Response:
    await container.accounts.change_password(
        actor, body.current_password, body.new_password, address=client_address(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/email",
    operation_id="me_change_email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(401, 403, 422, 429),
    summary="Change the sign-in address: a confirmation link is mailed to the new address",
)
async def change_email(body: EmailChangeIn, actor: Person, container: ContainerDep) -> Accepted:
    """Needs a fresh proof of identity (a sign-in or POST /v1/auth/step-up within the last few minutes): otherwise 401 `step_up_required`. Always 202 with the same body, and the same work, whether or not another account uses the address: the worker mails the new address a single-use link (one hour; POST /v1/auth/email-change/confirm consumes it), or, when the address is in use, a note to its owner that someone tried to use it. The address changes only when the link is used. A newer request replaces a pending one. The new address is folded (NFKC, lower case) like every address; 422 `email_unchanged` when it is the account's own."""
    await container.accounts.request_email_change(actor, body.email)
    return Accepted(message=EMAIL_CHANGE_MESSAGE)


@router.post(
    "/totp",
    operation_id="me_totp_begin",
    status_code=status.HTTP_201_CREATED,
    response_model=TotpEnrolmentOut,
    responses=problem_responses(401, 403, 409),
    summary="Staff: start TOTP enrolment (returns the secret once)",
    dependencies=[require(policy.STAFF, before_mfa=True)],
)
async def begin_totp(actor: PersonPreMfa, container: ContainerDep) -> TotpEnrolmentOut:
    """Returns the TOTP secret once. Until it is confirmed with a code, it does not protect the account. Needs a fresh proof of identity (a sign-in or POST /v1/auth/step-up within the last few minutes): otherwise 401 `step_up_required`."""
    enrolment = await container.accounts.begin_totp(actor)
    return TotpEnrolmentOut(secret=enrolment.secret, provisioning_uri=enrolment.provisioning_uri)


@router.post(
    "/totp/confirm",
    operation_id="me_totp_confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409, 422),
    summary="Staff: confirm TOTP with a current code; other sessions end",
    dependencies=[require(policy.STAFF, before_mfa=True)],
)
async def confirm_totp(body: TotpConfirmIn, actor: PersonPreMfa, container: ContainerDep) -> Response:
    await container.accounts.confirm_totp(actor, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
