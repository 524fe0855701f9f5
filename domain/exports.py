"""The person's copy of what the centre holds about them (APPI right of access, issue 17 §3 "Export").

A signed-in person who has just proved who they are asks for an export (`request`); the worker prepares it in
the background (infra/exports.py: a ZIP with JSON and the files, sealed with a key of its own and kept in the
blob store) and mails the person, without any content, that it is ready. It can be downloaded once, within
`ExportPolicy.lifetime`; after that, or once downloaded, its stored copy is deleted and it answers 410. Another
person's export is 404, like anything one may not see.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from domain.actors import Actor
from domain.errors import Conflict, Gone, NotFound
from domain.ports import AuditLog, Clock, Outbox, Transaction, UnitOfWorkFactory

EXPORT_READY_MAIL = "mail.export_ready"


class ExportState(enum.StrEnum):
    pending = "pending"  # asked for; the worker has not finished it
    ready = "ready"  # prepared and stored; downloadable once until `expires_at`
    downloaded = "downloaded"  # handed over once; the stored copy is deleted
    expired = "expired"  # not downloaded in time; the stored copy is deleted
    failed = "failed"  # the worker gave up (attempts ran out); ask again


OPEN_STATES = frozenset({ExportState.pending, ExportState.ready})


@dataclass(frozen=True, slots=True)
class ExportPolicy:
    lifetime: timedelta = timedelta(days=7)
    max_open: int = 1  # exports of one person pending or ready at once


@dataclass(frozen=True, slots=True)
class StoredArchive:
    """Where the sealed ZIP is kept and the wrapped key that opens it (never the key in the clear)."""

    blob_key: str
    kek_id: str
    wrapped_key: bytes
    size: int


@dataclass(slots=True)
class PersonalExport:
    id: uuid.UUID
    user_id: uuid.UUID
    state: ExportState
    requested_at: datetime
    ready_at: datetime | None = None
    expires_at: datetime | None = None
    downloaded_at: datetime | None = None
    stored: StoredArchive | None = None

    def state_at(self, now: datetime) -> ExportState:
        """A ready export past its time is expired, even before the worker's sweep has deleted it."""
        if self.state is ExportState.ready and self.expires_at is not None and self.expires_at <= now:
            return ExportState.expired
        return self.state


class ExportUnreadable(Exception):
    """The stored copy cannot be given: gone from the store, its key-encryption key not held, or it does not
    open (altered). Raised by `ExportBlobs.read`; the download answers 410 and marks the export failed."""


class ExportRepository(Protocol):
    async def add(self, export: PersonalExport) -> None: ...

    async def lock_user(self, user_id: uuid.UUID) -> None:
        """Waits for any other transaction on the person's account row (the account row stands for their
        exports; taken first, before any export row, like consents and erasure)."""

    async def get(self, export_id: uuid.UUID, user_id: uuid.UUID) -> PersonalExport | None:
        """The export if it is this person's; another person's is None."""

    async def count_open(self, user_id: uuid.UUID) -> int: ...

    async def for_user(self, user_id: uuid.UUID) -> list[PersonalExport]:
        """All of the person's exports, oldest first."""

    async def mark_downloaded(self, export: PersonalExport) -> bool:
        """ready → downloaded, only if it is still ready (a conditional update: of two downloads, one wins)."""

    async def mark_failed(self, export_id: uuid.UUID, expected: ExportState) -> bool:
        """expected → failed, only if it is still in `expected`."""

    async def expire(self, export_id: uuid.UUID, now: datetime) -> bool:
        """ready → expired, only if it is still ready and past `expires_at` (a download or an erasure that
        changed it meanwhile keeps its state)."""

    async def forget_copy(self, export_id: uuid.UUID, blob_key: str) -> None:
        """The row no longer names its stored copy (only if it still names this one); its state is untouched."""

    async def to_sweep(self, now: datetime, limit: int) -> list[PersonalExport]:
        """Exports whose stored copy must go: ready past `expires_at`, or downloaded, expired or failed still
        holding one."""


class ExportBlobs(Protocol):
    """The sealed archives in the blob store (infra/exports.py)."""

    async def read(self, export_id: uuid.UUID, stored: StoredArchive) -> bytes:
        """The ZIP, unsealed; ExportUnreadable when it cannot be had."""

    async def delete(self, blob_key: str) -> bool:
        """True once the copy is gone (gone already counts); False when the store failed (tried again by the
        next sweep). Never raises."""


