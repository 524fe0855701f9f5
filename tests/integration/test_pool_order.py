"""The connection pool serves requests first come, first served (`FirstComeQueue` in infra/db/engine.py).

Under load a request that waits for a connection must not be overtaken by requests that arrive after it: with
SQLAlchemy's own queue a connection checked in went to whoever asked next, the woken request queued again at
the back, and at 256 connections some requests waited past the pool timeout (503) while most passed at once.
On SQLite files and on PostgreSQL: the same pool.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from infra import metrics
from infra.db.engine import make_engine


async def _until_waiting(count: int, base: float) -> None:
    for _ in range(500):
        if metrics.DB_POOL_WAITING._value.get() >= base + count:  # noqa: SLF001
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} checkouts never started waiting")


async def _take_turn(engine: AsyncEngine, name: str, order: list[str], done: asyncio.Event) -> None:
    async with engine.connect():
        order.append(name)
        await done.wait()


async def _line_up(
    engine: AsyncEngine, names: tuple[str, str], order: list[str], done: asyncio.Event
) -> list[asyncio.Task[None]]:
    """Two requests waiting for the pool's one connection, in this order."""
    base = metrics.DB_POOL_WAITING._value.get()  # noqa: SLF001 - this process's gauge
    waiting = []
    for name in names:
        waiting.append(asyncio.create_task(_take_turn(engine, name, order, done)))
        await _until_waiting(len(waiting), base)
    return waiting


async def test_a_connection_checked_in_goes_to_the_longest_waiter_not_to_whoever_asks_next(
    database_url: str,
) -> None:
    engine = make_engine(database_url, pool_size=1, timeout=5)
    order: list[str] = []
    done = asyncio.Event()
    done.set()  # each waiter gives its connection back as soon as it has noted its turn
    try:
        held = await engine.connect()
        waiting = await _line_up(engine, ("waited first", "waited second"), order, done)
        # The holder gives its connection back and asks again at once, before the woken waiter has run: a
        # newcomer. It must queue behind both.
        await held.close()
        async with asyncio.timeout(5):
            again = await engine.connect()
        order.append("asked after")
        await again.close()
        await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert order == ["waited first", "waited second", "asked after"]
    finally:
        await engine.dispose()


async def test_a_checkout_that_waits_past_the_timeout_fails_alone_and_the_pool_goes_on(
    database_url: str,
) -> None:
    engine = make_engine(database_url, pool_size=1, timeout=0.2)
    timeouts = metrics.DB_POOL_TIMEOUTS._value.get()  # noqa: SLF001
    try:
        held = await engine.connect()
        with pytest.raises(sa_exc.TimeoutError):
            await engine.connect()
        assert metrics.DB_POOL_TIMEOUTS._value.get() == timeouts + 1  # noqa: SLF001
        await held.close()
        async with asyncio.timeout(1):  # the one that gave up left no place in the line behind it
            again = await engine.connect()
        await again.close()
    finally:
        await engine.dispose()


async def test_a_waiter_cancelled_as_its_turn_comes_passes_the_connection_on(database_url: str) -> None:
    # A request cancelled (its client went away) just as a connection is handed to it: the next in line gets
    # the connection instead of the pool losing it.
    engine = make_engine(database_url, pool_size=1, timeout=5)
    order: list[str] = []
    done = asyncio.Event()
    try:
        held = await engine.connect()
        cancelled, next_in_line = await _line_up(engine, ("cancelled", "next in line"), order, done)
        await held.close()
        cancelled.cancel()
        done.set()
        await asyncio.wait_for(next_in_line, 5)
        assert order in (["next in line"], ["cancelled", "next in line"])
        async with asyncio.timeout(1):
            again = await engine.connect()
        await again.close()
    finally:
        await engine.dispose()
