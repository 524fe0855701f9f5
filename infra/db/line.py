"""Repositories of the LINE official account: inbox, LINE users, link nonces, deliveries (and dead letters)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db.leases import WorkTable, claim_due
from infra.db.tables_line import LineDeliveryRow, LineInboxRow, LineLinkNonceRow, LineUserRow

PENDING, SENT, SKIPPED, DEAD = "pending", "sent", "skipped", "dead"

INBOX = WorkTable(
    LineInboxRow,
    pending=lambda: [LineInboxRow.processed_at.is_(None)],  # type: ignore[union-attr]
    due=lambda now: [LineInboxRow.next_attempt_at <= now],
    order_by=lambda: [LineInboxRow.event_at, LineInboxRow.received_at],
)
DELIVERIES = WorkTable(
    LineDeliveryRow,
    pending=lambda: [LineDeliveryRow.status == PENDING],
    due=lambda now: [LineDeliveryRow.next_attempt_at <= now],
    order_by=lambda: [LineDeliveryRow.created_at],
)


def _insert_ignoring_duplicates(db: AsyncSession, table: Any, key: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the unique `key` (both SQLite and PostgreSQL speak it)."""
    if db.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=[key])
    if db.bind.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    return insert(table).prefix_with("IGNORE")  # pragma: no cover - MySQL-style fallback


class SqlLineInbox:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, events: Sequence[dict[str, Any]]) -> int:
        """Store each event once; a redelivered event id is silently ignored. Returns how many were new."""
        stored = 0
        for values in events:
            stmt = _insert_ignoring_duplicates(self.db, LineInboxRow.__table__, "webhook_event_id")
            result = await self.db.execute(stmt.values(**values))
            stored += max(0, result.rowcount or 0)  # type: ignore[attr-defined]
        return stored

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[uuid.UUID]:
        return await claim_due(
            self.db,
            LineInboxRow,
            pending=[LineInboxRow.processed_at.is_(None)],  # type: ignore[union-attr]
            due=[LineInboxRow.next_attempt_at <= now],
            order_by=[LineInboxRow.event_at, LineInboxRow.received_at],
            now=now,
            lease=lease,
            limit=limit,
        )

    async def get(self, row_id: uuid.UUID) -> LineInboxRow | None:
        return await self.db.get(LineInboxRow, row_id)


class SqlLineUsers:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_line_id(self, line_user_id: str) -> LineUserRow | None:
        return (
            await self.db.execute(select(LineUserRow).where(LineUserRow.line_user_id == line_user_id))
        ).scalar_one_or_none()

    async def by_user(self, user_id: uuid.UUID) -> LineUserRow | None:
        return (
            await self.db.execute(select(LineUserRow).where(LineUserRow.user_id == user_id))
        ).scalar_one_or_none()

    async def seen(self, line_user_id: str, now: datetime) -> LineUserRow:
        """The row for this LINE user, created on first contact (id only: no profile is ever fetched)."""
        stmt = _insert_ignoring_duplicates(self.db, LineUserRow.__table__, "line_user_id")
        await self.db.execute(
            stmt.values(id=uuid.uuid4(), line_user_id=line_user_id, created_at=now, updated_at=now)
        )
        row = await self.by_line_id(line_user_id)
        assert row is not None
        return row

    async def follow(self, row: LineUserRow, now: datetime) -> None:
        row.followed_at = now
        row.unfollowed_at = None
        row.updated_at = now
        await self.db.flush()

    async def set_language(self, row: LineUserRow, language: str, now: datetime) -> None:
        """The language the bot speaks with this person from now on (NULL is Japanese)."""
        row.language = None if language == "ja" else language
        row.updated_at = now
        await self.db.flush()

    async def unfollow(self, row: LineUserRow, now: datetime) -> None:
        """Blocked: unlink, and drop every message still waiting for this person (dead letters too)."""
        row.unfollowed_at = now
        row.user_id = None
        row.linked_at = None
        row.updated_at = now
        await self.db.execute(
            update(LineDeliveryRow)
            .where(
                LineDeliveryRow.line_user_id == row.line_user_id,
                LineDeliveryRow.status.in_([PENDING, DEAD]),  # type: ignore[attr-defined]
            )
            .values(status=SKIPPED, messages=None, reply_token=None)
        )
        await self.db.flush()

    async def bind(self, row: LineUserRow, user_id: uuid.UUID, now: datetime) -> None:
        """One LINE user per account and one account per LINE user: a new link replaces an old one."""
        await self.db.execute(
            update(LineUserRow)
            .where(LineUserRow.user_id == user_id, LineUserRow.id != row.id)
            .values(user_id=None, linked_at=None, updated_at=now)
        )
        row.user_id = user_id
        row.linked_at = now
        row.updated_at = now
        await self.db.flush()

    async def unlink_user(self, user_id: uuid.UUID, now: datetime) -> bool:
        result = await self.db.execute(
            update(LineUserRow)
            .where(LineUserRow.user_id == user_id)
            .values(user_id=None, linked_at=None, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class SqlLineNonces:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, digest: str, user_id: uuid.UUID, now: datetime, expires_at: datetime) -> None:
        # A person asking again replaces their earlier nonce, and expired ones are swept on the way.
        await self.db.execute(
            delete(LineLinkNonceRow).where(
                or_(LineLinkNonceRow.user_id == user_id, LineLinkNonceRow.expires_at < now)
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
            await self.db.execute(select(LineLinkNonceRow).where(LineLinkNonceRow.digest == digest))
        ).scalar_one_or_none()
        if row is None:
            return None
        user_id, expires_at, row_id = row.user_id, row.expires_at, row.id
        result = await self.db.execute(delete(LineLinkNonceRow).where(LineLinkNonceRow.id == row_id))
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

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[uuid.UUID]:
        return await claim_due(
            self.db,
            LineDeliveryRow,
            pending=[LineDeliveryRow.status == PENDING],
            due=[LineDeliveryRow.next_attempt_at <= now],
            order_by=[LineDeliveryRow.created_at],
            now=now,
            lease=lease,
            limit=limit,
        )

    async def get(self, row_id: uuid.UUID) -> LineDeliveryRow | None:
        return await self.db.get(LineDeliveryRow, row_id)

    async def dead(self, limit: int) -> list[LineDeliveryRow]:
        rows = await self.db.execute(
            select(LineDeliveryRow)
            .where(LineDeliveryRow.status == DEAD)
            .order_by(LineDeliveryRow.failed_at.desc(), LineDeliveryRow.id)  # type: ignore[union-attr]
            .limit(limit)
        )
        return list(rows.scalars())
