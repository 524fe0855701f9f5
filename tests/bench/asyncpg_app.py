"""Reference app for tests/bench/run.py: the consulter's read of one consultation with raw asyncpg (no ORM).

The same JWT check as the real app (python-jose through `infra.tokens.TokenCodec`, the session and user rows
checked in one statement), then one statement for the case, its key and its categories; the sealed texts are
opened with the case key as the real app does. Served as `uvicorn --app-dir tests/bench asyncpg_app:app` with
the real app's MADOGUCHI_* environment and --workers. Not a pytest module.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

from domain.case_keys import CaseKey
from domain.errors import Unauthenticated
from infra.crypto import LocalKeyService, derived_kek, open_text, read_keks, wrap_context
from infra.settings import Settings
from infra.tokens import TokenCodec

settings = Settings()
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
pool: asyncpg.Pool | None = None

AUTH = """
SELECT u.id FROM auth_session s JOIN app_user u ON u.id = s.user_id
WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3 AND u.is_active
  AND (u.expires_at IS NULL OR u.expires_at > $3) AND (u.tokens_valid_after IS NULL OR u.tokens_valid_after <= $4)
  AND u.role = $5
"""
CASE = """
SELECT c.id, c.status, c.channel, c.title, c.narrative, c.urgent, c.created_at, c.updated_at, c.version,
       k.kek_id, k.wrapped,
       ARRAY(SELECT category_code FROM consultation_category cc WHERE cc.consultation_id = c.id) AS categories
FROM consultation c LEFT JOIN case_key k ON k.consultation_id = c.id
WHERE c.id = $1 AND c.owner_id = $2
"""


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global pool
    dsn = settings.database_url.replace("postgresql+asyncpg", "postgresql")
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=settings.database_pool_size)
    yield
    await pool.close()


app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/consultations/{consultation_id}")
async def read(consultation_id: uuid.UUID, authorization: str = Header("")) -> Any:
    unauthorized = HTTPException(status_code=401, detail="invalid_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized
    now = datetime.now(UTC)
    try:
        actor, issued_at = codec.decode_access(token, now=now)
    except Unauthenticated as exc:
        raise unauthorized from exc
    if actor.session_id is None or actor.user_id is None or actor.role is None:
        raise unauthorized
    assert pool is not None
    async with pool.acquire() as conn:
        if (
            await conn.fetchval(AUTH, actor.session_id, actor.user_id, now, issued_at, actor.role.value)
            is None
        ):
            raise unauthorized
        row = await conn.fetchrow(CASE, consultation_id, actor.user_id)
    if row is None or row["wrapped"] is None:
        raise HTTPException(status_code=404, detail="not_found")
    key = CaseKey(
        row["id"], keys.unwrap(row["kek_id"], row["wrapped"], context=wrap_context(row["id"].bytes))
    )
    return JSONResponse(
        {
            "id": str(row["id"]),
            "status": row["status"],
            "channel": row["channel"],
            "title": open_text(key, row["title"], field="title", row_id=row["id"]),
            "narrative": open_text(key, row["narrative"], field="narrative", row_id=row["id"]),
            "urgent": row["urgent"],
            "categories": list(row["categories"]),
            "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
            "version": row["version"],
        }
    )
