"""In-memory fakes of the ports the consultation, answer/review and referral use cases run on, for unit tests
of their state machines without a database.

A unit of work works on a copy of the store and writes it back only on `commit`, so a use case that raises
leaves nothing behind, as with the SQL unit of work (infra/db/uow.py). Repositories hand out copies, never the
stored objects, so a use case sees its own changes only through what it saves."""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from domain.actors import Actor, Role
from domain.answers import AnswerDraft, AnswerVersion, DraftState, Review
from domain.consents import ConsentRecord
from domain.consultations import Consultation, Cursor, Message, MessageKind, QueueFilter, Transition
from domain.knowledge_model import Desk
from domain.policy import All, AssignedTo, AssignedToOrUnassigned, InReview, Nothing, OwnedBy, Visibility
from domain.referrals import Referral, ReferralEvent, ReferralState


def visible(c: Consultation, visibility: Visibility) -> bool:
    """The visibility rule as the SQL repository applies it (infra/db/consultations.py)."""
    match visibility:
        case All():
            return True
        case OwnedBy(user_id=owner):
            return c.owner_id == owner
        case AssignedToOrUnassigned(staff_id=staff):
            return c.assignee_id in (None, staff)
        case AssignedTo(staff_id=staff):
            return c.assignee_id == staff
        case InReview():
            return True  # the consultation behind a draft or letter under review (the draft is checked first)
        case Nothing():
            return False
    raise AssertionError(f"unknown visibility {visibility!r}")


T = TypeVar("T")


def keyset_page(
    items: Sequence[T],
    key: Callable[[T], tuple[datetime, uuid.UUID]],
    after: Cursor | None,
    limit: int | None,
) -> list[T]:
    """infra/db/paging.py keyset() in memory: oldest first, after the cursor's position, at most `limit`."""
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [x for x in ordered if key(x) > (after.created_at, after.id)]
    return (
        [copy.deepcopy(x) for x in ordered[:limit]]
        if limit is not None
        else [copy.deepcopy(x) for x in ordered]
    )


def draft_visible(d: AnswerDraft, c: Consultation | None, visibility: Visibility) -> bool:
    """infra/db/visibility.py answer_drafts: the case's visibility, or the review state for the advisor."""
    if isinstance(visibility, InReview):
        return d.state is DraftState.awaiting_review
    return c is not None and visible(c, visibility)


@dataclass
class AuditEntry:
    actor_id: uuid.UUID | None
    action: str
    object_type: str
    object_id: object
    detail: dict[str, Any] | None
    consultation_id: uuid.UUID | None


@dataclass
class OutboxEntry:
    kind: str
    payload: dict[str, Any]
    dedupe_key: str | None


