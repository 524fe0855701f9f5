"""A person's request to erase their account (issue 17 §3, APPI art. 35).

The person asks (after a fresh proof of identity); for GRACE_DAYS they may cancel. Then the worker shreds each of
their consultations (the data key destroyed, the texts wiped, as retention does), except a consultation under a
legal hold: that one is withdrawn and kept, readable by staff only, until the hold is lifted, and shredded with
the lift. The account is then anonymised: its e-mail replaced by a placeholder (the address is freed), no password,
no TOTP, no name, inactive; its sessions revoked and tokens invalidated; LINE unlinked. The consent ledger and the
audit chain keep their rows (they name only the account's id, which no longer leads to a person): the centre must
be able to show what was consented to and what was done (APPI art. 25/26 records). Statistics keep counting:
they never depended on what was written."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from domain.accounts import ensure_fresh_proof
from domain.actors import Actor
from domain.consultations import OPEN_STATUSES, Cursor, EvidenceFiles, Status, Transition
from domain.custody import Action
from domain.errors import Conflict, NotFound
from domain.policy import CONSULTERS, SUPERVISORS, ensure_role
from domain.ports import CaseUnitOfWork, Clock, UnitOfWorkFactory
from domain.retention import WORKER, RetentionRepository, delete_files, shred

# Two weeks: long enough for a person who asked in distress, or someone holding their phone, to be warned by the
# confirmation mail and cancel; short enough that the request is honoured "without delay" (APPI art. 35).
GRACE_DAYS = 14
GRACE_REASON = "取消のための猶予期間(14日)。確認メールで本人に知らせ、本人以外による申請や衝動的な申請を取り消せるようにする。"
KEPT = (
    "法的保全(リーガルホールド)中の相談は、保全が解除されるまで保管され、解除と同時に削除されます。",
    "同意の記録と監査記録は、個人を特定しない形(アカウントIDのみ)で保管されます。",
    "統計の件数(内容を含まない)は残ります。",
)


@dataclass(slots=True)
class ErasureRequest:
    id: uuid.UUID
    user_id: uuid.UUID
    requested_at: datetime
    due_at: datetime
    cancelled_at: datetime | None = None
    completed_at: datetime | None = None
    cases_kept: int = 0

    @property
    def created_at(self) -> datetime:  # for the keyset paging
        return self.requested_at

    @property
    def status(self) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        return "completed" if self.completed_at is not None else "pending"


@dataclass(frozen=True, slots=True)
class ErasureReport:
    completed: int
    consultations_shredded: int
    consultations_kept: int
    files_left: int = (
        0  # files of shredded cases the store refused to delete (sealed; retried on later passes)
    )


class ErasureRepository(Protocol):
    async def lock_user(self, user_id: uuid.UUID) -> None: ...

    async def open_for(self, user_id: uuid.UUID) -> ErasureRequest | None: ...

    async def latest_for(self, user_id: uuid.UUID) -> ErasureRequest | None: ...

    async def add(self, r: ErasureRequest) -> None: ...

    async def update(self, r: ErasureRequest) -> None: ...

    async def pending(self, after: Cursor | None, limit: int) -> list[ErasureRequest]: ...

    async def due(self, now: datetime, limit: int) -> list[ErasureRequest]: ...

    async def consultations_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Every consultation the person owns, not yet shredded."""

    async def status_of(self, consultation_id: uuid.UUID) -> Status | None:
        """The consultation's status (None when there is no such consultation)."""

    async def close_as_withdrawn(self, consultation_id: uuid.UUID, now: datetime) -> None:
        """Status withdrawn, closed now, its version moved on."""

    async def anonymise_account(self, user_id: uuid.UUID, now: datetime) -> tuple[str, str] | None:
        """Account unusable, e-mail freed, LINE unlinked, sessions and tokens ended; returns (e-mail, locale)."""


class ErasureUnitOfWork(CaseUnitOfWork, Protocol):
    @property
    def erasure(self) -> ErasureRepository: ...

    @property
    def retention(self) -> RetentionRepository: ...


