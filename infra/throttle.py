"""Attempt counters in a fixed window, shared by every API process and replica: in the database, or in Redis
when MADOGUCHI_REDIS_URL is set. An attempt is counted *before* the costly check it guards (increment, then
compare), so parallel requests cannot all slip under the limit; a successful sign-in takes its attempt back.

Both stores keep the same state per key (attempts, and when the window started) and apply the same rule in
one atomic step, with the time the caller passes (the injected clock), so they behave alike to the second."""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import case, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.errors import Unavailable
from domain.ports import Counted
from infra.db.tables import ThrottleRow

log = logging.getLogger("madoguchi.throttle")


class _Limits:
    def __init__(
        self,
        *,
        limits: Mapping[str, int],
        window: timedelta,
        windows: Mapping[str, timedelta] | None = None,
    ) -> None:
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
        raise NotImplementedError


class DbThrottle(_Limits):
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        limits: Mapping[str, int],
        window: timedelta,
        windows: Mapping[str, timedelta] | None = None,
    ) -> None:
        super().__init__(limits=limits, window=window, windows=windows)
        self.factory = factory

    async def _count(self, key: str, now: datetime) -> Counted:
        window = self._window(key)
        stale = now - window
        fresh_window = col(ThrottleRow.window_started_at) <= stale
        # One atomic statement: concurrent attempts each see their own count (no read-modify-write race).
        count = (
            update(ThrottleRow)
            .where(col(ThrottleRow.key) == key)
            .values(
                failures=case((fresh_window, 1), else_=col(ThrottleRow.failures) + 1),
                window_started_at=case((fresh_window, now), else_=col(ThrottleRow.window_started_at)),
            )
            .returning(col(ThrottleRow.failures), col(ThrottleRow.window_started_at))
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
                .where(col(ThrottleRow.key).in_(keys), col(ThrottleRow.failures) > 0)
                .values(failures=col(ThrottleRow.failures) - 1)
            )
            await db.commit()

    async def clear(self, keys: Sequence[str]) -> None:
        async with self.factory() as db:
            await db.execute(delete(ThrottleRow).where(col(ThrottleRow.key).in_(keys)))
            await db.commit()

    async def clear_prefix(self, prefix: str) -> None:
        async with self.factory() as db:
            await db.execute(
                delete(ThrottleRow).where(col(ThrottleRow.key).startswith(prefix, autoescape=True))
            )
            await db.commit()


# KEYS[1] the counter; ARGV[1] now and ARGV[2] the window, in milliseconds of the caller's clock. The same rule
# as the UPDATE above, in one step on the server (scripts run atomically): a window that has run out starts
# again at this attempt. The key's expiry is only housekeeping (what is left of the window, at least a second).
_COUNT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'n', 'start')
local n = tonumber(state[1])
local start = tonumber(state[2])
if n == nil or start == nil or start <= now - window then
  n = 1
  start = now
else
  n = n + 1
end
redis.call('HSET', KEYS[1], 'n', n, 'start', start)
redis.call('PEXPIRE', KEYS[1], math.max(1000, start + window - now))
return {n, start}
"""
# Take one attempt back, never below zero, leaving the window as it is.
_FORGIVE = """
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n'))
  if n ~= nil and n > 0 then
    redis.call('HSET', key, 'n', n - 1)
  end
end
return 0
"""
_GLOB = re.compile(r"([*?\[\]\\])")


class RedisThrottle(_Limits):
    """The same counters in Redis, for replicas that should not put a write on PostgreSQL for every attempt.
    When Redis does not answer, what it guards answers 503 with Retry-After (never "no limit"); the client
    reconnects on the next request, so service comes back by itself when Redis does."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        limits: Mapping[str, int],
        window: timedelta,
        windows: Mapping[str, timedelta] | None = None,
    ) -> None:
        super().__init__(limits=limits, window=window, windows=windows)
        self.client = client
        self.prefix = prefix
        self._count_script = client.register_script(_COUNT)
        self._forgive_script = client.register_script(_FORGIVE)

    async def _count(self, key: str, now: datetime) -> Counted:
        window = self._window(key)
        window_ms = int(window.total_seconds() * 1000)
        now_ms = int(now.timestamp() * 1000)
        async with _answering():
            failures, started_ms = await self._count_script(
                keys=[self.prefix + key], args=[now_ms, window_ms]
            )
        resets_in = max(0, math.ceil((int(started_ms) + window_ms - now_ms) / 1000))
        return Counted(attempts=int(failures), limit=self._limit(key), resets_in=resets_in)

    async def forgive(self, keys: Sequence[str]) -> None:
        if keys:
            async with _answering():
                await self._forgive_script(keys=[self.prefix + k for k in keys])

    async def clear(self, keys: Sequence[str]) -> None:
        if keys:
            async with _answering():
                await self.client.delete(*(self.prefix + k for k in keys))

    async def clear_prefix(self, prefix: str) -> None:
        pattern = _GLOB.sub(r"\\\1", self.prefix + prefix) + "*"
        async with _answering():
            batch: list[bytes | str] = []
            async for key in self.client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await self.client.delete(*batch)
                    batch.clear()
            if batch:
                await self.client.delete(*batch)


@contextlib.asynccontextmanager
async def _answering() -> AsyncIterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        # The error type only: redis-py's messages name the host and port.
        log.warning("counter store unavailable", extra={"error_type": type(exc).__name__})
        raise Unavailable(5, "counter_store_unavailable") from exc


def connect_redis(url: str, *, timeout_seconds: float) -> Redis:
    """One client (and its connection pool) per process. Short timeouts: a Redis that is gone must turn into
    a quick 503, not a request that hangs; redis-py reconnects by itself on a later command."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


ThrottleFactory = Callable[..., DbThrottle | RedisThrottle]


def throttle_factory(
    sessions: async_sessionmaker[AsyncSession], redis: Redis | None, *, prefix: str
) -> ThrottleFactory:
    """Throttles on Redis when a client is given, else on the database; same arguments either way."""

    def make(
        *, limits: Mapping[str, int], window: timedelta, windows: Mapping[str, timedelta] | None = None
    ) -> DbThrottle | RedisThrottle:
        if redis is not None:
            return RedisThrottle(redis, prefix=prefix, limits=limits, window=window, windows=windows)
        return DbThrottle(sessions, limits=limits, window=window, windows=windows)

    return make
