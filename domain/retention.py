"""How long the centre keeps a case, and the legal hold that suspends it (issue 17 §2).

A closed or withdrawn consultation is kept for the period its retention rule gives (rules are reference data:
domain/knowledge/retention.yaml), then shredded: its data key is destroyed, so what was encrypted with it (what the
person wrote, the thread, the evidence texts and files) is unreadable in every copy, backups included. The rows'
coded columns (status, categories, dates, channel) stay, so statistics go on counting the case; the service
answers as for a case that does not exist. A supervisor may place a legal hold (a reason is required; placing
and lifting are on the case's chain of custody) that keeps the case until lifted."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from domain.actors import Actor, Client
from domain.consultations import ConsultationService, EvidenceFiles, Status
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.policy import SUPERVISORS, ensure_role
from domain.ports import CaseUnitOfWork, Clock, UnitOfWorkFactory

REASON_MAX = 500
# The worker acts for the centre: its records on the chain carry no person.
WORKER = Actor(client=Client.service, service_client_id="madoguchi-worker")
log = logging.getLogger("madoguchi.retention")


@dataclass(frozen=True, slots=True)
class RetentionRule:
    status: Status
    keep_days: int
    basis_ja: str
    source: str
    checked: date


@dataclass(frozen=True, slots=True)
class LegalHold:
    consultation_id: uuid.UUID
    reason: str
    placed_by: uuid.UUID
    placed_at: datetime


@dataclass(frozen=True, slots=True)
class Expired:
    """A case whose retention ran out (closed or withdrawn before `cutoff` for its status)."""

    consultation_id: uuid.UUID
    status: Status
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class RetentionReport:
    due: int  # cases whose retention ran out, not held, not yet shredded (at most `limit` looked at)
    held: int  # cases whose retention ran out but a legal hold keeps
    shredded: int  # 0 on a dry run
    consultation_ids: tuple[uuid.UUID, ...]  # the cases shredded (or, on a dry run, that would be)
    files_left: int = 0  # files of shredded cases the store refused to delete (sealed: unreadable anyway)


class RetentionRepository(Protocol):
    async def lock_case(self, consultation_id: uuid.UUID) -> None:
        """Hold the case's row until commit: placing a hold and shredding never interleave."""

    async def hold(self, consultation_id: uuid.UUID) -> LegalHold | None: ...

    async def place_hold(self, hold: LegalHold) -> None: ...

    async def lift_hold(self, consultation_id: uuid.UUID, lifted_by: uuid.UUID, at: datetime) -> bool: ...

    async def expired(self, cutoffs: dict[Status, datetime], *, limit: int) -> list[Expired]:
        """Closed/withdrawn before their status's cutoff, not shredded, not held; oldest first."""

    async def held_expired(self, cutoffs: dict[Status, datetime]) -> int: ...

    async def wipe_texts(self, consultation_id: uuid.UUID) -> list[str]:
        """Empty what people wrote in the case's rows; the storage keys of its files (deleted after commit)."""

    async def forget_file_hashes(self, consultation_id: uuid.UUID) -> None:
        """Drop the bare SHA-256 of the case's files from unchained trail records written before they were keyed."""

    async def owner_erased(self, consultation_id: uuid.UUID) -> bool:
        """Whether the case's owner had their account erased (a hold kept this case then)."""

    async def queue_file_deletes(self, keys: Sequence[str], now: datetime) -> None:
        """Record files to delete from the store, in the shredding transaction (so none is forgotten)."""

    async def pending_file_deletes(self, limit: int) -> list[str]:
        """Files still to delete, oldest first."""

    async def file_deletes_done(self, deleted: Sequence[str], refused: Sequence[str]) -> None:
        """Forget the deleted ones; count an attempt on the refused ones (asked again on a later pass)."""


async def shred(
    uow: RetentionUnitOfWork, consultation_id: uuid.UUID, now: datetime, detail: dict[str, Any]
) -> list[str]:
    """Destroy the case's key, empty its rows, queue its files for deletion (after commit: `delete_files`) and
    record it on the chain; the caller holds the case's lock and commits. Returns the storage keys queued."""
    await uow.case_keys.destroy(consultation_id)
    # Rows stored before encryption held their texts in the clear: emptied too, sealed or not.
    files = await uow.retention.wipe_texts(consultation_id)
    await uow.retention.forget_file_hashes(consultation_id)
    await uow.retention.queue_file_deletes(files, now)
    await uow.audit.record(WORKER, "consultation.shredded", "consultation", consultation_id, detail)
    return files


async def delete_files(
    uow: UnitOfWorkFactory[RetentionUnitOfWork],
    store: EvidenceFiles,
    limit: int = 200,
    only: Sequence[str] | None = None,
) -> tuple[int, int]:
    """Delete the queued files of shredded cases from the store: (deleted, left). One the store refuses stays
    queued and is asked again on the next pass (unreadable meanwhile: its case key is destroyed). `only`: just
    these (a request that shredded one case does not take on the worker's backlog)."""
    if only is not None:
        keys = list(only)
    else:
        async with uow() as u:
            keys = await u.retention.pending_file_deletes(limit)
    if not keys:
        return 0, 0
    deleted: list[str] = []
    refused: list[str] = []
    for key in keys:
        try:
            await store.delete(key)
        except Exception:  # noqa: BLE001 - one file the store refused must not stop the pass
            refused.append(key)
        else:
            deleted.append(key)
    async with uow() as u:
        await u.retention.file_deletes_done(deleted, refused)
        await u.commit()
    if refused:
        log.warning(
            "blob store refused to delete %d file(s) of shredded cases; retried on the next pass",
            len(refused),
        )
    return len(deleted), len(refused)