class ErasureService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[ErasureUnitOfWork],
        clock: Clock,
        step_up_max_age: timedelta,
        seal: Callable[[str], str],
        files: EvidenceFiles,
        grace: timedelta = timedelta(days=GRACE_DAYS),
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.step_up_max_age = step_up_max_age
        self.seal = seal
        self.files = files
        self.grace = grace

    async def request(self, actor: Actor) -> ErasureRequest:
        ensure_role(actor, CONSULTERS)  # staff accounts are removed by an administrator
        now = self.clock.now()
        ensure_fresh_proof(actor, now, self.step_up_max_age)
        user_id = actor.require_user_id()
        async with self.uow() as uow:
            await uow.erasure.lock_user(user_id)
            if await uow.erasure.open_for(user_id) is not None:
                raise Conflict("erasure_already_requested")
            r = ErasureRequest(uuid.uuid4(), user_id, now, now + self.grace)
            await uow.erasure.add(r)
            await uow.outbox.put(
                "mail.erasure_requested",
                {"user_id": str(user_id), "due_date": r.due_at.date().isoformat()},
                dedupe_key=f"erasure-requested:{r.id}",
            )
            await uow.audit.record(actor, "erasure.requested", "user", user_id)
            await uow.commit()
        return r

    async def current(self, actor: Actor) -> ErasureRequest:
        ensure_role(actor, CONSULTERS)
        async with self.uow() as uow:
            r = await uow.erasure.latest_for(actor.require_user_id())
        if r is None:
            raise NotFound("erasure_request_not_found")
        return r

    async def cancel(self, actor: Actor) -> None:
        ensure_role(actor, CONSULTERS)
        user_id = actor.require_user_id()
        async with self.uow() as uow:
            await uow.erasure.lock_user(user_id)
            r = await uow.erasure.open_for(user_id)
            if r is None:
                raise NotFound("erasure_request_not_found")
            r.cancelled_at = self.clock.now()
            await uow.erasure.update(r)
            await uow.outbox.put(
                "mail.erasure_cancelled", {"user_id": str(user_id)}, dedupe_key=f"erasure-cancelled:{r.id}"
            )
            await uow.audit.record(actor, "erasure.cancelled", "user", user_id)
            await uow.commit()

    async def pending(self, actor: Actor, after: Cursor | None, limit: int) -> list[ErasureRequest]:
        ensure_role(actor, SUPERVISORS)
        async with self.uow() as uow:
            return await uow.erasure.pending(after, limit)

    # -- the worker's pass ------------------------------------------------------------------------------

    async def apply(self, limit: int = 50) -> ErasureReport:
        now = self.clock.now()
        async with self.uow() as uow:
            due = await uow.erasure.due(now, limit)
        completed = shredded = kept = 0
        for r in due:
            async with self.uow() as uow:
                # Lock order (infra/db/consultations.py): the account, then each case, then its custody head.
                await uow.erasure.lock_user(r.user_id)
                current = await uow.erasure.open_for(r.user_id)
                if current is None or current.id != r.id:  # cancelled meanwhile
                    continue
                held = 0
                for cid in await uow.erasure.consultations_of(r.user_id):
                    await uow.retention.lock_case(cid)
                    if await uow.retention.hold(cid) is not None:
                        # Kept until the hold is lifted, then shredded with the lift (RetentionService.lift_hold
                        # knows it by the completed request). Withdrawn now: nobody works on it for the person,
                        # and it leaves the open queues. The rule of the person's own withdrawal: only an open
                        # case is withdrawn.
                        previous = await uow.erasure.status_of(cid)
                        if previous is not None and previous in OPEN_STATUSES:
                            await uow.erasure.close_as_withdrawn(cid, now)
                            await uow.consultations.add_transition(
                                Transition(
                                    uuid.uuid4(), cid, r.user_id, previous, Status.withdrawn, now, "erased"
                                )
                            )
                            await uow.audit.record(
                                WORKER,
                                Action.consultation_changed,
                                "consultation",
                                cid,
                                {
                                    "status": Status.withdrawn.value,
                                    "from_status": previous.value,
                                    "reason": "erased",
                                },
                            )
                        held += 1
                        continue
                    await shred(uow, cid, now, {"erasure": True})
                    shredded += 1
                address = await uow.erasure.anonymise_account(r.user_id, now)
                current.completed_at = now
                current.cases_kept = held
                await uow.erasure.update(current)
                if address is not None:
                    # The address is gone from the account; the mail carries it sealed in the outbox only.
                    await uow.outbox.put(
                        "mail.erasure_completed",
                        {"to": self.seal(address[0]), "locale": address[1]},
                        dedupe_key=f"erasure-completed:{r.id}",
                    )
                await uow.audit.record(WORKER, "erasure.completed", "user", r.user_id, {"cases_kept": held})
                await uow.commit()
            completed += 1
            kept += held
        # The files of the cases shredded now, and any the store refused on an earlier pass.
        _, left = await delete_files(self.uow, self.files)
        return ErasureReport(completed, shredded, kept, left)
