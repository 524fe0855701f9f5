"""`Idempotency-Key` for every create (draft-ietf-httpapi-idempotency-key-header).

The key is written by the create's own unit of work, in the same transaction as the row it guards
(`SqlUnitOfWork.commit` calls `record`): if the create committed, so did its key, even when the answer never
reached the client (a 503 after the commit). The answer itself (status, Location, ETag, body) is stored right
after it is rendered, so a retry gets exactly the same answer; the row the create made is remembered too, so a
retry whose first answer was never stored can still be answered from that row.

A request scope (a context variable holding one mutable `IdempotencyScope`) carries the key from the HTTP layer
to the unit of work, so no use case has to know about keys.

The stored answer repeats what the create answered (a narrative, a message, a letter), so it is sealed
(issue 17 §1) with a key of its own derived from the master secret, bound to its principal and key as associated
data: one AES-GCM key for every answer, none to look up per case, nothing to keep beyond the 24 hours. An answer
that no longer opens (the master secret changed) counts as not stored: the retry is rebuilt from the row the
create made. Shredding a case also deletes the answers of the creates made in it (infra/db/retention.py).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.errors import Conflict
from infra.crypto import KEY_BYTES, TEXT_PREFIX, seal, unseal
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


def should_record(db: AsyncSession, scope: IdempotencyScope | None, *, wrote: bool) -> bool:
    """Whether this commit records the request's key: it writes (`wrote` says so of what the session does not
    hold, the audit records) and the request carries a fresh key."""
    return (
        scope is not None and scope.armed and bool(wrote or scope.wrote or db.new or db.dirty or db.deleted)
    )


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


@functools.lru_cache(maxsize=4)
def answer_key(master_secret: bytes) -> bytes:
    """The key stored answers are sealed with, derived from the master secret (never stored)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"madoguchi idempotency answers v1"
    ).derive(master_secret)


def _context(principal_id: uuid.UUID, key: str) -> bytes:
    return b"idempotency-answer\x00" + principal_id.bytes + b"\x00" + key.encode()


def seal_answer(master_secret: bytes, principal_id: uuid.UUID, key: str, body: str) -> str:
    sealed = seal(answer_key(master_secret), body.encode(), context=_context(principal_id, key))
    return TEXT_PREFIX + base64.urlsafe_b64encode(sealed).decode()


def opened_answer(master_secret: bytes, row: IdempotencyRow) -> str | None:
    """The stored answer's body; one stored before answers were sealed as it is; None when none was stored or
    it no longer opens (the caller then answers from the created row)."""
    stored = row.response_body
    if stored is None or not stored.startswith(TEXT_PREFIX):
        return stored
    try:
        sealed = base64.urlsafe_b64decode(stored[len(TEXT_PREFIX) :])
        plain = unseal(answer_key(master_secret), sealed, context=_context(row.principal_id, row.key))
    except ValueError:
        return None
    return plain.decode()


async def store_answer(
    factory: async_sessionmaker[AsyncSession],
    scope: IdempotencyScope,
    status_code: int,
    headers: dict[str, str],
    body: str,
    *,
    master_secret: bytes,
) -> None:
    assert scope.principal_id is not None and scope.key is not None, "a recorded scope has both"
    sealed = seal_answer(master_secret, scope.principal_id, scope.key, body)
    async with factory() as db:
        row = await db.get(IdempotencyRow, (scope.principal_id, scope.key))
        if row is None or row.status_code is not None:
            return
        row.status_code, row.response_headers, row.response_body = status_code, headers, sealed
        await db.commit()


async def purge_expired(factory: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Keys (and the answers stored with them, which may quote what a consulter wrote) go after a day."""
    async with factory() as db:
        result = await db.execute(delete(IdempotencyRow).where(col(IdempotencyRow.expires_at) <= now))
        await db.commit()
        return int(affected(result) or 0)
