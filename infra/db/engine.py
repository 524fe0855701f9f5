"""Async engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, Pool

from infra import metrics


class MeteredPool(AsyncAdaptedQueuePool):
    """The fixed pool, counting who waits for a connection (SQLAlchemy has no event before a checkout
    blocks). `_do_get` is the one place a checkout waits; the count is two integer updates per checkout."""

    def _do_get(self) -> Any:
        metrics.DB_POOL_WAITING.inc()
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            metrics.DB_POOL_TIMEOUTS.inc()
            raise
        finally:
            metrics.DB_POOL_WAITING.dec()


def _meter(engine: AsyncEngine, pool_size: int) -> None:
    pool: Pool = engine.sync_engine.pool
    if not isinstance(pool, MeteredPool):
        return
    metrics.DB_POOL_SIZE.inc(pool_size)

    @event.listens_for(pool, "checkout")
    def _out(*_args: Any) -> None:
        metrics.DB_POOL_IN_USE.inc()

    @event.listens_for(pool, "checkin")
    def _in(*_args: Any) -> None:
        metrics.DB_POOL_IN_USE.dec()

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _gone(*_args: Any) -> None:
        metrics.DB_POOL_SIZE.dec(pool_size)


def async_url(url: str) -> str:
    """Accept the plain URLs ops write (postgresql://, sqlite:///) and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10, timeout: float = 5.0, pooled: bool = True) -> AsyncEngine:
    """A fixed pool: a request holds exactly one connection (its unit of work), so `pool_size` bounds the
    requests in flight per process. No overflow: overflow connections are closed again on check-in, and under
    load that churned hundreds of new PostgreSQL sessions per second (each one a fork on the server) while
    buying nothing a bigger pool_size would not. A checkout that waits longer than `timeout` fails that
    request with a logged 503 (api/errors.py)."""
    url = async_url(url)
    pool_options: dict[str, object] = (
        {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": timeout, "poolclass": MeteredPool}
        if pooled
        else {"poolclass": NullPool}
    )
    if url.startswith("sqlite"):
        database = make_url(url).database
        if pooled and (not database or database == ":memory:" or "mode=memory" in url):
            pool_options = {}  # an in-memory database lives in its one connection (SQLAlchemy's StaticPool)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool_options)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        _meter(engine, pool_size)
        return engine
    if pooled:
        # No pre-ping (it costs a round trip per checkout); a dropped connection fails one request with 503
        # and is discarded, and recycling retires connections before servers or proxies cut them.
        pool_options["pool_recycle"] = 1800
    engine = create_async_engine(
        url,
        **pool_options,
        connect_args={
            "timeout": timeout,
            "command_timeout": 30,
            "server_settings": {"application_name": "madoguchi"},
        },
    )
    _meter(engine, pool_size)
    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# SQLAlchemy names a pool subclass's logger after its module: keep it as quiet as SQLAlchemy's own.
logging.getLogger(f"{__name__}.{MeteredPool.__name__}").setLevel(logging.WARNING)


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. AsyncSession.execute is typed to return a Result for every
    statement; for DML it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount
