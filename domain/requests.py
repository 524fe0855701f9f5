"""Requests: each thing a person (or the centre's advice) sends to someone about a consultation — a removal
through a platform's form, a removal letter, a disclosure request, a court filing, a reply to an inquiry, a
report — tracked with its status history and the clocks that run against it (domain/clocks.py).

The consulter creates and updates their own; the staff who work the case read them and advise; anyone else
is told nothing exists (404). The reply a person received is an evidence item of the same consultation,
linked to the request. A consultation that follows an earlier one of the same person (after its reopen
window) carries the earlier requests and clocks over: they are listed and may be updated from the new one."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from domain.actors import Actor
from domain.calendar import HolidayCalendar
from domain.clocks import (
    CaseClockInput,
    CaseFacts,
    ClockRules,
    ComputedClock,
    EvidenceFacts,
    RequestFacts,
    all_clocks,
    is_urgent,
    time_to_act,
)
from domain.consultations import OPEN_STATUSES, Consultation, ConsultationService, Cursor, Priority
from domain.desks import DeskDirectory
from domain.errors import (
    Forbidden,
    InvalidState,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from domain.knowledge_model import ChartNode, Desk, Knowledge
from domain.policy import (
    All,
    Nothing,
    Visibility,
    chain_visibility,
    consultation_visibility,
    ensure_consulter,
    ensure_may_work,
    ensure_staff,
    letter_visibility,
    request_visibility,
)
from domain.ports import Clock, RequestUnitOfWork, UnitOfWorkFactory


class RequestKind(enum.StrEnum):
    platform_form = "platform_form"  # removal through the platform's own form
    removal_letter = "removal_letter"  # 侵害情報の通知書兼送信防止措置依頼書
    search_delisting = "search_delisting"  # 検索結果の削除
    disclosure_request = "disclosure_request"  # 発信者情報開示請求 (to a provider)
    disclosure_order = "disclosure_order"  # 発信者情報開示命令 (court), with provision / preservation orders
    inquiry_reply = "inquiry_reply"  # 意見照会への回答
    hotline_report = "hotline_report"  # a report to a hotline (誹謗中傷ホットライン, IHC …)
    bureau_report = "bureau_report"  # 法務局 (Legal Affairs Bureau)


DISCLOSURE_KINDS = frozenset({RequestKind.disclosure_request, RequestKind.disclosure_order})


class RequestStatus(enum.StrEnum):
    drafted = "drafted"
    sent = "sent"
    acknowledged = "acknowledged"
    removed = "removed"
    partly_removed = "partly_removed"
    refused = "refused"
    no_answer = "no_answer"
    withdrawn = "withdrawn"


S = RequestStatus
_ANSWERS = frozenset({S.acknowledged, S.removed, S.partly_removed, S.refused, S.no_answer, S.withdrawn})

# The state machine: from each status, where a request may go. `removed`, `refused` and `withdrawn` are
# final (a refused request is followed by a new one, to the next desk); `no_answer` may still be answered late.
TRANSITIONS: Mapping[RequestStatus, frozenset[RequestStatus]] = {
    S.drafted: frozenset({S.sent, S.withdrawn}),
    S.sent: _ANSWERS,
    S.acknowledged: _ANSWERS - {S.acknowledged},
    S.no_answer: _ANSWERS - {S.no_answer},
    S.partly_removed: frozenset({S.removed, S.refused, S.withdrawn}),
    S.removed: frozenset(),
    S.refused: frozenset(),
    S.withdrawn: frozenset(),
}
# Waiting for the recipient: the response clock is running.
AWAITING = frozenset({S.sent, S.acknowledged})
# The request has gone out (for the evidence clock: a disclosure step was taken).
WENT_OUT = frozenset(set(RequestStatus) - {S.drafted, S.withdrawn})
# Where a next step is suggested.
STUCK = frozenset({S.refused, S.no_answer})


def may_move(current: RequestStatus, target: RequestStatus) -> bool:
    return target in TRANSITIONS[current]


def ensure_transition(current: RequestStatus, target: RequestStatus) -> None:
    if not may_move(current, target):
        raise InvalidState("invalid_transition", from_status=current.value, to_status=target.value)


class Inquiry(enum.StrEnum):
    removal = "removal"  # 送信防止措置に関する照会
    disclosure = "disclosure"  # 発信者情報開示に関する照会


@dataclass(slots=True)
class Target:
    """A platform service from the reference data, or a free host / provider name."""

    platform: str | None = None
    service: str | None = None
    name: str | None = None


@dataclass(slots=True)
class Request:
    id: uuid.UUID
    consultation_id: uuid.UUID
    created_by: uuid.UUID
    kind: RequestKind
    target: Target
    created_at: datetime
    updated_at: datetime
    status: RequestStatus = RequestStatus.drafted
    evidence_ids: list[uuid.UUID] = field(default_factory=list)
    reply_evidence_ids: list[uuid.UUID] = field(default_factory=list)
    channel: str | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None  # for a reply to an inquiry: when the inquiry arrived
    inquiry: Inquiry | None = None
    private_sexual_image: bool = False
    reference_number: str | None = None
    notes: str | None = None
    advice: str | None = None
    advice_by: uuid.UUID | None = None
    advice_at: datetime | None = None
    letter_id: uuid.UUID | None = None  # the letter it was sent as (issue 15 §3), of the same consultation
    version: int = 1


@dataclass(frozen=True, slots=True)
class RequestEvent:
    request_id: uuid.UUID
    actor_id: uuid.UUID
    from_status: RequestStatus | None
    to_status: RequestStatus
    at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True)
class NextStep:
    outcome: ChartNode
    desks: tuple[Desk, ...]


@dataclass(frozen=True, slots=True)
class RequestView:
    request: Request
    clocks: tuple[ComputedClock, ...]
    history: tuple[RequestEvent, ...] = ()
    next_steps: tuple[NextStep, ...] = ()
    overdue: bool = False


@dataclass(frozen=True, slots=True)
class StoredClock:
    id: uuid.UUID
    consultation_id: uuid.UUID
    clock: ComputedClock
    reminded_at: datetime | None = None
    overdue_notified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OverdueEntry:
    stored: StoredClock
    consultation: Consultation
    request: Request | None


@dataclass(frozen=True, slots=True)
class Reminder:
    stored: StoredClock
    owner_id: uuid.UUID
    stage: str  # before | overdue


@dataclass(frozen=True, slots=True)
class ClockFacts:
    offender_known_on: date | None = None
    damage_known_on: date | None = None


class RequestRepository(Protocol):
    async def add(self, r: Request) -> None: ...

    # The reads take the actor's visibility (domain/policy.py request_visibility) and filter by it
    # themselves. `through`: the case they are read through, whose visibility then covers the earlier cases
    # of the same person it carries over; without it, each row's own consultation must be visible.

    async def get(
        self,
        consultation_ids: Sequence[uuid.UUID],
        request_id: uuid.UUID,
        visibility: Visibility,
        *,
        through: uuid.UUID | None = None,
    ) -> Request | None: ...

    async def for_consultations(
        self,
        consultation_ids: Sequence[uuid.UUID],
        visibility: Visibility,
        *,
        through: uuid.UUID | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Request]:
        """Oldest first by (created_at, id); with `after`, those after that position; at most `limit`."""
        ...

    async def update(self, r: Request, *, expected_version: int) -> bool: ...

    async def add_event(self, e: RequestEvent) -> None: ...

    async def events(
        self, request_ids: Sequence[uuid.UUID], visibility: Visibility, *, through: uuid.UUID | None = None
    ) -> list[RequestEvent]: ...

    async def evidence_ids(self, consultation_id: uuid.UUID) -> set[uuid.UUID]: ...

    async def facts(self, consultation_id: uuid.UUID) -> ClockFacts: ...

    async def set_facts(self, consultation_id: uuid.UUID, facts: ClockFacts) -> None: ...

    async def clocks(
        self,
        consultation_ids: Sequence[uuid.UUID],
        visibility: Visibility,
        *,
        through: uuid.UUID | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[StoredClock]:
        """Soonest end first by (due_at, id); with `after`, those after that position; at most `limit`."""
        ...

    async def sync_clocks(self, consultation_id: uuid.UUID, clocks: Sequence[ComputedClock]) -> None:
        """Make the stored clocks of this consultation exactly these: a clock whose end did not move keeps
        the record of its reminders, so no reminder goes out twice."""

    async def overdue(
        self, visibility: Visibility, now: datetime, *, after: Cursor | None, limit: int
    ) -> list[tuple[StoredClock, Consultation]]: ...

    async def due_reminders(self, now: datetime, limit: int) -> list[Reminder]: ...

    async def mark_reminded(self, clock_id: uuid.UUID, stage: str, at: datetime) -> bool:
        """Claim the reminder: False when another worker already did."""

    async def earlier_chain(self, consultation_id: uuid.UUID) -> list[uuid.UUID]:
        """The consultations this one follows, nearest first (follows_id links)."""

    async def link(self, consultation_id: uuid.UUID, earlier_id: uuid.UUID) -> None: ...

    async def set_case_clock_effects(
        self, c: Consultation, time_to_act_at: datetime | None, *, bump: bool
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RequestDraft:
    kind: RequestKind
    target: Target
    evidence_ids: Sequence[uuid.UUID] = ()
    channel: str | None = None
    reference_number: str | None = None
    notes: str | None = None
    received_at: datetime | None = None
    inquiry: Inquiry | None = None
    private_sexual_image: bool = False
    letter_id: uuid.UUID | None = None


EDITABLE_FIELDS = frozenset(
    {
        "target",
        "evidence_ids",
        "channel",
        "reference_number",
        "notes",
        "received_at",
        "inquiry",
        "private_sexual_image",
        "letter_id",
        "sent_at",
    }
)


class CaseClocks:
    """A consultation's clocks, recomputed from the rules. It needs no consultation service, so the
    composition root builds it first and hands `recompute` to the consultation service, which calls it when
    evidence changes: both are built whole, nothing is patched in afterwards."""

    def __init__(
        self, rules: ClockRules, knowledge: Knowledge, holidays: HolidayCalendar, clock: Clock
    ) -> None:
        self.rules = rules
        self.knowledge = knowledge
        self.holidays = holidays
        self.clock = clock

    def designated_since(self, target: Target) -> date | None:
        """The target service's designation date; None when it is not a designated service or the service
        is not known (designation is per service: a platform alone says nothing)."""
        if target.platform is None or target.service is None:
            return None
        platform = self.knowledge.platform(target.platform)
        service = platform.service(target.service) if platform else None
        if service is None or not service.designated:
            return None
        return service.designated_since

    async def recompute(self, uow: RequestUnitOfWork, c: Consultation) -> list[ComputedClock]:
        """Every clock of this consultation from the rules, stored; the consultation's time to act, priority
        and (for an urgent case) first-answer due time follow from them. In the caller's unit of work.
        The clocks are the case's own bookkeeping, computed from all of it whoever's change caused this (the
        case may be an earlier one its owner linked, worked by someone else): nothing read here is shown."""
        facts = await uow.requests.facts(c.id)
        requests = await uow.requests.for_consultations([c.id], All())
        evidence = await uow.consultations.evidence(c.id, All())
        disclosed: set[uuid.UUID] = set()
        for r in requests:
            if r.kind in DISCLOSURE_KINDS and r.status in WENT_OUT:
                disclosed.update(r.evidence_ids)
        clocks = all_clocks(
            self.rules,
            _input(c, facts, evidence, requests, disclosed, self.designated_since),
            self.holidays,
        )
        await uow.requests.sync_clocks(c.id, clocks)
        act_by = time_to_act(self.rules, clocks)
        bump = False
        now = self.clock.now()
        if is_urgent(self.rules, clocks, now) and c.priority in (Priority.low, Priority.normal):
            c.priority, bump = Priority.high, True
        if act_by is not None and c.urgent and c.first_answered_at is None and act_by < c.first_answer_due_at:
            c.first_answer_due_at, bump = act_by, True
        if bump or act_by != c.time_to_act_at:
            c.time_to_act_at = act_by
            await uow.requests.set_case_clock_effects(c, act_by, bump=bump)
        return clocks


class RequestService:
    def __init__(
        self,
        consultations: ConsultationService,
        case_clocks: CaseClocks,
        desks: DeskDirectory,
    ) -> None:
        self.consultations = consultations
        self.case_clocks = case_clocks
        self.rules = case_clocks.rules
        self.desks = desks

    @property
    def uow(self) -> UnitOfWorkFactory[RequestUnitOfWork]:
        return self.consultations.uow

    @property
    def knowledge(self) -> Knowledge:
        return self.consultations.knowledge

    def _now(self) -> datetime:
        return self.consultations.clock.now()

    # -- checks -----------------------------------------------------------------------------------

    def _check_target(self, target: Target) -> Target:
        if target.platform is None:
            if target.service is not None:
                raise ValidationFailed("unknown_code", field="target.service")
            if not (target.name and target.name.strip()):
                raise ValidationFailed("target_required", field="target")
            return Target(name=target.name)
        platform = self.knowledge.platform(target.platform)
        if platform is None:
            raise ValidationFailed("unknown_code", field="target.platform")
        if target.service is not None and platform.service(target.service) is None:
            raise ValidationFailed("unknown_code", field="target.service")
        return Target(platform=platform.code, service=target.service, name=target.name or None)

    def designated_since(self, target: Target) -> date | None:
        return self.case_clocks.designated_since(target)

    async def _check_evidence(
        self,
        uow: RequestUnitOfWork,
        consultation_ids: Sequence[uuid.UUID],
        ids: Sequence[uuid.UUID],
    ) -> list[uuid.UUID]:
        """Only items of these consultations (the request's own, and the one it is addressed through when
        carried over): any other id — unknown, or another consultation's — gets the same answer, so nothing
        is learnt about what exists elsewhere."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        own: set[uuid.UUID] = set()
        for consultation_id in dict.fromkeys(consultation_ids):
            own |= await uow.requests.evidence_ids(consultation_id)
        if not set(wanted) <= own:
            raise ValidationFailed("unknown_evidence", field="evidence_ids")
        return wanted

    async def _check_letter(
        self,
        uow: RequestUnitOfWork,
        actor: Actor,
        consultation_ids: Sequence[uuid.UUID],
        letter_id: uuid.UUID | None,
    ) -> uuid.UUID | None:
        """A request may point to the letter it was sent as, only one built in these consultations; any other
        id gets the same answer as an unknown one."""
        if letter_id is None:
            return None
        letter = await uow.letters.get(letter_id, letter_visibility(actor))
        if letter is None or letter.consultation_id not in consultation_ids:
            raise ValidationFailed("unknown_letter", field="letter_id")
        return letter_id

    def _check_inquiry(
        self, kind: RequestKind, inquiry: Inquiry | None, received_at: datetime | None
    ) -> None:
        if kind is RequestKind.inquiry_reply:
            if inquiry is None:
                raise ValidationFailed("inquiry_required", field="inquiry")
        elif inquiry is not None or received_at is not None:
            raise ValidationFailed("only_for_inquiry_reply", field="inquiry")

    def _not_future(self, at: datetime | None, name: str) -> None:
        if at is not None and at > self._now():
            raise ValidationFailed("date_in_future", field=name)

    async def _case(
        self, uow: RequestUnitOfWork, actor: Actor, consultation_id: uuid.UUID
    ) -> tuple[Consultation, list[uuid.UUID]]:
        """The visible consultation and the chain of ids whose requests it carries (itself first)."""
        c = await self.consultations.load_visible(uow, actor, consultation_id)
        earlier = await uow.requests.earlier_chain(c.id)
        await self._record_history_read(uow, actor, c, earlier)
        return c, [c.id, *earlier]

    @staticmethod
    async def _record_history_read(
        uow: RequestUnitOfWork, actor: Actor, c: Consultation, earlier: list[uuid.UUID]
    ) -> None:
        """A staff member who sees a case sees the history its owner linked to it, earlier cases that may be
        assigned to someone else: each of those reads is on the earlier case's own trail, saying through which
        case it was read."""
        if actor.is_staff:
            for earlier_id in earlier:
                await uow.audit.record(
                    actor, "consultation.read", "consultation", earlier_id, {"via": str(c.id)}
                )

    @staticmethod
    def _ensure_owner(actor: Actor, c: Consultation) -> None:
        ensure_consulter(actor)
        if c.owner_id != actor.user_id:  # load_visible already hid others' cases; belt and braces
            raise NotFound("consultation_not_found")

    # -- clocks -----------------------------------------------------------------------------------

    async def recompute(self, uow: RequestUnitOfWork, c: Consultation) -> list[ComputedClock]:
        return await self.case_clocks.recompute(uow, c)

    async def clocks(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[StoredClock]:
        async with self.uow() as uow:
            c, chain = await self._case(uow, actor, consultation_id)
            return await uow.requests.clocks(
                chain, request_visibility(actor), through=c.id, after=after, limit=limit
            )

    async def facts(self, actor: Actor, consultation_id: uuid.UUID) -> ClockFacts:
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            return await uow.requests.facts(c.id)

    async def set_facts(self, actor: Actor, consultation_id: uuid.UUID, facts: ClockFacts) -> ClockFacts:
        """When the person learnt who the offender is, and of the damage: the starts of the complaint period
        and of the civil limitation period. The consulter or the staff working the case record them."""
        today = self._now().date()
        for name in ("offender_known_on", "damage_known_on"):
            day = getattr(facts, name)
            if day is not None and day > today:
                raise ValidationFailed("date_in_future", field=name)
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            if actor.is_staff:
                ensure_may_work(actor, c)
            else:
                self._ensure_owner(actor, c)
            await uow.requests.set_facts(c.id, facts)
            await self.recompute(uow, c)
            await uow.audit.record(actor, "consultation.clock_facts", "consultation", c.id)
            await uow.commit()
        return facts

    # -- requests ---------------------------------------------------------------------------------

    async def create(self, actor: Actor, consultation_id: uuid.UUID, draft: RequestDraft) -> RequestView:
        ensure_consulter(actor)
        target = self._check_target(draft.target)
        self._check_inquiry(draft.kind, draft.inquiry, draft.received_at)
        self._not_future(draft.received_at, "received_at")
        now = self._now()
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            self._ensure_owner(actor, c)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            r = Request(
                id=uuid.uuid4(),
                consultation_id=c.id,
                created_by=actor.require_user_id(),
                kind=draft.kind,
                target=target,
                created_at=now,
                updated_at=now,
                evidence_ids=await self._check_evidence(uow, [c.id], draft.evidence_ids),
                channel=draft.channel or None,
                reference_number=draft.reference_number or None,
                notes=draft.notes or None,
                received_at=draft.received_at,
                inquiry=draft.inquiry,
                private_sexual_image=draft.private_sexual_image,
                letter_id=await self._check_letter(uow, actor, [c.id], draft.letter_id),
            )
            await uow.requests.add(r)
            await uow.requests.add_event(RequestEvent(r.id, r.created_by, None, r.status, now))
            await self.recompute(uow, c)
            view = await self._view(uow, actor, r, c.id, now)
            await uow.commit()
        return view

    async def list_for(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[RequestView]:
        """The requests of the case and of the earlier ones it follows, oldest first, a page at a time."""
        now = self._now()
        async with self.uow() as uow:
            c, chain = await self._case(uow, actor, consultation_id)
            visibility = request_visibility(actor)
            requests = await uow.requests.for_consultations(
                chain, visibility, through=c.id, after=after, limit=limit
            )
            stored = await uow.requests.clocks(chain, visibility, through=c.id)
            by_subject: dict[uuid.UUID, list[ComputedClock]] = {}
            for s in stored:
                if s.clock.subject == "request":
                    by_subject.setdefault(s.clock.subject_id, []).append(s.clock)
            views = []
            for r in requests:
                clocks = tuple(by_subject.get(r.id, ()))
                views.append(await self._shape(uow, r, clocks, (), now))
        return views

    async def get(self, actor: Actor, consultation_id: uuid.UUID, request_id: uuid.UUID) -> RequestView:
        now = self._now()
        async with self.uow() as uow:
            c, chain = await self._case(uow, actor, consultation_id)
            r = await uow.requests.get(chain, request_id, request_visibility(actor), through=c.id)
            if r is None:
                raise NotFound("request_not_found")
            return await self._view(uow, actor, r, c.id, now)

    async def _view(
        self, uow: RequestUnitOfWork, actor: Actor, r: Request, through: uuid.UUID, now: datetime
    ) -> RequestView:
        """The request with its clocks and history, read through case `through` (the one on the route)."""
        visibility = request_visibility(actor)
        stored = await uow.requests.clocks([r.consultation_id], visibility, through=through)
        clocks = tuple(s.clock for s in stored if s.clock.subject == "request" and s.clock.subject_id == r.id)
        history = tuple(await uow.requests.events([r.id], visibility, through=through))
        return await self._shape(uow, r, clocks, history, now)

    async def _shape(
        self,
        uow: RequestUnitOfWork,
        r: Request,
        clocks: tuple[ComputedClock, ...],
        history: tuple[RequestEvent, ...],
        now: datetime,
    ) -> RequestView:
        overdue = any(not k.settled and k.due_at <= now for k in clocks)
        steps: tuple[NextStep, ...] = ()
        if r.status in STUCK or overdue:
            steps = await self.next_steps(r, clocks, uow=uow)
        return RequestView(r, clocks, history, steps, overdue)

    async def next_steps(
        self,
        r: Request,
        clocks: Sequence[ComputedClock],
        *,
        uow: RequestUnitOfWork | None = None,
    ) -> tuple[NextStep, ...]:
        """From the chart: the outcomes the request's clock rules name (refused or unanswered → the Legal
        Affairs Bureau and 誹謗中傷ホットライン through 削除の代行, a lawyer), with their desks' current
        details. A request with no clock rule falls back to the removal-request rule's steps."""
        codes: list[str] = []
        for k in clocks:
            rule = self.rules.rule(k.rule)
            if rule is not None:
                codes += rule.next_steps
        if not codes:
            fallback = self.rules.rule("designated_platform_response")
            codes = list(fallback.next_steps) if fallback else []
        out = []
        for node_id in dict.fromkeys(codes):
            node = self.knowledge.chart.node(node_id)
            if node is None or not node.is_outcome:
                continue
            # The desks through the caller's unit of work: one connection per request.
            out.append(NextStep(node, tuple(await self.desks.resolve(list(node.desks), uow=uow))))
        return tuple(out)

    async def _load_for_owner(
        self, uow: RequestUnitOfWork, actor: Actor, consultation_id: uuid.UUID, request_id: uuid.UUID
    ) -> tuple[Consultation, Request]:
        ensure_consulter(actor)
        c, chain = await self._case(uow, actor, consultation_id)
        self._ensure_owner(actor, c)
        r = await uow.requests.get(chain, request_id, request_visibility(actor), through=c.id)
        if r is None:
            raise NotFound("request_not_found")
        if c.status not in OPEN_STATUSES:
            raise InvalidState("consultation_not_open")
        return c, r

    async def _save(self, uow: RequestUnitOfWork, r: Request, expected: int, now: datetime) -> None:
        r.updated_at, r.version = now, expected + 1
        if not await uow.requests.update(r, expected_version=expected):
            raise PreconditionFailed("stale_version")

    async def _recompute_owner_case(
        self, uow: RequestUnitOfWork, actor: Actor, r: Request, c: Consultation
    ) -> None:
        """The clocks of the consultation the request belongs to (maybe an earlier one of the chain)."""
        home = (
            c
            if r.consultation_id == c.id
            else await uow.consultations.get(r.consultation_id, chain_visibility(c))
        )
        assert home is not None, "a request's consultation exists (foreign key)"
        await self.recompute(uow, home)

    async def update(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        request_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None,
    ) -> RequestView:
        if set(changes) - EDITABLE_FIELDS:
            raise ValidationFailed(
                "field_not_editable", field=",".join(sorted(set(changes) - EDITABLE_FIELDS))
            )
        now = self._now()
        async with self.uow() as uow:
            c, r = await self._load_for_owner(uow, actor, consultation_id, request_id)
            expected = _check_version(r, expected_version)
            if "target" in changes:
                r.target = self._check_target(changes["target"])
            if "evidence_ids" in changes:
                r.evidence_ids = await self._check_evidence(
                    uow, [r.consultation_id, c.id], changes["evidence_ids"] or []
                )
            for name in ("channel", "reference_number", "notes"):
                if name in changes:
                    setattr(r, name, changes[name] or None)
            if "inquiry" in changes:
                r.inquiry = Inquiry(changes["inquiry"]) if changes["inquiry"] else None
            if "received_at" in changes:
                self._not_future(changes["received_at"], "received_at")
                r.received_at = changes["received_at"]
            if "private_sexual_image" in changes:
                r.private_sexual_image = bool(changes["private_sexual_image"])
            if "letter_id" in changes:
                r.letter_id = await self._check_letter(
                    uow, actor, [r.consultation_id, c.id], changes["letter_id"]
                )
            if "sent_at" in changes:
                if r.status is RequestStatus.drafted:
                    raise ValidationFailed("not_sent_yet", field="sent_at")
                if changes["sent_at"] is None:
                    raise ValidationFailed("sent_at_required", field="sent_at")
                self._not_future(changes["sent_at"], "sent_at")
                r.sent_at = changes["sent_at"]
            self._check_inquiry(r.kind, r.inquiry, r.received_at)
            await self._save(uow, r, expected, now)
            await self._recompute_owner_case(uow, actor, r, c)
            view = await self._view(uow, actor, r, c.id, now)
            await uow.commit()
        return view

    async def move(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        request_id: uuid.UUID,
        target: RequestStatus,
        *,
        at: datetime | None = None,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> RequestView:
        """A status change, kept in the history. `at`: when it happened (a request sent yesterday), never in
        the future; the date sent is what the response clock starts from."""
        now = self._now()
        self._not_future(at, "at")
        async with self.uow() as uow:
            c, r = await self._load_for_owner(uow, actor, consultation_id, request_id)
            expected = r.version if expected_version is None else _check_version(r, expected_version)
            ensure_transition(r.status, target)
            previous = r.status
            r.status = target
            if target is RequestStatus.sent:
                r.sent_at = at or now
            await self._save(uow, r, expected, now)
            await uow.requests.add_event(
                RequestEvent(r.id, actor.require_user_id(), previous, target, at or now, note or None)
            )
            await self._recompute_owner_case(uow, actor, r, c)
            view = await self._view(uow, actor, r, c.id, now)
            await uow.commit()
        return view

    async def advise(
        self, actor: Actor, consultation_id: uuid.UUID, request_id: uuid.UUID, note: str
    ) -> RequestView:
        """The staff working the case leave advice on a request; the consulter reads it with the request."""
        if not note.strip():
            raise ValidationFailed("empty_message", field="note")
        now = self._now()
        async with self.uow() as uow:
            c, chain = await self._case(uow, actor, consultation_id)
            ensure_may_work(actor, c)
            r = await uow.requests.get(chain, request_id, request_visibility(actor), through=c.id)
            if r is None:
                raise NotFound("request_not_found")
            r.advice, r.advice_by, r.advice_at = note, actor.require_user_id(), now
            await self._save(uow, r, r.version, now)
            await uow.audit.record(actor, "request.advised", "request", r.id)
            view = await self._view(uow, actor, r, c.id, now)
            await uow.commit()
        return view

    async def attach_reply(
        self, actor: Actor, consultation_id: uuid.UUID, request_id: uuid.UUID, evidence_id: uuid.UUID
    ) -> RequestView:
        """The reply the person received, kept as an evidence item (uploaded through the evidence routes) of
        the request's own consultation or, for a carried-over request, of the newer one, linked to it."""
        now = self._now()
        async with self.uow() as uow:
            c, r = await self._load_for_owner(uow, actor, consultation_id, request_id)
            ids = await self._check_evidence(uow, [r.consultation_id, c.id], [evidence_id])
            if ids[0] not in r.reply_evidence_ids:
                r.reply_evidence_ids = [*r.reply_evidence_ids, ids[0]]
            await self._save(uow, r, r.version, now)
            view = await self._view(uow, actor, r, c.id, now)
            await uow.commit()
        return view

    # -- continuity -------------------------------------------------------------------------------

    async def link(
        self, actor: Actor, consultation_id: uuid.UUID, earlier_id: uuid.UUID
    ) -> list[Consultation]:
        """A person who comes back after the reopen window links the new consultation to an earlier one of
        their own; its requests and clocks carry over. Another person's consultation is simply not found."""
        ensure_consulter(actor)
        if earlier_id == consultation_id:
            raise ValidationFailed("cannot_follow_itself", field="earlier_id")
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            self._ensure_owner(actor, c)
            earlier = await uow.consultations.get(earlier_id, consultation_visibility(actor))
            if earlier is None:
                raise NotFound("consultation_not_found")
            if c.follows_id is not None:
                raise InvalidState("already_linked")
            if earlier.status in OPEN_STATUSES or earlier.created_at >= c.created_at:
                raise InvalidState("earlier_not_closed")
            if c.id in await uow.requests.earlier_chain(earlier.id):
                raise InvalidState("already_linked")
            await uow.requests.link(c.id, earlier.id)
            c.follows_id = earlier.id
            await uow.audit.record(
                actor, "consultation.linked", "consultation", c.id, {"earlier": str(earlier.id)}
            )
            chain = await self._chain(uow, actor, c)
            await uow.commit()
        return chain

    async def _chain(self, uow: RequestUnitOfWork, actor: Actor, c: Consultation) -> list[Consultation]:
        ids = await uow.requests.earlier_chain(c.id)
        await self._record_history_read(uow, actor, c, ids)
        found = await uow.consultations.many(ids, chain_visibility(c))
        return [found[i] for i in ids if i in found]

    async def related(self, actor: Actor, consultation_id: uuid.UUID) -> list[Consultation]:
        """The earlier consultations this one follows, nearest first: the owner sees their own, and the staff
        who may see this case see its history (the link was made by the owner, between their own cases)."""
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            return await self._chain(uow, actor, c)

    # -- the overdue view and the reminders -----------------------------------------------------------

    async def overdue(self, actor: Actor, *, after: Cursor | None, limit: int) -> list[OverdueEntry]:
        """Clocks that ran out with nothing done, oldest end first, within the cases the staff member may see."""
        ensure_staff(actor)
        visibility = consultation_visibility(actor)
        if isinstance(visibility, Nothing):
            raise Forbidden("role_not_allowed")
        now = self._now()
        async with self.uow() as uow:
            found = await uow.requests.overdue(visibility, now, after=after, limit=limit)
            # The page's requests in one query, not one per entry.
            cases = list(dict.fromkeys(s.consultation_id for s, _ in found if s.clock.subject == "request"))
            requests = (
                {r.id: r for r in await uow.requests.for_consultations(cases, visibility)} if cases else {}
            )
        return [
            OverdueEntry(s, c, requests.get(s.clock.subject_id) if s.clock.subject == "request" else None)
            for s, c in found
        ]

    async def send_reminders(self, limit: int = 100) -> int:
        """The worker's pass: one mail and one LINE notice per clock and stage (before it runs out, and when
        it has), claimed in the clock's own row and deduplicated in the outbox, so no run sends twice. The
        notices say only that a date is near: no case content."""
        now = self._now()
        sent = 0
        async with self.uow() as uow:
            due = await uow.requests.due_reminders(now, limit)
            for reminder in due:
                s = reminder.stored
                if not await uow.requests.mark_reminded(s.id, reminder.stage, now):
                    continue
                payload = {
                    "user_id": str(reminder.owner_id),
                    "consultation_id": str(s.consultation_id),
                    "stage": reminder.stage,
                }
                key = f"clock:{s.id}:{reminder.stage}:{s.clock.due_at.isoformat()}"
                kind = "clock_reminder" if reminder.stage == "before" else "clock_overdue"
                await uow.outbox.put(f"mail.{kind}", payload, dedupe_key=f"mail-{key}")
                await uow.outbox.put(f"line.{kind}", payload, dedupe_key=f"line-{key}")
                sent += 1
            await uow.commit()
        return sent


def _check_version(r: Request, expected: int | None) -> int:
    if expected is None:
        raise PreconditionRequired("if_match_required")
    if expected != r.version:
        raise PreconditionFailed("stale_version")
    return expected


def _input(
    c: Consultation,
    facts: ClockFacts,
    evidence: Sequence[Any],
    requests: Sequence[Request],
    disclosed: set[uuid.UUID],
    designated_since: Any,
) -> CaseClockInput:
    return CaseClockInput(
        case=CaseFacts(c.id, frozenset(c.categories), facts.offender_known_on, facts.damage_known_on),
        evidence=[EvidenceFacts(e.id, e.posted_at, e.id in disclosed) for e in evidence],
        requests=[
            RequestFacts(
                id=r.id,
                kind=r.kind.value,
                sent_at=r.sent_at,
                received_at=r.received_at,
                designated_since=designated_since(r.target),
                inquiry=r.inquiry.value if r.inquiry else None,
                private_sexual_image=r.private_sexual_image,
                # The response clock waits for the recipient; a reply to an inquiry waits for the person.
                pending=(r.status is RequestStatus.drafted)
                if r.kind is RequestKind.inquiry_reply
                else (r.status in AWAITING),
            )
            for r in requests
        ],
    )


__all__ = [
    "RequestKind",
    "RequestStatus",
    "TRANSITIONS",
    "Request",
    "RequestService",
]
