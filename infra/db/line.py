"""Repositories of the LINE official account: inbox, LINE users, link nonces, deliveries (and dead letters),
and the unit of work the LINE use cases run in (domain/line_ports.py). Rows change here and nowhere else."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.line_ports import DeadLetter, LineEvent, LinePerson
from domain.work_queue import RetryPolicy
from infra.db.consents import SqlConsents
from infra.db.leases import WorkTable, record_failure
from infra.db.repositories import SqlUsers
from infra.db.tables import metadata
from infra.db.tables_line import LineDeliveryRow, LineInboxRow, LineLinkNonceRow, LineUserRow

PENDING, SENT, SKIPPED, DEAD = "pending", "sent", "skipped", "dead"

INBOX = WorkTable(
    LineInboxRow,
    pending=lambda: [col(LineInboxRow.processed_at).is_(None)],
    due=lambda now: [col(LineInboxRow.next_attempt_at) <= now],
    order_by=lambda: [col(LineInboxRow.event_at), col(LineInboxRow.received_at)],
)
DELIVERIES = WorkTable(
    LineDeliveryRow,
    pending=lambda: [col(LineDeliveryRow.status) == PENDING],
    due=lambda now: [col(LineDeliveryRow.next_attempt_at) <= now],
    order_by=lambda: [col(LineDeliveryRow.created_at)],
)


def _insert_ignoring_duplicates(dialect: str, table: Any, key: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the unique `key` (both SQLite and PostgreSQL speak it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=[key])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    return insert(table).prefix_with("IGNORE")  # pragma: no cover - MySQL-style fallback


@functools.cache
def _store_events(dialect: str) -> Any:
    """All events of a delivery in one INSERT … ON CONFLICT (webhook_event_id) DO NOTHING RETURNING id: only
    the rows that were new come back, so a redelivered event is neither stored twice nor counted, and no SELECT
    asks first. Built once per dialect; the rows go in as parameters (one multi-row VALUES, SQLAlchemy's
    insertmanyvalues)."""
    table = metadata.tables["line_inbox"]
    return _insert_ignoring_duplicates(dialect, table, "webhook_event_id").returning(table.c.id)


class LineWebhookInbox:
    """The webhook's one write, on a connection of its own engine rather than a unit of work: the webhook
    reads nothing and changes nothing else, so it needs no session, identity map or flush, only one statement
    that has committed before the webhook answers. That statement is its own transaction (autocommit): no
    BEGIN and COMMIT round trips around it, and a delivery's events go in one multi-row INSERT, all or none.

    Deliveries that arrive while a statement is being written wait for it, then go together in the next one:
    a group commit within the process, by one writer task that runs while deliveries wait. At 64 connections
    each delivery had been a statement and a WAL flush of its own. A delivery still answers only once its own
    rows are committed; a statement that fails fails every delivery in it (each answers 503, and LINE sends
    it again, its stored events then skipped as duplicates). A statement takes at most BATCH_ROWS rows
    (SQLAlchemy's insertmanyvalues page: one statement); a single delivery of more goes alone, a page at a
    time."""

    BATCH_ROWS = 1000

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._waiting: list[tuple[list[dict[str, Any]], asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, events: Sequence[dict[str, Any]]) -> int:
        """Store each event once; a redelivered event id is silently ignored. Returns how many were new, once
        they are committed."""
        stored: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(events), stored))
        if self._writer is None:
            # A context of its own: the writer serves every waiting delivery, not the request that woke it.
            self._writer = asyncio.create_task(self._write_waiting(), context=contextvars.Context())
        return await stored

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                await self._store(self._take())
        finally:
            self._writer = None

    def _take(self) -> list[tuple[list[dict[str, Any]], asyncio.Future[int]]]:
        """The waiting deliveries that fit one statement, oldest first (always at least one)."""
        batch = [self._waiting.pop(0)]
        rows = len(batch[0][0])
        while self._waiting and rows + len(self._waiting[0][0]) <= self.BATCH_ROWS:
            rows += len(self._waiting[0][0])
            batch.append(self._waiting.pop(0))
        return batch

    async def _store(self, batch: list[tuple[list[dict[str, Any]], asyncio.Future[int]]]) -> None:
        statement = _store_events(self.engine.dialect.name)
        try:
            async with self.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                result = await autocommit.execute(statement, [row for rows, _ in batch for row in rows])
                new = set(result.scalars())
        except asyncio.CancelledError:
            for _, stored in batch:
                stored.cancel()
            raise
        except Exception as failure:  # noqa: BLE001 - each delivery of the statement answers it as its own
            for _, stored in batch:
                if not stored.done():  # a delivery whose request was cancelled no longer waits
                    stored.set_exception(failure)
            return
        for rows, stored in batch:
            if not stored.done():
                stored.set_result(sum(1 for row in rows if row["id"] in new))


class SqlLineInbox:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, row_id: uuid.UUID) -> LineInboxRow | None:
        return await self.db.get(LineInboxRow, row_id)

    async def pending(self, event_id: uuid.UUID) -> LineEvent | None:
        row = await self.get(event_id)
        if row is None or row.processed_at is not None:
            return None
        return LineEvent(
            id=row.id,
            kind=row.event_type,
            line_user_id=row.line_user_id,
            payload=dict(row.payload or {}),
            reply_token=row.reply_token,
            event_at=row.event_at,
        )

    async def done(self, event_id: uuid.UUID, now: datetime) -> None:
        row = await self.get(event_id)
        if row is None:
            return
        row.processed_at = now
        row.payload = None
        row.reply_token = None  # moved to the delivery, if any
        row.locked_until = None
        await self.db.flush()

    async def failed(
        self, event_id: uuid.UUID, error: str, now: datetime, policy: RetryPolicy
    ) -> LineInboxRow | None:
        """One failed attempt; after the last one the event is dropped (marked processed, its data gone)."""
        row = await self.get(event_id)
        if row is None:
            return None
        if record_failure(row, error, now, policy):
            row.processed_at = now
            row.payload = None
            row.reply_token = None
        await self.db.flush()
        return row


def _person(row: LineUserRow) -> LinePerson:
    return LinePerson(
        line_user_id=row.line_user_id,
        user_id=row.user_id,
        language=row.language,
        linked_at=row.linked_at,
        unfollowed_at=row.unfollowed_at,
    )


class SqlLineUsers:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def _row(self, line_user_id: str) -> LineUserRow | None:
        return (
            await self.db.execute(select(LineUserRow).where(col(LineUserRow.line_user_id) == line_user_id))
        ).scalar_one_or_none()

    async def by_line_id(self, line_user_id: str) -> LinePerson | None:
        row = await self._row(line_user_id)
        return _person(row) if row else None

    async def by_user(self, user_id: uuid.UUID) -> LinePerson | None:
        row = (
            await self.db.execute(select(LineUserRow).where(col(LineUserRow.user_id) == user_id))
        ).scalar_one_or_none()
        return _person(row) if row else None

    async def seen(self, line_user_id: str, now: datetime) -> LinePerson:
        """The row for this LINE user, created on first contact (id only: no profile is ever fetched)."""
        stmt = _insert_ignoring_duplicates(
            self.db.get_bind().dialect.name, metadata.tables["line_user"], "line_user_id"
        )
        await self.db.execute(
            stmt.values(id=uuid.uuid4(), line_user_id=line_user_id, created_at=now, updated_at=now)
        )
        row = await self._row(line_user_id)
        assert row is not None
        return _person(row)

    async def _change(self, line_user_id: str, now: datetime, **values: Any) -> None:
        await self.db.execute(
            update(LineUserRow)
            .where(col(LineUserRow.line_user_id) == line_user_id)
            .values(**values, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )

    async def follow(self, line_user_id: str, now: datetime) -> None:
        await self._change(line_user_id, now, followed_at=now, unfollowed_at=None)

    async def set_language(self, line_user_id: str, language: str, now: datetime) -> None:
        """The language the bot speaks with this person from now on (NULL is Japanese)."""
        await self._change(line_user_id, now, language=None if language == "ja" else language)

    async def unfollow(self, line_user_id: str, now: datetime) -> None:
        """Blocked: unlink, and drop every message still waiting for this person (dead letters too)."""
        await self._change(line_user_id, now, unfollowed_at=now, user_id=None, linked_at=None)
        await self.db.execute(
            update(LineDeliveryRow)
            .where(
                col(LineDeliveryRow.line_user_id) == line_user_id,
                col(LineDeliveryRow.status).in_([PENDING, DEAD]),
            )
            .values(status=SKIPPED, messages=None, reply_token=None)
            .execution_options(synchronize_session="fetch")
        )

    async def bind(self, line_user_id: str, user_id: uuid.UUID, now: datetime) -> None:
        """One LINE user per account and one account per LINE user: a new link replaces an old one."""
        await self.db.execute(
            update(LineUserRow)
            .where(col(LineUserRow.user_id) == user_id, col(LineUserRow.line_user_id) != line_user_id)
            .values(user_id=None, linked_at=None, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        await self._change(line_user_id, now, user_id=user_id, linked_at=now)

    async def unlink_user(self, user_id: uuid.UUID, now: datetime) -> bool:
        result = await self.db.execute(
            update(LineUserRow)
            .where(col(LineUserRow.user_id) == user_id)
            .values(user_id=None, linked_at=None, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class SqlLineNonces:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, digest: str, user_id: uuid.UUID, now: datetime, expires_at: datetime) -> None:
        # A person asking again replaces their earlier nonce, and expired ones are swept on the way.
        await self.db.execute(
            delete(LineLinkNonceRow).where(
                or_(col(LineLinkNonceRow.user_id) == user_id, col(LineLinkNonceRow.expires_at) < now)
            )
        )
        self.db.add(
            LineLinkNonceRow(
                id=uuid.uuid4(), digest=digest, user_id=user_id, created_at=now, expires_at=expires_at
            )
        )
        await self.db.flush()

    async def consume(self, digest: str, now: datetime) -> uuid.UUID | None:
        """The account behind an unexpired nonce, exactly once: the DELETE is the claim."""
        row = (
            await self.db.execute(select(LineLinkNonceRow).where(col(LineLinkNonceRow.digest) == digest))
        ).scalar_one_or_none()
        if row is None:
            return None
        user_id, expires_at, row_id = row.user_id, row.expires_at, row.id
        result = await self.db.execute(delete(LineLinkNonceRow).where(col(LineLinkNonceRow.id) == row_id))
        if result.rowcount != 1 or expires_at <= now:  # type: ignore[attr-defined]
            return None
        return user_id


class SqlLineDeliveries:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def add(
        self,
        *,
        purpose: str,
        line_user_id: str,
        messages: list[dict[str, Any]],
        now: datetime,
        reply_token: str | None = None,
        event_at: datetime | None = None,
        user_id: uuid.UUID | None = None,
    ) -> LineDeliveryRow:
        row = LineDeliveryRow(
            id=uuid.uuid4(),
            purpose=purpose,
            mode="reply" if reply_token else "push",
            status=PENDING,
            line_user_id=line_user_id,
            user_id=user_id,
            reply_token=reply_token,
            event_at=event_at,
            messages=messages,
            # One retry key per logical message, kept across retries and replays: LINE answers 409 to a
            # push it already accepted under the same key, so a retry never sends twice.
            retry_key=str(uuid.uuid4()),
            created_at=now,
            next_attempt_at=now,
        )
        self.db.add(row)
        return row

    async def queue(
        self,
        *,
        purpose: str,
        line_user_id: str,
        messages: Sequence[dict[str, Any]],
        now: datetime,
        reply_token: str | None = None,
        event_at: datetime | None = None,
        user_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        row = self.add(
            purpose=purpose,
            line_user_id=line_user_id,
            messages=list(messages),
            now=now,
            reply_token=reply_token,
            event_at=event_at,
            user_id=user_id,
        )
        await self.db.flush()
        return row.id

    async def get(self, row_id: uuid.UUID) -> LineDeliveryRow | None:
        return await self.db.get(LineDeliveryRow, row_id)

    async def find(self, delivery_id: uuid.UUID) -> DeadLetter | None:
        row = await self.get(delivery_id)
        return _dead_letter(row) if row else None

    async def dead(self, limit: int) -> list[DeadLetter]:
        rows = await self.db.execute(
            select(LineDeliveryRow)
            .where(col(LineDeliveryRow.status) == DEAD)
            .order_by(col(LineDeliveryRow.failed_at).desc(), col(LineDeliveryRow.id))
            .limit(limit)
        )
        return [_dead_letter(r) for r in rows.scalars()]

    async def requeue(self, delivery_id: uuid.UUID, now: datetime) -> DeadLetter:
        row = await self.get(delivery_id)
        assert row is not None
        row.status = PENDING
        row.mode = "push"  # the reply token is long gone
        row.reply_token = None
        row.attempts = 0
        row.replays += 1
        row.failed_at = None
        row.locked_until = None
        row.next_attempt_at = now
        await self.db.flush()
        return _dead_letter(row)

    # The sender's steps (infra/line_delivery.py): each a named change of one leased row.

    @staticmethod
    def finish(row: LineDeliveryRow, status: str, now: datetime | None = None) -> None:
        """Sent (at `now`) or skipped: the lease, the reply token and the messages go."""
        row.status = status
        row.locked_until = None
        row.reply_token = None
        row.messages = None
        if status == SENT:
            row.sent_at = now
            row.last_error = None

    @staticmethod
    def mark_reply_in_flight(row: LineDeliveryRow, unsure: str) -> None:
        """Written before a reply is sent: whoever retakes a row so marked knows the reply may be out."""
        row.last_error = f"{unsure}_in_flight"

    @staticmethod
    def as_push(row: LineDeliveryRow) -> None:
        row.mode, row.reply_token = "push", None

    @staticmethod
    def bury(row: LineDeliveryRow, error: str | None, now: datetime) -> None:
        """A dead letter, kept with its messages so an admin can replay it (by push)."""
        row.status = DEAD
        row.last_error = error
        row.failed_at = now
        row.locked_until = None
        row.reply_token = None
        row.mode = "push"

    @classmethod
    def failed(
        cls,
        row: LineDeliveryRow,
        error: str,
        now: datetime,
        policy: RetryPolicy,
        *,
        retryable: bool,
        retry_after: float | None,
    ) -> bool:
        """One failed attempt (leases.record_failure); a dead letter after the last. True when it is dead."""
        if record_failure(row, error, now, policy, retryable=retryable, retry_after=retry_after):
            cls.bury(row, row.last_error, now)
            return True
        return False


def _dead_letter(row: LineDeliveryRow) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        purpose=row.purpose,
        status=row.status,
        attempts=row.attempts,
        replays=row.replays,
        last_error=row.last_error,
        created_at=row.created_at,
        failed_at=row.failed_at,
    )


class SqlLineRepositories:
    """The LINE repositories over one session (the outbox handler's, or a unit of work's)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.line_inbox = SqlLineInbox(db)
        self.line_users = SqlLineUsers(db)
        self.line_nonces = SqlLineNonces(db)
        self.line_deliveries = SqlLineDeliveries(db)
        self.users = SqlUsers(db)
        self.consents = SqlConsents(db)


class SqlLineUnitOfWork:
    """One session, one transaction for a LINE use case; rolled back unless committed. Make one per use."""

    line_inbox: SqlLineInbox
    line_users: SqlLineUsers
    line_nonces: SqlLineNonces
    line_deliveries: SqlLineDeliveries
    users: SqlUsers
    consents: SqlConsents

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._db: AsyncSession | None = None

    async def __aenter__(self) -> SqlLineUnitOfWork:
        self._db = self._factory()
        repos = SqlLineRepositories(self._db)
        self.line_inbox, self.line_users = repos.line_inbox, repos.line_users
        self.line_nonces, self.line_deliveries, self.users = (
            repos.line_nonces,
            repos.line_deliveries,
            repos.users,
        )
        self.consents = repos.consents
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._db is not None
        try:
            await self._db.rollback()  # a no-op after commit; undoes what a failed use case left
        finally:
            await self._db.close()
            self._db = None

    async def commit(self) -> None:
        assert self._db is not None
        await self._db.commit()
