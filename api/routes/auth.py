"""Sign-up, e-mail verification, tokens (password and client-credentials grants), refresh, logout."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response, status

from api.deps import ContainerDep, PersonPreMfa, PreMfaActor, client_address
from api.schemas.accounts import (
    Accepted,
    EmailChangeConfirmIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    StepUpIn,
    StepUpOut,
    TokenOut,
    VerifyEmailIn,
)
from api.schemas.common import problem_responses
from api.schemas.text import Secret, SingleLine
from domain.accounts import TokenPair
from domain.errors import DomainError, RateLimited, ValidationFailed
from infra import metrics
from infra.container import Container

router = APIRouter(prefix="/v1/auth", tags=["auth"])

REGISTER_MESSAGE = "確認メールを送信しました。メールのリンクから登録を完了してください。"
RESET_MESSAGE = "ご登録のメールアドレスであれば、パスワード再設定のご案内を送信しました。"


@router.post(
    "/register",
    operation_id="auth_register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(422, 429),
    summary="Register a consulter account (answer is the same whether or not the address is known)",
)
async def register(body: RegisterIn, container: ContainerDep, request: Request) -> Accepted:
    """Always 202 with the same body, whether or not the address has an account, and the request does the same work either way; the worker then mails a verification link (or, to an existing account, a note that it is registered). The password takes effect only once the mailed link is used (POST /v1/auth/verify-email). Mails per recipient are capped per hour."""
    await container.accounts.register(
        body.email, body.password, body.display_name, body.locale, address=client_address(request)
    )
    return Accepted(message=REGISTER_MESSAGE)


@router.post(
    "/verify-email",
    operation_id="auth_verify_email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(422, 429),
    summary="Confirm an e-mail address (or accept a staff invitation, with a password)",
)
async def verify_email(body: VerifyEmailIn, container: ContainerDep) -> Response:
    """Consumes the single-use token from a verification or invitation mail (the link's `#token=` fragment). An invitation also needs `password`."""
    await container.accounts.verify_email(body.token, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password-reset",
    operation_id="auth_password_reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(422, 429),
    summary="Mail a password-reset link (same answer whether or not the address is known)",
)
async def password_reset(body: PasswordResetIn, container: ContainerDep, request: Request) -> Accepted:
    """Always 202 with the same body; the worker decides whether the address has an account and mails a link (POST /v1/auth/password-reset/confirm consumes it). Mails per recipient are capped per hour, silently."""
    await container.accounts.request_password_reset(body.email, address=client_address(request))
    return Accepted(message=RESET_MESSAGE)


@router.post(
    "/password-reset/confirm",
    operation_id="auth_password_reset_confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(422),
    summary="Set a new password with the mailed token; every session of the account ends",
)
async def password_reset_confirm(body: PasswordResetConfirmIn, container: ContainerDep) -> Response:
    await container.accounts.reset_password(body.token, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/email-change/confirm",
    operation_id="auth_email_change_confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(409, 422),
    summary="Confirm a new sign-in address with the token mailed to it; every other session ends",
)
async def email_change_confirm(body: EmailChangeConfirmIn, container: ContainerDep) -> Response:
    """Consumes the single-use token from the mail sent to the new address by POST /v1/me/email (the link's `#token=` fragment). The address changes only if it is still free at that moment: otherwise 409 `email_in_use` and nothing changes. Every session of the account except the one that asked ends, every other pending mailed link of the account stops working, and the old address is told of the change (without the new address)."""
    await container.accounts.confirm_email_change(body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/token",
    operation_id="auth_token",
    response_model=TokenOut,
    responses=problem_responses(401, 403, 422, 429),
    summary="OAuth2 token endpoint: password grant for people, client_credentials for service clients",
    description=(
        "`grant_type=password` (people; `totp` for staff with TOTP enrolled), `client_credentials` (service "
        "clients) or `refresh_token` (RFC 6749 §6: rotates the refresh token exactly like "
        "`POST /v1/auth/refresh`; presenting a rotated one ends the whole session)."
    ),
)
async def token(
    request: Request,
    container: ContainerDep,
    grant_type: Annotated[Literal["password", "client_credentials", "refresh_token"], Form()] = "password",
    username: Annotated[str | None, Form(max_length=254), SingleLine()] = None,
    password: Annotated[str | None, Form(max_length=1024), Secret()] = None,
    totp: Annotated[
        str | None,
        Form(max_length=10, description="Staff with TOTP enrolled: the 6-digit code"),
        SingleLine(),
    ] = None,
    client_id: Annotated[str | None, Form(max_length=64), SingleLine()] = None,
    client_secret: Annotated[str | None, Form(max_length=256), Secret()] = None,
    scope: Annotated[str | None, Form(max_length=512), SingleLine()] = None,
    refresh_token: Annotated[
        str | None,
        Form(max_length=128, description="grant_type=refresh_token: the refresh token"),
        SingleLine(),
    ] = None,
) -> TokenOut:
    try:
        pair = await _grant(
            container,
            request,
            grant_type,
            username,
            password,
            totp,
            client_id,
            client_secret,
            scope,
            refresh_token,
        )
    except DomainError as refused:
        outcome = "throttled" if isinstance(refused, RateLimited) else "failure"
        metrics.SIGN_INS.labels(grant_type, outcome, metrics.code_label(refused.code)).inc()
        raise
    metrics.SIGN_INS.labels(grant_type, "success", "").inc()
    return TokenOut(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        scope=pair.scope,
    )


async def _grant(
    container: Container,
    request: Request,
    grant_type: str,
    username: str | None,
    password: str | None,
    totp: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
    refresh_token: str | None,
) -> TokenPair:
    address = client_address(request)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise ValidationFailed("refresh_token_required", field="refresh_token")
        pair = await container.accounts.refresh(refresh_token)
    elif grant_type == "password":
        if not username or not password:
            raise ValidationFailed("username_and_password_required")
        pair = await container.accounts.login(username, password, totp_code=totp, address=address)
    else:
        if not client_id or not client_secret:
            raise ValidationFailed("client_id_and_secret_required")
        pair = await container.accounts.login_client(client_id, client_secret, scope, address=address)
    return pair


@router.post(
    "/refresh",
    operation_id="auth_refresh",
    response_model=TokenOut,
    responses=problem_responses(401, 422),
    summary="Rotate a refresh token; presenting a rotated one ends the whole session",
)
async def refresh(body: RefreshIn, container: ContainerDep) -> TokenOut:
    """Refresh tokens are single use: the answer carries a new one. Presenting a token that was already rotated ends the whole session (reuse detection). The same grant is accepted at POST /v1/auth/token with grant_type=refresh_token."""
    pair = await container.accounts.refresh(body.refresh_token)
    return TokenOut(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@router.post(
    "/logout",
    operation_id="auth_logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
    summary="End this session: its access and refresh tokens stop working at once",
)
async def logout(actor: PreMfaActor, container: ContainerDep) -> Response:
    await container.accounts.logout(actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/step-up",
    operation_id="auth_step_up",
    response_model=StepUpOut,
    responses=problem_responses(401, 403, 422, 429),
    summary="Prove again who one is (password, and TOTP for staff who use it) before a sensitive action",
)
async def step_up(
    body: StepUpIn, actor: PersonPreMfa, container: ContainerDep, request: Request
) -> StepUpOut:
    """Changing the password, starting TOTP enrolment (and, when they exist, export and erasure) need a proof of identity younger than `max_age` seconds (setting `MADOGUCHI_STEP_UP_MAX_AGE_MINUTES`, default 5): a sign-in or this call. Without one they answer 401 `step_up_required` with `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=…` (RFC 9470). The proof is recorded on the session the token names, never on another. A wrong password answers 422 `step_up_failed` and counts towards the sign-in throttle (429)."""
    proof = await container.accounts.step_up(
        actor, body.password, totp_code=body.totp_code, address=client_address(request)
    )
    return StepUpOut(
        auth_time=proof.auth_time,
        valid_until=proof.valid_until,
        max_age=int((proof.valid_until - proof.auth_time).total_seconds()),
        amr=list(proof.amr),
    )
