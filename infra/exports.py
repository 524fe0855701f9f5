"""Preparing a person's export (issue 17 §3): the worker's pass that collects what is held about one person,
writes it as a ZIP (export.json in UTF-8 with Japanese as written, and the files), seals it with a data key of
its own (AES-256-GCM, the export id as associated data; the key wrapped by the key-encryption key, like a
case's) and keeps it in the blob store under a random name. Case texts are opened through the consultation
repositories, which unseal them with each case's key; a shredded case has nothing left to give.

Files follow the evidence bundle's rule (ConsultationService.evidence_bundle): a sealed picture (uploaded
through a slot, or in an intimate-image or minor case) leaves the service for no one but the assigned
consultant, so the person's export carries its hashes, not its bytes."""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import logging
import secrets
import uuid
import zipfile
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.case_keys import CaseKeyDestroyed, KeyEncryptionKeys
from domain.consultations import (
    Consultation,
    Cursor,
    Evidence,
    EvidenceFiles,
    MessageKind,
    QueueFilter,
    is_hash_only,
)
from domain.exports import EXPORT_READY_MAIL, ExportState, ExportUnreadable, StoredArchive
from domain.letters import Letter
from domain.policy import OwnedBy
from domain.ports import Clock
from domain.work_queue import outbox_policy
from infra.blobs import BlobNotFound, BlobStore
from infra.crypto import new_data_key, seal, unseal
from infra.db.engine import affected
from infra.db.exports import export_context
from infra.db.leases import WorkTable, drain, record_failure
from infra.db.repositories import SqlOutbox
from infra.db.tables import AuthSessionRow, UserRow
from infra.db.tables_erasure import ErasureRequestRow
from infra.db.tables_exports import PersonalExportRow
from infra.db.tables_line import LineUserRow
from infra.db.uow import SqlUnitOfWorkFactory
from infra.storage import EXTENSIONS

log = logging.getLogger("madoguchi.exports")

FORMAT = "madoguchi-personal-export/1"
PAGE = 100
BLOB_PREFIX = "exports/"

EXPORTS = WorkTable(
    PersonalExportRow,
    pending=lambda: [col(PersonalExportRow.state) == ExportState.pending.value],
    due=lambda now: [col(PersonalExportRow.next_attempt_at) <= now],
    order_by=lambda: [col(PersonalExportRow.requested_at)],
)


class SealedExports:
    """The ExportBlobs port: sealed ZIPs under `exports/<random>` (the name says nothing of whose it is)."""

    def __init__(self, blobs: BlobStore, keys: KeyEncryptionKeys) -> None:
        self.blobs = blobs
        self.keys = keys

    async def put(self, export_id: uuid.UUID, data: bytes) -> StoredArchive:
        key = new_data_key()
        blob_key = BLOB_PREFIX + secrets.token_urlsafe(24)
        await self.blobs.put(blob_key, seal(key, data, context=export_context(export_id)))
        kek_id, wrapped = self.keys.wrap(key, context=export_context(export_id))
        return StoredArchive(blob_key, kek_id, wrapped, len(data))

    async def read(self, export_id: uuid.UUID, stored: StoredArchive) -> bytes:
        if not self.keys.holds(stored.kek_id):
            raise ExportUnreadable("kek_missing")
        try:
            key = self.keys.unwrap(stored.kek_id, stored.wrapped_key, context=export_context(export_id))
            sealed = await self.blobs.get(stored.blob_key)
        except BlobNotFound:
            raise ExportUnreadable("copy_missing") from None
        except ValueError:
            raise ExportUnreadable("key_does_not_open") from None
        try:
            return unseal(key, sealed, context=export_context(export_id))
        except ValueError:
            raise ExportUnreadable("copy_does_not_open") from None

    async def delete(self, blob_key: str) -> bool:
        try:
            await self.blobs.delete(blob_key)
        except BlobNotFound:
            pass
        except Exception as exc:  # noqa: BLE001 - the sweep tries again; the download already succeeded
            log.warning("export copy not deleted: %s", type(exc).__name__)
            return False
        return True


