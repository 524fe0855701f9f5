""" "The common way" for tests/bench/bench_me.py, as in the FastAPI full-stack template: sync `def`
dependencies and endpoint (run in the thread pool), OAuth2PasswordBearer, a JWT decoded with python-jose, and
a sync SQLModel `Session` per request (psycopg 3 driver) reading the `auth_session` row and the `app_user`
row.

Configured from the same MADOGUCHI_* environment as the real app (database URL, secret key, issuer, audience,
pool size), so it verifies the real app's tokens and returns the same fields. Not a pytest module.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlmodel import Session

from api.schemas.accounts import MeOut
from domain.errors import Unauthenticated
from infra.db.tables import AuthSessionRow, UserRow
from infra.settings import Settings
from infra.tokens import TokenCodec

settings = Settings()
url = make_url(settings.database_url).set(drivername="postgresql+psycopg")
# The pool must be at least as large as the thread pool (40 slots by default). A request holds its connection
# from the first query in get_current_user until get_db closes the session, but needs a slot again for read_me
# in between. With the template's pool (5 + 10 overflow) or the real app's (10 + 10) and 64 concurrent
# requests, every slot ends up blocked in the pool waiting for a connection that only a slot-less request can
# give back, and the server stalls until pool_timeout (30 s): 0 req/s here. With 40 connections that takes
# 80 concurrent requests per process.
engine = create_engine(
    url,
    pool_size=settings.database_pool_size,
    max_overflow=int(os.environ.get("BENCH_SYNC_MAX_OVERFLOW", "30")),
)
codec = TokenCodec(
    settings.signing_key,
    issuer=settings.jwt_issuer,
    audience=settings.jwt_audience,
    person_minutes=settings.access_token_minutes,
    staff_minutes=settings.staff_access_token_minutes,
)
reusable_oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token")

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def get_db() -> Generator[Session, None, None]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[str, Depends(reusable_oauth2)]


def get_current_user(session: SessionDep, token: TokenDep) -> UserRow:
    credentials = HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="invalid_token")
    try:
        actor, issued_at = codec.decode_access(token, now=datetime.now(UTC))
    except Unauthenticated as exc:
        raise credentials from exc
    if actor.session_id is None or actor.user_id is None:
        raise credentials
    now = datetime.now(UTC)
    auth = session.get(AuthSessionRow, actor.session_id)
    if auth is None or auth.user_id != actor.user_id or auth.revoked_at is not None or auth.expires_at <= now:
        raise credentials
    user = session.get(UserRow, actor.user_id)
    if (
        user is None
        or not user.is_active
        or (user.expires_at is not None and user.expires_at <= now)
        or (user.tokens_valid_after is not None and issued_at < user.tokens_valid_after)
        or user.role != actor.role
    ):
        raise credentials
    return user


CurrentUser = Annotated[UserRow, Depends(get_current_user)]


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/me", response_model=MeOut)
def read_me(user: CurrentUser) -> MeOut:
    return MeOut(
        id=uuid.UUID(str(user.id)),
        email=user.email,
        display_name=user.display_name,
        locale=user.locale,
        role=user.role,
        email_verified=user.email_verified_at is not None,
        totp_enabled=user.totp_enabled_at is not None,
        created_at=user.created_at,
    )
