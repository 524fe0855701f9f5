"""Liveness and readiness for orchestrators."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ContainerDep
from api.schemas.common import problem_responses
from domain.errors import Unavailable
from infra.db.case_keys import missing_keks, missing_keks_message
from infra.db.migrate import current_revision

log = logging.getLogger("madoguchi.health")

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz", operation_id="health_live", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="health_ready",
    response_model=Health,
    responses=problem_responses(503),
    summary="The database answers, its schema is at the migration head and every key-encryption key in use is held",
)
async def readyz(container: ContainerDep) -> Health:
    """503 with Retry-After while the database does not answer, its schema is not at this version's migration
    head, or a data key is wrapped under a key-encryption key this process was not given (the id is logged for
    the operator, never answered)."""
    missing: list[str] = []
    try:
        async with asyncio.timeout(container.settings.database_timeout_seconds):
            async with container.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            revision = await current_revision(container.engine)
            if revision == container.migration_head:
                async with container.engine.connect() as conn:
                    missing = await missing_keks(conn, container.keys)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready", never a 500
        raise Unavailable(5, "database_unavailable") from exc
    if revision != container.migration_head:
        raise Unavailable(30, "migrations_pending")
    if missing:
        log.error("not ready: %s", missing_keks_message(missing))
        raise Unavailable(30, "key_encryption_key_missing")
    return Health(status="ready")