def plain(value: Any, drop: frozenset[str] = frozenset()) -> Any:
    """A domain record as JSON-ready data: ids and times as text, enums by value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in drop
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


# Internal bookkeeping that is not information about the person (storage names, perceptual hashes used to
# find the same picture elsewhere, optimistic-lock versions, staff-only upload slots), and which staff member
# wrote or did something: the consulter's API says only whether it was staff (`from_staff`, `by_staff`), and
# under the perpetrator-as-consulter model the export must not tell more.
EVIDENCE_DROP = frozenset({"file", "image_hashes", "upload_slot", "version", "created_by"})
CONSULTATION_DROP = frozenset({"version", "unread_answers", "assignee_id"})
MESSAGE_DROP = frozenset({"author_id"})
REQUEST_DROP = frozenset({"version", "created_by", "advice_by"})
REFERRAL_DROP = frozenset({"created_by"})


class PersonalArchive:
    """Collects one person's data through the repositories and writes the ZIP."""

    def __init__(self, uow: SqlUnitOfWorkFactory, files: EvidenceFiles, clock: Clock) -> None:
        self.uow = uow
        self.files = files
        self.clock = clock

    async def build(self, user_id: uuid.UUID, export_id: uuid.UUID) -> bytes:
        now = self.clock.now()
        entries: list[tuple[str, bytes]] = []
        async with self.uow() as uow:
            db = uow.db
            assert db is not None
            user = await db.get(UserRow, user_id)
            if user is None:
                raise LookupError("no such user")
            consultations = []
            after: Cursor | None = None
            while True:
                page = await uow.consultations.page(
                    OwnedBy(user_id), QueueFilter(), now=now, after=after, limit=PAGE
                )
                for c in page:
                    consultations.append(await self._case(uow, c, entries))
                if len(page) < PAGE:
                    break
                after = Cursor(page[-1].created_at, page[-1].id)
            consents = await uow.consents.for_user(user_id)
            sessions = (
                (
                    await db.execute(
                        select(AuthSessionRow)
                        .where(col(AuthSessionRow.user_id) == user_id)
                        .order_by(col(AuthSessionRow.created_at))
                    )
                )
                .scalars()
                .all()
            )
            line = (
                await db.execute(select(LineUserRow).where(col(LineUserRow.user_id) == user_id))
            ).scalar_one_or_none()
            erasures = (
                (
                    await db.execute(
                        select(ErasureRequestRow)
                        .where(col(ErasureRequestRow.user_id) == user_id)
                        .order_by(col(ErasureRequestRow.requested_at), col(ErasureRequestRow.id))
                    )
                )
                .scalars()
                .all()
            )
            earlier = [e for e in await uow.exports.for_user(user_id) if e.id != export_id]
            # Read inside the unit of work: its rows expire when it ends.
            data = {
                "format": FORMAT,
                "export_id": str(export_id),
                "prepared_at": now.isoformat(),
                "account": {
                    "id": str(user.id),
                    "email": user.email,
                    "role": user.role,
                    "display_name": user.display_name,
                    "locale": user.locale,
                    "email_verified_at": plain(user.email_verified_at),
                    "totp_enabled": user.totp_enabled_at is not None,
                    "active": user.is_active,
                    "created_at": plain(user.created_at),
                    "updated_at": plain(user.updated_at),
                },
                "consultations": consultations,
                "consents": [plain(r, frozenset({"user_id"})) for r in consents],
                "line": None
                if line is None
                else {
                    "line_user_id": line.line_user_id,
                    "linked_at": plain(line.linked_at),
                    "followed_at": plain(line.followed_at),
                    "unfollowed_at": plain(line.unfollowed_at),
                    "language": line.language,
                },
                "erasure_requests": [
                    {
                        "id": str(r.id),
                        "requested_at": plain(r.requested_at),
                        "due_at": plain(r.due_at),
                        "cancelled_at": plain(r.cancelled_at),
                        "completed_at": plain(r.completed_at),
                    }
                    for r in erasures
                ],
                "earlier_exports": [
                    {
                        "id": str(e.id),
                        "status": e.state_at(now).value,
                        "requested_at": plain(e.requested_at),
                        "ready_at": plain(e.ready_at),
                        "expires_at": plain(e.expires_at),
                        "downloaded_at": plain(e.downloaded_at),
                    }
                    for e in earlier
                ],
                "sign_ins": [
                    {
                        "session_id": str(s.id),
                        "client": s.client,
                        "signed_in_at": plain(s.created_at),
                        "last_proof_at": plain(s.reauthenticated_at),
                        "mfa": s.mfa,
                        "expires_at": plain(s.expires_at),
                        "ended_at": plain(s.revoked_at),
                        "ended_because": s.revoked_reason,
                    }
                    for s in sessions
                ],
            }
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("export.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n")
            for path, blob in entries:
                z.writestr(path, blob, compress_type=zipfile.ZIP_STORED)
        return out.getvalue()

    async def _case(self, uow: Any, c: Consultation, entries: list[tuple[str, bytes]]) -> dict[str, Any]:
        """One consultation as its owner sees it: no internal notes, sealed pictures as hashes only."""
        mine = OwnedBy(c.owner_id)  # the person's own export: what they see of their case
        messages = await uow.consultations.messages(c.id, [MessageKind.consulter, MessageKind.answer], mine)
        stored: list[Evidence] = await uow.consultations.evidence(c.id, mine)
        try:
            key = await uow.case_keys.for_consultation(c.id) if any(e.file for e in stored) else None
        except CaseKeyDestroyed:
            key = None
        evidence = []
        for number, e in enumerate(stored, 1):
            item = plain(e, EVIDENCE_DROP)
            if e.file is not None:
                sealed = e.file.sealed or is_hash_only(c)
                ext = EXTENSIONS.get(e.file.content_type, "bin")
                copy_path = original_path = None
                if not sealed and key is not None:
                    copy = b"".join([b async for b in await self.files.open(e.file.storage_key, key)])
                    copy_path = f"files/{c.id}/{number:02d}-{e.id}.{ext}"
                    entries.append((copy_path, copy))
                    if e.file.original_key is not None:
                        original = b"".join(
                            [b async for b in await self.files.open(e.file.original_key, key)]
                        )
                        original_path = f"originals/{c.id}/{number:02d}-{e.id}.{ext}"
                        entries.append((original_path, original))
                item["file"] = {
                    "content_type": e.file.content_type,
                    "size": e.file.size,
                    "sha256": e.file.copy_sha256 or None,
                    "path": copy_path,
                    "original_sha256": e.file.sha256,
                    "original_path": original_path,
                    "withheld": "sealed: kept for the assigned consultant only; hashes given"
                    if sealed
                    else None,
                }
            evidence.append(item)
        requests = await uow.requests.for_consultations([c.id], mine)
        history = await uow.requests.events([r.id for r in requests], mine)
        facts = await uow.requests.facts(c.id)
        referrals = await uow.referrals.for_consultation(c.id, mine)
        transitions = await uow.consultations.transitions(c.id)
        letters = list(reversed(await uow.letters.for_consultation(c.id)))  # oldest first
        return {
            **plain(c, CONSULTATION_DROP),
            "assigned": c.assignee_id is not None,
            "status_history": [
                {
                    "from": plain(t.from_status),
                    "to": plain(t.to_status),
                    "at": plain(t.at),
                    "reason": t.reason,
                    "by_staff": t.actor_id != c.owner_id,
                }
                for t in transitions
            ],
            "clock_facts": {
                "offender_known_on": plain(facts.offender_known_on),
                "damage_known_on": plain(facts.damage_known_on),
            },
            "messages": [
                {**plain(m, MESSAGE_DROP), "from_staff": m.kind is not MessageKind.consulter}
                for m in messages
            ],
            "evidence": evidence,
            "requests": [
                {
                    **plain(r, REQUEST_DROP),
                    "by_staff": r.created_by != c.owner_id,
                    "history": [
                        {
                            "from_status": plain(e.from_status),
                            "to_status": plain(e.to_status),
                            "at": plain(e.at),
                            "note": e.note,
                            "by_staff": e.actor_id != c.owner_id,
                        }
                        for e in history
                        if e.request_id == r.id
                    ],
                }
                for r in requests
            ],
            "referrals": [plain(r, REFERRAL_DROP) for r in referrals],
            "letters": [_letter(letter, c.owner_id) for letter in letters],
        }


