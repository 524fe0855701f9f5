"""Claiming due rows of a work table (outbox, LINE inbox, LINE deliveries) for one worker at a time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession


async def claim_due(
    db: AsyncSession,
    table: Any,
    *,
    pending: Sequence[Any],
    due: Sequence[Any],
    order_by: Sequence[Any],
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[uuid.UUID]:
    """Ids of rows that are `pending` and `due` and not leased, each now leased to the caller until
    now + lease. The conditional UPDATE is the lock: of two workers only one moves `locked_until` forward, so a
    row is never worked twice at once, on SQLite and PostgreSQL alike."""
    free = or_(table.locked_until.is_(None), table.locked_until < now)
    candidates = (
        (await db.execute(select(table.id).where(*pending, *due, free).order_by(*order_by).limit(limit)))
        .scalars()
        .all()
    )
    claimed = []
    for row_id in candidates:
        result = await db.execute(
            update(table).where(table.id == row_id, *pending, free).values(locked_until=now + lease)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(row_id)
    return claimed
