"""Attempt counters in a fixed window, kept in the database so every API process and replica sees the same
counts. An attempt is counted *before* the costly check it guards (increment, then compare), so parallel
requests cannot all slip under the limit; a successful sign-in takes its attempt back."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.ports import Counted
from infra.db.tables import ThrottleRow


class DbThrottle:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        limits: Mapping[str, int],
        window: timedelta,
        windows: Mapping[str, timedelta] | None = None,
    ) -> None:
        self.factory = factory
        self.limits = dict(limits)  # by key prefix ("acct", "addr", …)
        self.window = window
        self.windows = dict(windows or {})  # by key prefix, where one differs from `window`

    def _limit(self, key: str) -> int:
        return self.limits.get(key.split(":", 1)[0], self.limits.get("*", 10))

    def _window(self, key: str) -> timedelta:
        return self.windows.get(key.split(":", 1)[0], self.window)

    async def attempt(self, keys: Sequence[str], *, now: datetime) -> int:
        counted = await self.count(keys, now=now)
        return max((c.wait for c in counted), default=0)

    async def count(self, keys: Sequence[str], *, now: datetime) -> list[Counted]:
        return [await self._count(key, now) for key in keys]

    async def _count(self, key: str, now: datetime) -> Counted:
        window = self._window(key)
        stale = now - window
        fresh_window = ThrottleRow.window_started_at <= stale
        # One atomic statement: concurrent attempts each see their own count (no read-modify-write race).
        count = (
            update(ThrottleRow)
            .where(ThrottleRow.key == key)
            .values(
                failures=case((fresh_window, 1), else_=ThrottleRow.failures + 1),
                window_started_at=case((fresh_window, now), else_=ThrottleRow.window_started_at),
            )
            .returning(ThrottleRow.failures, ThrottleRow.window_started_at)
        )
        failures, started = 1, now
        for _ in range(3):
            async with self.factory() as db:
                row = (await db.execute(count)).first()
                if row is None:
                    db.add(ThrottleRow(key=key, failures=1, window_started_at=now))
                try:
                    await db.commit()
                except IntegrityError:
                    continue  # someone inserted it first: count again as an update
                failures, started = (row.failures, row.window_started_at) if row else (1, now)
                break
        resets_in = max(0, math.ceil((started + window - now).total_seconds()))
        return Counted(attempts=failures, limit=self._limit(key), resets_in=resets_in)

    async def forgive(self, keys: Sequence[str]) -> None:
        async with self.factory() as db:
            await db.execute(
                update(ThrottleRow)
                .where(ThrottleRow.key.in_(keys), ThrottleRow.failures > 0)  # type: ignore[attr-defined]
                .values(failures=ThrottleRow.failures - 1)
            )
            await db.commit()

    async def clear(self, keys: Sequence[str]) -> None:
        async with self.factory() as db:
            await db.execute(delete(ThrottleRow).where(ThrottleRow.key.in_(keys)))  # type: ignore[attr-defined]
            await db.commit()

    async def clear_prefix(self, prefix: str) -> None:
        async with self.factory() as db:
            await db.execute(
                delete(ThrottleRow).where(ThrottleRow.key.startswith(prefix, autoescape=True))  # type: ignore[attr-defined]
            )
            await db.commit()
