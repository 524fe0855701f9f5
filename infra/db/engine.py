"""Async engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_cursor
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, Pool
from sqlalchemy.util import queue as sa_queue
from sqlalchemy.util.concurrency import await_

from infra import metrics


class FirstComeQueue(sa_queue.AsyncAdaptedQueue[Any]):
    """The pool's idle connections, handed out first come, first served.

    SQLAlchemy's queue lets a newcomer take a connection that was just checked in before the request woken
    for it runs, and the woken request then queues again at the back (asyncio.Queue does the same). Under
    load that starved a few requests for seconds while most passed at once: at 256 connections the consultant's
    read had p50 0.1 s and p99 3.8 s, with checkouts past the pool timeout (503). Here a checked-in connection
    goes straight to the longest waiter, and nobody takes an idle one while others wait."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if self._waiters:
            self.put_nowait(item)
        else:
            super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._waiters and not self.empty():
            return self.get_nowait()
        if not block:
            raise sa_queue.Empty()
        return await_(self._wait(timeout))

    async def _wait(self, seconds: float | None) -> Any:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException as error:  # the timeout, or the request cancelled while it waited
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed a connection as it gave up: the next one gets it
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(error, TimeoutError):
                raise sa_queue.Empty() from None
            raise


class MeteredPool(AsyncAdaptedQueuePool):
    """The fixed pool, first come first served (`FirstComeQueue`), counting who waits for a connection
    (SQLAlchemy has no event before a checkout blocks). `_do_get` is the one place a checkout waits; the count
    is two integer updates per checkout."""

    _queue_class = FirstComeQueue

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


# A row lock (or a lock on a key) is only held inside a transaction.
_LOCKING = re.compile(r"\bFOR\s+(UPDATE|NO\s+KEY\s+UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)
READ_COMMITTED = "read_committed"  # the asyncpg adapter's name of the engine's isolation level


def reads_only(sql: str) -> bool:
    """A statement that only reads and takes no lock: a plain SELECT."""
    return sql.lstrip()[:6].upper() == "SELECT" and _LOCKING.search(sql) is None


class BeginAtFirstWrite(AsyncAdapt_asyncpg_cursor):
    """PostgreSQL: the unit of work's transaction begins at its first statement that writes or locks, not at
    its first SELECT, so a unit of work that only reads (the consulter's read of a case, the queue's pages)
    sends no BEGIN and no ROLLBACK: 2 of its 4 round trips, each a wake-up of the server process on the
    shared cores (py-spy put the socket sends at a quarter of a read's samples). Under READ COMMITTED, the
    engine's level, every statement takes its own snapshot in a transaction or out of one, so a read sees
    the same rows either way; a write, a savepoint or a `FOR UPDATE`/`FOR SHARE` begins the transaction
    first, and what follows is in it, committed or rolled back once. A connection set to another level (the
    statistics recount's REPEATABLE READ) begins at its first statement as before.

    A statement run with the execution option `WHOLE_TRANSACTION` before anything has begun is also sent
    alone, in autocommit: it is then the unit of work's whole transaction, atomic as every single statement
    is, and committed when the server answers it (see `one_statement_commits`)."""

    whole_transaction = False  # set per statement, from its execution options (make_engine's listener)

    async def _prepare_and_execute(self, operation: str, parameters: Any) -> None:
        conn = self._adapt_connection
        if (
            conn._transaction is None
            and conn.isolation_level == READ_COMMITTED
            and (self.whole_transaction or reads_only(operation))
        ):
            conn.isolation_level = "autocommit"  # the adapter's own switch: no BEGIN for this statement
            try:
                await super()._prepare_and_execute(operation, parameters)
            finally:
                conn.isolation_level = READ_COMMITTED
            return
        await super()._prepare_and_execute(operation, parameters)


class _BeginAtFirstWriteConnection(AsyncAdapt_asyncpg_connection):
    __slots__ = ()
    _cursor_cls = BeginAtFirstWrite


# The execution option of a statement that is its unit of work's whole transaction (BeginAtFirstWrite).
WHOLE_TRANSACTION = "madoguchi_whole_transaction"


async def one_statement_commits(db: AsyncSession) -> bool:
    """Whether a statement run now on this session with `WHOLE_TRANSACTION` commits on its own, with no BEGIN
    and no COMMIT: PostgreSQL on BeginAtFirstWrite's connection, at READ COMMITTED, with no transaction begun
    yet (every statement so far only read). The one place that tells the databases apart for it: on SQLite
    the answer is always no, as it has no data-modifying CTE to put a write of two tables in one statement
    (and its driver begins its own transaction at the first write), so a unit of work there keeps
    BEGIN ... COMMIT."""
    if db.get_bind().dialect.name != "postgresql":
        return False
    raw = (await (await db.connection()).get_raw_connection()).dbapi_connection
    return (
        isinstance(raw, _BeginAtFirstWriteConnection)
        and raw._transaction is None
        and raw.isolation_level == READ_COMMITTED
    )


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
        isolation_level="READ COMMITTED",  # said, not assumed from the server: BeginAtFirstWrite relies on it
        connect_args={
            "timeout": timeout,
            "command_timeout": 30,
            "server_settings": {"application_name": "madoguchi"},
        },
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _begin_at_first_write(dbapi_connection: Any, _record: Any) -> None:
        # The adapter's connection makes its cursors from a class attribute (its instances have slots).
        dbapi_connection.__class__ = _BeginAtFirstWriteConnection

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _whole_transaction(
        _conn: Any, cursor: Any, _sql: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        # The cursor sees only the SQL and its parameters; the statement's options reach it here.
        if context is not None and context.execution_options.get(WHOLE_TRANSACTION):
            cursor.whole_transaction = True

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