class RetentionUnitOfWork(CaseUnitOfWork, Protocol):
    @property
    def retention(self) -> RetentionRepository: ...


def rules_problems(rules: Sequence[RetentionRule]) -> list[str]:
    problems = []
    statuses = [r.status for r in rules]
    for status in {Status.closed, Status.withdrawn} - set(statuses):
        problems.append(f"retention: no rule for {status.value}")
    for status in {s for s in statuses if statuses.count(s) > 1}:
        problems.append(f"retention: two rules for {status.value}")
    for r in rules:
        if r.status not in (Status.closed, Status.withdrawn):
            problems.append(f"retention: {r.status.value} is not a final status")
        if r.keep_days < 30:
            problems.append(f"retention: {r.status.value} kept less than 30 days")
    return problems


class RetentionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[RetentionUnitOfWork],
        consultations: ConsultationService,
        clock: Clock,
        rules: Sequence[RetentionRule],
    ) -> None:
        problems = rules_problems(rules)
        if problems:
            raise ValueError("; ".join(problems))
        self.uow = uow
        self.consultations = consultations
        self.clock = clock
        self.rules = {r.status: r for r in rules}

    def cutoffs(self, now: datetime) -> dict[Status, datetime]:
        return {status: now - timedelta(days=r.keep_days) for status, r in self.rules.items()}

    # -- the legal hold (supervisors) -------------------------------------------------------------------

    async def hold(self, actor: Actor, consultation_id: uuid.UUID) -> LegalHold | None:
        ensure_role(actor, SUPERVISORS)
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            return await uow.retention.hold(c.id)

    async def place_hold(self, actor: Actor, consultation_id: uuid.UUID, reason: str) -> LegalHold:
        ensure_role(actor, SUPERVISORS)
        reason = reason.strip()
        if not reason:
            raise ValidationFailed("reason_required", field="reason")
        if len(reason) > REASON_MAX:
            raise ValidationFailed("field_too_long", field="reason")
        async with self.uow() as uow:
            # Locked before it is read: a retention pass that shreds it either finished (then it is not found)
            # or waits for this hold.
            await uow.retention.lock_case(consultation_id)
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            if await uow.retention.hold(c.id) is not None:
                raise Conflict("legal_hold_exists")
            hold = LegalHold(c.id, reason, actor.require_user_id(), self.clock.now())
            await uow.retention.place_hold(hold)
            # The reason stays in the hold (staff only); the chain records that a hold was placed, by whom.
            await uow.audit.record(actor, "legal_hold.placed", "consultation", c.id)
            await uow.commit()
        return hold

    async def lift_hold(self, actor: Actor, consultation_id: uuid.UUID) -> None:
        ensure_role(actor, SUPERVISORS)
        now = self.clock.now()
        async with self.uow() as uow:
            # As place_hold: locked before it is read, so lifting and a pass that shreds never interleave.
            await uow.retention.lock_case(consultation_id)
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            if not await uow.retention.lift_hold(c.id, actor.require_user_id(), now):
                raise NotFound("legal_hold_not_found")
            await uow.audit.record(actor, "legal_hold.lifted", "consultation", c.id)
            # A case kept only by the hold after its owner's account was erased is shredded with the lift, in
            # the same transaction: the erasure promised "until the hold is lifted, then deleted", and no pass
            # is waited for in which the case would be readable without a hold (README, erasure).
            queued: list[str] = []
            if await uow.retention.owner_erased(c.id):
                queued = await shred(uow, c.id, now, {"erasure": True, "hold_lifted": True})
            await uow.commit()
        if queued:
            await delete_files(self.uow, self.consultations.files, only=queued)

    # -- the worker's pass ------------------------------------------------------------------------------

    async def report(self, actor: Actor) -> RetentionReport:
        """What the next pass would shred (a dry run), for supervisors."""
        ensure_role(actor, SUPERVISORS)
        return await self.apply(dry_run=True)

    async def apply(self, *, dry_run: bool = False, limit: int = 200) -> RetentionReport:
        """Shred the cases whose retention ran out and no hold keeps, each in its own transaction with its
        record on the chain; a dry run says which they would be and changes nothing."""
        cutoffs = self.cutoffs(self.clock.now())
        async with self.uow() as uow:
            due = await uow.retention.expired(cutoffs, limit=limit)
            held = await uow.retention.held_expired(cutoffs)
        if dry_run:
            return RetentionReport(len(due), held, 0, tuple(e.consultation_id for e in due))
        shredded: list[uuid.UUID] = []
        for e in due:
            async with self.uow() as uow:
                # Locked, then looked at again inside the transaction that shreds: a hold placed meanwhile wins.
                await uow.retention.lock_case(e.consultation_id)
                if await uow.retention.hold(e.consultation_id) is not None:
                    continue
                await shred(
                    uow,
                    e.consultation_id,
                    self.clock.now(),
                    {"status": e.status.value, "kept_days": self.rules[e.status].keep_days},
                )
                await uow.commit()
            shredded.append(e.consultation_id)
        # Unreadable already; removed so the store holds nothing of the cases (those refused earlier too).
        _, files_left = await delete_files(self.uow, self.consultations.files)
        return RetentionReport(len(due), held, len(shredded), tuple(shredded), files_left=files_left)
