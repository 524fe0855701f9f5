"""`Idempotency-Key` for every create (draft-ietf-httpapi-idempotency-key-header).

The key is written by the create's own unit of work, in the same transaction as the row it guards
(`SqlUnitOfWork.commit` calls `record`): if the create committed, so did its key, even when the answer never
reached the client (a 503 after the commit). The answer itself (status, Location, ETag, body) is stored right
after it is rendered, so a retry gets exactly the same answer; the row the create made is remembered too, so a
retry whose first answer was never stored can still be answered from that row.

A request scope (a context variable holding one mutable `IdempotencyScope`) carries the key from the HTTP layer
to the unit of work, so no use case has to know about keys.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.errors import Conflict
from infra.db.engine import affected
from infra.db.tables import IdempotencyRow

KEEP = timedelta(hours=24)

_current: ContextVar[IdempotencyScope | None] = ContextVar("madoguchi_idempotency", default=None)


@dataclass
class IdempotencyScope:
    principal_id: uuid.UUID | None = None
    key: str | None = None
    operation: str = ""
    fingerprint: str = ""
    table: str | None = None  # the name of the table the create makes its row in
    resource_id: uuid.UUID | None = None
    wrote: bool = False
    recorded: bool = False

    @property
    def armed(self) -> bool:
        """A fresh key is waiting for the create's commit."""
        return self.key is not None and not self.recorded

    def arm(
        self, principal_id: uuid.UUID, key: str, operation: str, fingerprint: str, table: str | None
    ) -> None:
        self.principal_id, self.key, self.operation = principal_id, key, operation
        self.fingerprint, self.table = fingerprint, table


def current() -> IdempotencyScope | None:
    return _current.get()


@contextlib.contextmanager
def request_scope() -> Iterator[IdempotencyScope]:
    scope = IdempotencyScope()
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def watch(db: AsyncSession, scope: IdempotencyScope) -> None:
    """Note, on the unit of work's session, that it writes and which row of the scope's table it creates."""

    def before_flush(session: Any, _context: Any, _instances: Any) -> None:
        if session.new or session.dirty or session.deleted:
            scope.wrote = True
        if scope.resource_id is None and scope.table is not None:
            for obj in session.new:
                if getattr(obj, "__tablename__", None) == scope.table and isinstance(
                    getattr(obj, "id", None), uuid.UUID
                ):
                    scope.resource_id = obj.id
                    break

    event.listen(db.sync_session, "before_flush", before_flush)


def should_record(db: AsyncSession, scope: IdempotencyScope | None) -> bool:
    return scope is not None and scope.armed and bool(scope.wrote or db.new or db.dirty or db.deleted)


async def record(db: AsyncSession, scope: IdempotencyScope, now: datetime) -> None:
    """Add the key to the create's transaction (the caller commits)."""
    await db.flush()  # runs `watch`, so the created row is known
    assert scope.principal_id is not None and scope.key is not None, "an armed scope has both"
    db.add(
        IdempotencyRow(
            principal_id=scope.principal_id,
            key=scope.key,
            operation=scope.operation,
            fingerprint=scope.fingerprint,
            resource_id=scope.resource_id,
            created_at=now,
            expires_at=now + KEEP,
        )
    )
    try:
        await db.flush()
    except IntegrityError as exc:
        # The same key committed by a request that ran at the same time: ours is undone (IETF draft: 409).
        raise Conflict("idempotency_key_in_use") from exc


async def find(
    factory: async_sessionmaker[AsyncSession], principal_id: uuid.UUID, key: str, now: datetime
) -> IdempotencyRow | None:
    """The live key, if any; an expired one is dropped so the key can be used afresh."""
    async with factory() as db:
        row = await db.get(IdempotencyRow, (principal_id, key))
        if row is not None and row.expires_at <= now:
            await db.execute(
                delete(IdempotencyRow).where(
                    col(IdempotencyRow.principal_id) == principal_id, col(IdempotencyRow.key) == key
                )
            )
            await db.commit()
            return None
        return row


async def store_answer(
    factory: async_sessionmaker[AsyncSession],
    scope: IdempotencyScope,
    status_code: int,
    headers: dict[str, str],
    body: str,
) -> None:
    async with factory() as db:
        row = await db.get(IdempotencyRow, (scope.principal_id, scope.key))
        if row is None or row.status_code is not None:
            return
        row.status_code, row.response_headers, row.response_body = status_code, headers, body
        await db.commit()


async def purge_expired(factory: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Keys (and the answers stored with them, which may quote what a consulter wrote) go after a day."""
    async with factory() as db:
        result = await db.execute(delete(IdempotencyRow).where(col(IdempotencyRow.expires_at) <= now))
        await db.commit()
        return int(affected(result) or 0)
