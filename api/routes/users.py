"""Administration of accounts: staff are created only here (or by the CLI)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from api.deps import Admin, ContainerDep
from api.etag import etag_of, parse_if_match
from api.idempotency import idempotent
from api.pagination import CursorParam, LimitParam, page_by, position
from api.schemas.accounts import UserCreate, UserOut, UserUpdate
from api.schemas.common import Page, problem_responses
from domain.actors import Actor, Role
from domain.models import User

router = APIRouter(prefix="/v1/users", tags=["users"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        totp_enabled=user.totp_enabled,
        expires_at=user.expires_at,
        created_at=user.created_at,
        version=user.version,
    )


def user_position(user: User) -> tuple[datetime, uuid.UUID]:
    # A stored user always has created_at (NOT NULL); only one not yet stored lacks it.
    assert user.created_at is not None
    return user.created_at, user.id


@router.get(
    "",
    operation_id="users_list",
    summary="Staff and consulter accounts, newest first, one page at a time (admins)",
    response_model=Page[UserOut],
    responses=problem_responses(401, 403, 422),
)
async def list_users(
    actor: Admin,
    container: ContainerDep,
    role: Role | None = None,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[UserOut]:
    users = await container.accounts.list_users(actor, role=role, after=position(cursor), limit=limit + 1)
    return page_by(users, limit, user_out, user_position)


async def replay_user(
    actor: Actor, container: Any, user_id: uuid.UUID, _: Request
) -> tuple[Any, dict[str, str]]:
    user = await container.accounts.get_user(actor, user_id)
    return user_out(user), {"location": f"/v1/users/{user.id}", "etag": etag_of(user.version)}


@router.post(
    "",
    operation_id="users_create",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(401, 403, 409, 422),
    summary="Invite a staff member; they set a password through the mailed link",
    dependencies=[idempotent("users_create", "app_user", replay_user)],
)
async def create_user(body: UserCreate, actor: Admin, container: ContainerDep, response: Response) -> UserOut:
    user = await container.accounts.create_staff(
        actor, email=body.email, role=body.role, display_name=body.display_name, expires_at=body.expires_at
    )
    response.headers["Location"] = f"/v1/users/{user.id}"
    response.headers["ETag"] = etag_of(user.version)
    return user_out(user)


@router.get(
    "/{user_id}",
    operation_id="users_get",
    summary="One account (admins)",
    response_model=UserOut,
    responses=problem_responses(401, 403, 404),
)
async def get_user(user_id: uuid.UUID, actor: Admin, container: ContainerDep, response: Response) -> UserOut:
    user = await container.accounts.get_user(actor, user_id)
    response.headers["ETag"] = etag_of(user.version)
    return user_out(user)


@router.patch(
    "/{user_id}",
    operation_id="users_update",
    response_model=UserOut,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
    summary="Change role, activity or expiry; a role change or deactivation ends the user's sessions",
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    actor: Admin,
    container: ContainerDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> UserOut:
    """Needs If-Match. A role change or deactivation ends every session of the account at once. Council members always need an expiry."""
    user = await container.accounts.update_user(
        actor, user_id, changes=body.model_dump(exclude_unset=True), expected_version=parse_if_match(if_match)
    )
    response.headers["ETag"] = etag_of(user.version)
    return user_out(user)


@router.post(
    "/{user_id}/revoke-sessions",
    operation_id="users_revoke_sessions",
    summary="Sign an account out everywhere at once (admins)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def revoke_sessions(user_id: uuid.UUID, actor: Admin, container: ContainerDep) -> Response:
    await container.accounts.revoke_user_sessions(actor, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
