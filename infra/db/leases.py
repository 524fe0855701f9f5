"""Leasing due rows of a work table (outbox, LINE inbox, LINE deliveries) one at a time, for one worker at a time.

A worker leases a row just before it works it, renews the lease while the work runs (a send can take as long as
its timeout), and clears it when it records the outcome. So a worker that dies holds at most the one row it was
sending, and only until its lease runs out (`MADOGUCHI_WORKER_LEASE_SECONDS`, 30 s by default); another
worker then takes it. Leasing a whole batch up front made every row of a dead worker's batch wait for the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.ports import Clock
from domain.work_queue import RetryPolicy
from infra.db.engine import affected

log = logging.getLogger("madoguchi.worker")


@dataclass(frozen=True)
class WorkTable:
    """Which rows of `table` are work still to do (`pending`) and which of those are `due` at a time."""

    table: Any
    pending: Callable[[], Sequence[Any]]
    due: Callable[[datetime], Sequence[Any]]
    order_by: Callable[[], Sequence[Any]]


def _free(table: Any, now: datetime) -> Any:
    return or_(table.locked_until.is_(None), table.locked_until < now)


async def due_ids(db: AsyncSession, work: WorkTable, now: datetime, limit: int) -> list[uuid.UUID]:
    """Ids of pending, due rows nobody holds (a hint: `take` decides)."""
    t = work.table
    query = select(t.id).where(*work.pending(), *work.due(now), _free(t, now)).order_by(*work.order_by())
    return list((await db.execute(query.limit(limit))).scalars().all())


async def take(db: AsyncSession, work: WorkTable, row_id: uuid.UUID, now: datetime, lease: timedelta) -> bool:
    """Lease one row to the caller until now + lease. The conditional UPDATE is the lock: of two workers only
    one moves `locked_until` forward, so a row is never worked twice at once, on SQLite and PostgreSQL alike."""
    t = work.table
    result = await db.execute(
        update(t).where(t.id == row_id, *work.pending(), _free(t, now)).values(locked_until=now + lease)
    )
    return affected(result) == 1


async def renew(db: AsyncSession, table: Any, row_id: uuid.UUID, now: datetime, lease: timedelta) -> bool:
    """Extend a lease that has not run out. An unexpired lease can only be the caller's (nobody else may take
    it), so no owner column is needed."""
    result = await db.execute(
        update(table)
        .where(table.id == row_id, table.locked_until.is_not(None), table.locked_until >= now)
        .values(locked_until=now + lease)
    )
    return affected(result) == 1


@contextlib.asynccontextmanager
async def held(
    factory: async_sessionmaker[AsyncSession], table: Any, row_id: uuid.UUID, lease: timedelta, clock: Clock
) -> AsyncIterator[None]:
    """Keep renewing the lease on `row_id` while the body runs (every third of the lease)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                async with factory() as db:
                    await renew(db, table, row_id, clock.now(), lease)
                    await db.commit()
            except Exception as exc:  # noqa: BLE001 - a missed beat only shortens the lease
                log.warning("lease renewal failed: %s", type(exc).__name__)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def drain(
    factory: async_sessionmaker[AsyncSession],
    work: WorkTable,
    handle: Callable[[uuid.UUID], Awaitable[bool]],
    *,
    clock: Clock,
    lease: timedelta,
    limit: int,
) -> int:
    """Work every due row, one lease at a time; returns how many `handle` reported as delivered. `handle` must
    record each row's outcome (clearing its lease) and must not raise."""
    delivered = 0
    seen: set[uuid.UUID] = set()  # each row at most once per drain: a failure retried at once cannot spin
    while True:
        async with factory() as db:
            candidates = [r for r in await due_ids(db, work, clock.now(), limit) if r not in seen]
        for row_id in candidates:
            seen.add(row_id)
            async with factory() as db:
                taken = await take(db, work, row_id, clock.now(), lease)
                await db.commit()
            if not taken:
                continue  # another worker has it
            try:
                async with held(factory, work.table, row_id, lease, clock):
                    delivered += await handle(row_id)
            except Exception as exc:  # noqa: BLE001 - last resort: the lease runs out, the row is retaken
                log.error("work row failed: %s", type(exc).__name__)
        # Until nothing new is due, not just until a short batch: rows a handler queued (the mail an account
        # request decided to send, the reply to a LINE event) go out in the same pass. `seen` bounds it.
        if not candidates:
            return delivered


def record_failure(
    row: Any,
    error: str,
    now: datetime,
    policy: RetryPolicy,
    *,
    retryable: bool = True,
    retry_after: float | None = None,
) -> bool:
    """The one failure handler of every work table (see WorkQueueColumns): count the attempt, keep the error
    code (never a message), free the lease and schedule the next try by `policy`. Returns True when the row
    is given up; the caller then makes it its table's dead letter."""
    row.attempts += 1
    row.last_error = error[:64]
    row.locked_until = None
    wait = policy.after_failure(row.attempts, retryable=retryable, retry_after=retry_after)
    if wait is None:
        return True
    row.next_attempt_at = now + wait
    return False