def _letter(letter: Letter, owner_id: uuid.UUID) -> dict[str, Any]:
    """A letter with every version (each as written then, sender and quoted evidence included) and the reviews'
    outcomes; who on staff wrote or reviewed is not named."""
    return {
        **plain(letter, frozenset({"author_id", "version", "versions", "reviews"})),
        "by_staff": letter.author_id != owner_id,
        "versions": [
            {
                "number": v.number,
                "created_at": plain(v.created_at),
                "by_staff": v.author_id != owner_id,
                **plain(v.content),
            }
            for v in letter.versions
        ],
        "reviews": [plain(r, frozenset({"id", "reviewer_id"})) for r in letter.reviews],
    }


class ExportPreparer:
    """The worker's pass: prepares each pending export (one lease at a time, like the outbox) and queues the
    mail that says it is ready; failures retry with the outbox's policy, then the export is `failed`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        archive: PersonalArchive,
        store: SealedExports,
        clock: Clock,
        *,
        lifetime: timedelta,
        lease: timedelta,
        max_attempts: int,
    ) -> None:
        self.sessions = sessions
        self.archive = archive
        self.store = store
        self.clock = clock
        self.lifetime = lifetime
        self.lease = lease
        self.retry = outbox_policy(max_attempts)

    async def run_once(self, limit: int = 10) -> int:
        return await drain(
            self.sessions, EXPORTS, self._prepare, clock=self.clock, lease=self.lease, limit=limit
        )

    async def _prepare(self, export_id: uuid.UUID) -> bool:
        """Three short steps, each on its own connection and none held across another (a pool of one
        connection suffices): read what to prepare, collect and store it, then record it ready with its mail."""
        stored: StoredArchive | None = None
        try:
            async with self.sessions() as db:
                row = await db.get(PersonalExportRow, export_id)
                if row is None or row.state != ExportState.pending.value:
                    return False
                user_id = row.user_id
            data = await self.archive.build(user_id, export_id)
            stored = await self.store.put(export_id, data)
            async with self.sessions() as db:
                now = self.clock.now()
                t = PersonalExportRow
                # Only an export still pending: an erasure (or anything else) that changed it meanwhile wins.
                result = await db.execute(
                    update(t)
                    .where(col(t.id) == export_id, col(t.state) == ExportState.pending.value)
                    .values(
                        state=ExportState.ready.value,
                        ready_at=now,
                        expires_at=now + self.lifetime,
                        blob_key=stored.blob_key,
                        kek_id=stored.kek_id,
                        wrapped_key=stored.wrapped_key,
                        size=stored.size,
                        locked_until=None,
                    )
                )
                if affected(result) != 1:
                    await db.rollback()
                    await self.store.delete(stored.blob_key)
                    return False
                # The mail says only that an export is ready and to sign in: no content, no link to the file.
                await SqlOutbox(db, self.clock).put(EXPORT_READY_MAIL, {"user_id": str(user_id)})
                await db.commit()
                return True
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt of this export alone
            if stored is not None:
                await self.store.delete(stored.blob_key)
            await self._failed(export_id, type(exc).__name__)
            return False

    async def _failed(self, export_id: uuid.UUID, error: str) -> None:
        try:
            async with self.sessions() as db:
                row = await db.get(PersonalExportRow, export_id)
                if row is None or row.state != ExportState.pending.value:
                    return
                if record_failure(row, error, self.clock.now(), self.retry):
                    row.state = ExportState.failed.value
                log.warning("export preparation failed: %s (attempt %s)", error, row.attempts)
                await db.commit()
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the export is tried again
            log.error("export failure not recorded: %s", type(exc).__name__)