@dataclass
class State:
    """Everything a fake unit of work reads and writes: one committed copy lives in the Store."""

    consultations: dict[uuid.UUID, Consultation] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    staff: dict[uuid.UUID, Role] = field(default_factory=dict)
    drafts: dict[uuid.UUID, AnswerDraft] = field(default_factory=dict)
    referrals: dict[uuid.UUID, Referral] = field(default_factory=dict)
    referral_events: list[ReferralEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    consents: list[ConsentRecord] = field(default_factory=list)


class FakeConsultations:
    """ConsultationRepository (domain/consultations.py), the parts the state machines use."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, c: Consultation) -> None:
        self.s.consultations[c.id] = copy.deepcopy(c)

    async def get(self, consultation_id: uuid.UUID, visibility: Visibility) -> Consultation | None:
        c = self.s.consultations.get(consultation_id)
        return copy.deepcopy(c) if c is not None and visible(c, visibility) else None

    async def many(self, ids: Sequence[uuid.UUID], visibility: Visibility) -> dict[uuid.UUID, Consultation]:
        found = {i: await self.get(i, visibility) for i in ids}
        return {i: c for i, c in found.items() if c is not None}

    async def update(self, c: Consultation, *, expected_version: int) -> bool:
        stored = self.s.consultations.get(c.id)
        if stored is None or stored.version != expected_version:
            return False
        self.s.consultations[c.id] = copy.deepcopy(c)
        return True

    async def page(
        self,
        visibility: Visibility,
        flt: QueueFilter,
        *,
        now: datetime,
        after: Cursor | None,
        limit: int,
        listing: bool = False,
    ) -> builtins.list[Consultation]:
        found = [copy.deepcopy(c) for c in self.s.consultations.values() if visible(c, visibility)]
        return sorted(found, key=lambda c: c.created_at)[:limit]

    async def lock_owner(self, owner_id: uuid.UUID) -> bool:
        return True  # one task at a time: nothing to lock; the fake keeps no accounts

    async def created_times_since(self, owner_id: uuid.UUID, since: datetime, newest: int) -> list[datetime]:
        times = sorted(
            c.created_at
            for c in self.s.consultations.values()
            if c.owner_id == owner_id and c.created_at > since
        )
        return times[-newest:] if newest > 0 else []

    async def mark_read(self, consultation_id: uuid.UUID, at: datetime) -> None:
        self.s.consultations[consultation_id].consulter_read_at = at

    async def add_transition(self, t: Transition) -> None:
        self.s.transitions.append(copy.deepcopy(t))

    async def transitions(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> builtins.list[Transition]:
        found = sorted(
            (copy.deepcopy(t) for t in self.s.transitions if t.consultation_id == consultation_id),
            key=lambda t: (t.at, t.id),
        )
        if after is not None:
            found = [t for t in found if (t.at, t.id) > (after.created_at, after.id)]
        return found[:limit]

    async def add_message(self, m: Message) -> None:
        self.s.messages.append(copy.deepcopy(m))

    def _visible(self, consultation_id: uuid.UUID, visibility: Visibility) -> bool:
        """infra/db/visibility.py of_consultation: a case's own rows are seen with the case."""
        c = self.s.consultations.get(consultation_id)
        return c is not None and visible(c, visibility)

    async def messages(
        self,
        consultation_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> builtins.list[Message]:
        if not self._visible(consultation_id, visibility):
            return []
        found = [copy.deepcopy(m) for m in self.s.messages if m.consultation_id == consultation_id]
        return [m for m in found if m.kind in kinds][:limit]

    async def get_message(
        self,
        consultation_id: uuid.UUID,
        message_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        visibility: Visibility,
    ) -> Message | None:
        found = [m for m in await self.messages(consultation_id, kinds, visibility) if m.id == message_id]
        return found[0] if found else None

    async def message_times_since(
        self, consultation_id: uuid.UUID, kind: MessageKind, since: datetime
    ) -> builtins.list[datetime]:
        return sorted(
            m.created_at
            for m in self.s.messages
            if m.consultation_id == consultation_id and m.kind is kind and m.created_at >= since
        )

    async def staff_role(self, user_id: uuid.UUID) -> Role | None:
        return self.s.staff.get(user_id)

    async def supervisor_ids(self) -> builtins.list[uuid.UUID]:
        return [i for i, role in self.s.staff.items() if role is Role.supervisor]


class FakeAnswers:
    """AnswerRepository (domain/answers.py)."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, draft: AnswerDraft) -> None:
        self.s.drafts[draft.id] = copy.deepcopy(draft)

    async def get(self, draft_id: uuid.UUID, visibility: Visibility) -> AnswerDraft | None:
        draft = self.s.drafts.get(draft_id)
        if draft is None or not draft_visible(
            draft, self.s.consultations.get(draft.consultation_id), visibility
        ):
            return None
        return copy.deepcopy(draft)

    async def for_consultation(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[AnswerDraft]:
        found = [d for d in self.s.drafts.values() if d.consultation_id == consultation_id]
        return keyset_page(found, lambda d: (d.created_at, d.id), after, limit)

    async def save_state(self, draft: AnswerDraft, expected_version: int) -> bool:
        stored = self.s.drafts.get(draft.id)
        if stored is None or stored.version != expected_version:
            return False
        stored.state, stored.updated_at, stored.version = draft.state, draft.updated_at, draft.version
        stored.review_reasons = list(draft.review_reasons)
        stored.submitted_at, stored.published_at = draft.submitted_at, draft.published_at
        stored.message_id = draft.message_id
        return True

    async def add_version(self, version: AnswerVersion) -> None:
        self.s.drafts[version.draft_id].versions.append(version)

    async def add_review(self, review: Review) -> None:
        self.s.drafts[review.draft_id].reviews.append(review)

    async def awaiting_review(
        self, visibility: Visibility, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[AnswerDraft]:
        found = [
            d
            for d in self.s.drafts.values()
            if d.state is DraftState.awaiting_review
            and draft_visible(d, self.s.consultations.get(d.consultation_id), visibility)
        ]
        return keyset_page(found, lambda d: (d.submitted_at or d.created_at, d.id), after, limit)


class FakeReferrals:
    """ReferralRepository (domain/referrals.py)."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, referral: Referral) -> None:
        self.s.referrals[referral.id] = copy.deepcopy(referral)

    def _visible(self, consultation_id: uuid.UUID, visibility: Visibility) -> bool:
        c = self.s.consultations.get(consultation_id)
        return c is not None and visible(c, visibility)

    async def get(
        self, consultation_id: uuid.UUID, referral_id: uuid.UUID, visibility: Visibility
    ) -> Referral | None:
        r = self.s.referrals.get(referral_id)
        if (
            r is None
            or r.consultation_id != consultation_id
            or not self._visible(consultation_id, visibility)
        ):
            return None
        return copy.deepcopy(r)

    async def for_consultation(
        self,
        consultation_id: uuid.UUID,
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> builtins.list[Referral]:
        if not self._visible(consultation_id, visibility):
            return []
        found = [r for r in self.s.referrals.values() if r.consultation_id == consultation_id]
        return keyset_page(found, lambda r: (r.created_at, r.id), after, limit)

    async def set_state(self, referral: Referral, expected: ReferralState) -> bool:
        stored = self.s.referrals.get(referral.id)
        if stored is None or stored.state is not expected:
            return False
        self.s.referrals[referral.id] = replace(referral)
        return True

    async def add_event(self, event: ReferralEvent) -> None:
        self.s.referral_events.append(event)

    async def events(self, referral_id: uuid.UUID, visibility: Visibility) -> builtins.list[ReferralEvent]:
        r = self.s.referrals.get(referral_id)
        if r is None or not self._visible(r.consultation_id, visibility):
            return []
        return [e for e in self.s.referral_events if e.referral_id == referral_id]


class FakeAudit:
    """AuditLog (domain/ports.py): records in the unit of work, committed with it."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def record(
        self,
        actor: Actor,
        action: str,
        object_type: str,
        object_id: object,
        detail: dict[str, Any] | None = None,
        *,
        consultation_id: uuid.UUID | None = None,
    ) -> None:
        self.s.audit.append(
            AuditEntry(actor.user_id, action, object_type, object_id, detail, consultation_id)
        )


class FakeOutbox:
    """Outbox (domain/ports.py): one entry per dedupe key."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def put(self, kind: str, payload: dict[str, Any], *, dedupe_key: str | None = None) -> None:
        if dedupe_key is not None and any(e.dedupe_key == dedupe_key for e in self.s.outbox):
            return
        self.s.outbox.append(OutboxEntry(kind, payload, dedupe_key))


class Store:
    """The committed state, and the unit-of-work factory over it (`store()` opens one)."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeConsents:
    """ConsentRepository (domain/consents.py): append and read, nothing else."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, *records: ConsentRecord) -> None:
        self.s.consents.extend(copy.deepcopy(r) for r in records)

    async def for_user(self, user_id: uuid.UUID) -> list[ConsentRecord]:
        return [copy.deepcopy(r) for r in self.s.consents if r.user_id == user_id]

    async def lock(self, user_id: uuid.UUID) -> None:
        """One unit of work at a time here: nothing to wait for."""


class FakeUnitOfWork:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.work = State()
        self.committed = False

    async def __aenter__(self) -> FakeUnitOfWork:
        self.work = copy.deepcopy(self.store.state)
        self.consultations = FakeConsultations(self.work)
        self.answers = FakeAnswers(self.work)
        self.referrals = FakeReferrals(self.work)
        self.audit = FakeAudit(self.work)
        self.outbox = FakeOutbox(self.work)
        self.consents = FakeConsents(self.work)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.work = State()  # uncommitted changes are gone, as after a rollback

    async def commit(self) -> None:
        self.store.state = copy.deepcopy(self.work)
        self.store.commits += 1

    async def rollback(self) -> None:
        self.work = copy.deepcopy(self.store.state)


class FakeDesks:
    """The desk directory the use cases ask (domain/desks.py DeskDirectory): reference desks, no versions."""

    def __init__(self, desks: Sequence[Desk]) -> None:
        self.desks = list(desks)

    async def current(self, uow: object = None) -> list[Any]:
        return [_Current(d) for d in self.desks]

    @staticmethod
    def pick(current: Sequence[Any], codes: Sequence[str]) -> list[Desk]:
        by_code = {v.desk.code: v.desk for v in current}
        return list(dict.fromkeys(by_code[c] for c in codes if c in by_code))

    async def resolve(self, codes: Sequence[str], *, uow: object = None) -> list[Desk]:
        return self.pick(await self.current(), codes)

    async def emergency(self, *, uow: object = None) -> list[Desk]:
        return [d for d in self.desks if d.emergency]


@dataclass(frozen=True)
class _Current:
    desk: Desk


class FakeManual:
    """ManualCatalogue (domain/answers.py): every section and template at version 1."""

    def __init__(self, sections: Sequence[str] = ("evidence",), templates: Sequence[str] = ()) -> None:
        self.known = {"section": set(sections), "template": set(templates)}

    async def current_versions(self, kind: str, codes: Sequence[str]) -> dict[str, int]:
        return {c: 1 for c in codes if c in self.known[kind]}


class NoFiles:
    """EvidenceFiles for use cases that never touch a file."""

    async def store(self, data: bytes) -> Any:
        raise AssertionError("no evidence files in these tests")

    async def open(self, storage_key: str) -> Any:
        raise AssertionError("no evidence files in these tests")

    async def delete(self, storage_key: str) -> None:
        raise AssertionError("no evidence files in these tests")