class ExportUnitOfWork(Transaction, Protocol):
    @property
    def exports(self) -> ExportRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def audit(self) -> AuditLog: ...


class ExportService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[ExportUnitOfWork],
        blobs: ExportBlobs,
        clock: Clock,
        policy: ExportPolicy | None = None,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.clock = clock
        self.policy = policy or ExportPolicy()

    async def request(self, actor: Actor) -> PersonalExport:
        """The caller (any person with an account) asks for their export. The route checks the fresh proof of
        identity first. At most `max_open` pending or ready at once: 409 `export_already_open`."""
        user_id = actor.require_user_id()
        now = self.clock.now()
        async with self.uow() as uow:
            # Two requests at once: the second waits here for the first to commit, then counts it.
            await uow.exports.lock_user(user_id)
            if await uow.exports.count_open(user_id) >= self.policy.max_open:
                raise Conflict("export_already_open", limit=self.policy.max_open)
            export = PersonalExport(uuid.uuid4(), user_id, ExportState.pending, now)
            await uow.exports.add(export)
            await uow.audit.record(actor, "export.requested", "personal_export", export.id)
            await uow.commit()
        return export

    async def get(self, actor: Actor, export_id: uuid.UUID) -> PersonalExport:
        async with self.uow() as uow:
            export = await uow.exports.get(export_id, actor.require_user_id())
        if export is None:
            raise NotFound("export_not_found")
        export.state = export.state_at(self.clock.now())
        return export

    async def download(self, actor: Actor, export_id: uuid.UUID) -> tuple[PersonalExport, bytes]:
        """The ZIP, once. The export is marked downloaded first (a conditional update: of two concurrent
        downloads the second waits for the first and then finds it downloaded, 410), then its copy is read in
        the same transaction. A copy that cannot be read (gone from the store, its key-encryption key not held,
        altered) answers 410 with state `failed`, and the export is marked failed for good, so a retry does not
        fail again; ask for a new one. The stored copy is deleted right after the commit; the row forgets its
        name at the worker's next sweep (which deletes the copy again, harmlessly, should this deletion have
        failed)."""
        now = self.clock.now()
        async with self.uow() as uow:
            export = await uow.exports.get(export_id, actor.require_user_id())
            if export is None:
                raise NotFound("export_not_found")
            state = export.state_at(now)
            if state is ExportState.pending:
                raise Conflict("export_not_ready")
            stored = export.stored
            if state is not ExportState.ready or stored is None:
                raise Gone("export_gone", state=state.value)
            export.state = ExportState.downloaded
            export.downloaded_at = now
            if not await uow.exports.mark_downloaded(export):
                raise Gone("export_gone", state=ExportState.downloaded.value)  # a concurrent download won
            try:
                data = await self.blobs.read(export.id, stored)
            except ExportUnreadable as exc:
                await uow.exports.mark_failed(export.id, ExportState.downloaded)
                await uow.audit.record(
                    actor, "export.unreadable", "personal_export", export.id, {"error": str(exc)}
                )
                await uow.commit()
                unreadable = True
            else:
                await uow.audit.record(
                    actor, "export.downloaded", "personal_export", export.id, {"size": len(data)}
                )
                await uow.commit()
                unreadable = False
        await self.blobs.delete(stored.blob_key)
        if unreadable:
            raise Gone("export_gone", state=ExportState.failed.value)
        return export, data

    async def sweep(self, limit: int = 100) -> int:
        """Expire what was not downloaded in time and delete every stored copy no longer needed; returns how
        many copies went. The worker runs it with each pass. Every write is conditional on the state read: a
        download (or an erasure) that changed an export meanwhile keeps its state; its copy goes all the same,
        as nothing needs it any more."""
        now = self.clock.now()
        async with self.uow() as uow:
            due: Sequence[PersonalExport] = await uow.exports.to_sweep(now, limit)
            for export in due:
                if export.state is ExportState.ready:
                    await uow.exports.expire(export.id, now)
            await uow.commit()
        for export in due:
            await self._delete_copy(export)
        return len(due)

    async def _delete_copy(self, export: PersonalExport) -> None:
        if export.stored is None:
            return
        if not await self.blobs.delete(export.stored.blob_key):
            return  # the store failed: the next sweep tries again
        async with self.uow() as uow:
            await uow.exports.forget_copy(export.id, export.stored.blob_key)
            await uow.commit()
