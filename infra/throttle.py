"""Sign-in throttling: failures per key (account digest, client address) in a fixed window, in the database
so every API process and replica sees the same counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.db.tables import ThrottleRow


class DbThrottle:
    def __init__(self, factory: async_sessionmaker[AsyncSession], *, limit: int, window: timedelta) -> None:
        self.factory = factory
        self.limit = limit
        self.window = window

    async def blocked_for(self, keys: Sequence[str], *, now: datetime) -> int:
        async with self.factory() as db:
            rows = (await db.execute(select(ThrottleRow).where(ThrottleRow.key.in_(keys)))).scalars().all()  # type: ignore[attr-defined]
        waits = [
            (r.blocked_until - now).total_seconds() for r in rows if r.blocked_until and r.blocked_until > now
        ]
        return math.ceil(max(waits)) if waits else 0

    async def hit(self, keys: Sequence[str], *, now: datetime) -> None:
        for key in keys:
            for _ in range(3):  # lost races on the first insert are retried as updates
                async with self.factory() as db:
                    row = await db.get(ThrottleRow, key, with_for_update=True)
                    if row is None:
                        db.add(ThrottleRow(key=key, failures=1, window_started_at=now))
                    elif row.window_started_at + self.window <= now:
                        row.failures, row.window_started_at, row.blocked_until = 1, now, None
                    else:
                        row.failures += 1
                        if row.failures >= self.limit:
                            row.blocked_until = row.window_started_at + self.window
                    try:
                        await db.commit()
                        break
                    except IntegrityError:
                        await db.rollback()

    async def clear(self, keys: Sequence[str]) -> None:
        async with self.factory() as db:
            await db.execute(delete(ThrottleRow).where(ThrottleRow.key.in_(keys)))  # type: ignore[attr-defined]
            await db.commit()
