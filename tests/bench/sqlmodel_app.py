"""Reference app for tests/bench/run.py: the consulter's read of one consultation the common async way, an
`AsyncSession` (SQLModel tables, asyncpg driver) per request, the ORM's `session.get` for the session and user
rows, then the case, its categories and its key.

The same JWT check as the real app (python-jose through `infra.tokens.TokenCodec`), the sealed texts opened as
the real app does. Served as `uvicorn --app-dir tests/bench sqlmodel_app:app` with the real app's MADOGUCHI_*
environment and --workers. Not a pytest module.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import col, select

from domain.case_keys import CaseKey
from domain.errors import Unauthenticated
from infra.crypto import LocalKeyService, derived_kek, open_text, read_keks, wrap_context
from infra.db.tables import AuthSessionRow, CaseKeyRow, ConsultationCategoryRow, ConsultationRow, UserRow
from infra.settings import Settings
from infra.tokens import TokenCodec

settings = Settings()
engine = create_async_engine(settings.database_url, pool_size=settings.database_pool_size, max_overflow=0)
sessions = async_sessionmaker(engine, expire_on_commit=False)
codec = TokenCodec(
    settings.signing_key,
    issuer=settings.jwt_issuer,
    audience=settings.jwt_audience,
    person_minutes=settings.access_token_minutes,
    staff_minutes=settings.staff_access_token_minutes,
)
keks = read_keks(settings.kek.get_secret_value() if settings.kek else None, settings.kek_file)
keys = LocalKeyService(
    keks if keks is not None else [derived_kek(settings.signing_key)]
)  # as infra/container.py
reusable_oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token")

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_db)]
TokenDep = Annotated[str, Depends(reusable_oauth2)]


async def get_current_user(session: SessionDep, token: TokenDep) -> UserRow:
    credentials = HTTPException(status_code=401, detail="invalid_token")
    now = datetime.now(UTC)
    try:
        actor, issued_at = codec.decode_access(token, now=now)
    except Unauthenticated as exc:
        raise credentials from exc
    if actor.session_id is None or actor.user_id is None or actor.role is None:
        raise credentials
    auth = await session.get(AuthSessionRow, actor.session_id)
    if auth is None or auth.user_id != actor.user_id or auth.revoked_at is not None or auth.expires_at <= now:
        raise credentials
    user = await session.get(UserRow, actor.user_id)
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
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/consultations/{consultation_id}")
async def read(consultation_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    c = (
        await session.execute(
            select(ConsultationRow).where(
                col(ConsultationRow.id) == consultation_id, col(ConsultationRow.owner_id) == user.id
            )
        )
    ).scalar_one_or_none()
    if c is None:
        raise HTTPException(status_code=404, detail="not_found")
    categories = (
        await session.execute(
            select(col(ConsultationCategoryRow.category_code)).where(
                col(ConsultationCategoryRow.consultation_id) == c.id
            )
        )
    ).scalars()
    row = await session.get(CaseKeyRow, c.id)
    if row is None or row.wrapped is None:
        raise HTTPException(status_code=404, detail="not_found")
    key = CaseKey(c.id, keys.unwrap(row.kek_id, row.wrapped, context=wrap_context(c.id.bytes)))
    return {
        "id": str(c.id),
        "status": c.status,
        "channel": c.channel,
        "title": open_text(key, c.title, field="title", row_id=c.id),
        "narrative": open_text(key, c.narrative, field="narrative", row_id=c.id),
        "urgent": c.urgent,
        "categories": list(categories),
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "version": c.version,
    }
