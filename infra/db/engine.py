"""Async engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool


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
        {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": timeout}
        if pooled
        else {"poolclass": NullPool}
    )
    if url.startswith("sqlite"):
        database = make_url(url).database
        if pooled and (not database or database == ":memory:" or "mode=memory" in url):
            pool_options = {}  # an in-memory database lives in its one connection (SQLAlchemy's StaticPool)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool_options)  # type: ignore[arg-type]

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if pooled:
        # No pre-ping (it costs a round trip per checkout); a dropped connection fails one request with 503
        # and is discarded, and recycling retires connections before servers or proxies cut them.
        pool_options["pool_recycle"] = 1800
    return create_async_engine(
        url,
        **pool_options,  # type: ignore[arg-type]
        connect_args={
            "timeout": timeout,
            "command_timeout": 30,
            "server_settings": {"application_name": "madoguchi"},
        },
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
