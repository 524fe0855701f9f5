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
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, **({} if pooled else {"poolclass": NullPool})
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    pool_options = (
        # No pre-ping (it costs a round trip per checkout); a dropped connection fails one request with 503
        # and is discarded, and recycling retires connections before servers or proxies cut them.
        {
            "pool_size": pool_size,
            "max_overflow": pool_size // 2,
            "pool_recycle": 1800,
            "pool_timeout": timeout,
        }
        if pooled
        else {"poolclass": NullPool}
    )
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
