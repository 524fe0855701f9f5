"""Liveness and readiness for orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ContainerDep
from api.schemas.common import problem_responses
from domain.errors import Unavailable
from infra.db.migrate import current_revision

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
    summary="The database answers and its schema is at the migration head",
)
async def readyz(container: ContainerDep) -> Health:
    """503 with Retry-After while the database does not answer or its schema is not at this version's migration head."""
    try:
        async with asyncio.timeout(container.settings.database_timeout_seconds):
            async with container.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            revision = await current_revision(container.engine)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready", never a 500
        raise Unavailable(5, "database_unavailable") from exc
    if revision != container.migration_head:
        raise Unavailable(30, "migrations_pending")
    return Health(status="ready")
