"""Repository of requests, their history and evidence links, the stored clocks and the clock facts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.case_keys import CaseKey
from domain.clocks import ComputedClock
from domain.consultations import Consultation, Cursor
from domain.policy import Visibility
from domain.ports import Clock
from domain.requests import (
    ClockFacts,
    Inquiry,
    Reminder,
    Request,
    RequestEvent,
    RequestKind,
    RequestStatus,
    StoredClock,
    Target,
)
from infra.crypto import opened_text, seal_text
from infra.db import visibility as visible
from infra.db.case_keys import shredded
from infra.db.consultations import SqlConsultations
from infra.db.engine import affected
from infra.db.paging import keyset
from infra.db.tables import ConsultationRow, EvidenceRow
from infra.db.tables_requests import (
    CaseClockRow,
    ConsultationFactRow,
    RequestEventRow,
    RequestEvidenceRow,
    RequestRow,
)

R = RequestRow
K = CaseClockRow
CONCERNS, REPLY = "concerns", "reply"
# How far back the chain of earlier consultations is followed: a person's history, not a graph walk.
MAX_CHAIN = 20


# What people and staff wrote about a request is sealed with the case's key (issue 17 §1), and so are the
# reference number (the person types it and it names their case at the platform) and the target's name (a
# site or person the person typed; nothing filters or searches on it).
REQUEST_TEXTS = ("notes", "advice", "reference_number", "target_name")
EVENT_NOTE = "request_event.note"


def _request(row: RequestRow, links: Sequence[RequestEvidenceRow], key: CaseKey | None) -> Request:
    texts = {name: opened_text(key, getattr(row, name), f"request.{name}", row.id) for name in REQUEST_TEXTS}
    mine = sorted((x for x in links if x.request_id == row.id), key=lambda x: x.position)
    return Request(
        id=row.id,
        consultation_id=row.consultation_id,
        created_by=row.created_by,
        kind=RequestKind(row.kind),
        target=Target(row.target_platform, row.target_service, texts["target_name"]),
        created_at=row.created_at,
        updated_at=row.updated_at,
        status=RequestStatus(row.status),
        evidence_ids=[x.evidence_id for x in mine if x.role == CONCERNS],
        reply_evidence_ids=[x.evidence_id for x in mine if x.role == REPLY],
        channel=row.channel,
        sent_at=row.sent_at,
        received_at=row.received_at,
        inquiry=Inquiry(row.inquiry) if row.inquiry else None,
        private_sexual_image=row.private_sexual_image,
        reference_number=texts["reference_number"],
        notes=texts["notes"],
        advice=texts["advice"],
        advice_by=row.advice_by,
        advice_at=row.advice_at,
        letter_id=row.letter_id,
        version=row.version,
    )


def _values(r: Request, key: CaseKey) -> dict[str, Any]:
    return {
        "consultation_id": r.consultation_id,
        "created_by": r.created_by,
        "kind": r.kind.value,
        "status": r.status.value,
        "target_platform": r.target.platform,
        "target_service": r.target.service,
        "channel": r.channel,
        "sent_at": r.sent_at,
        "received_at": r.received_at,
        "inquiry": r.inquiry.value if r.inquiry else None,
        "private_sexual_image": r.private_sexual_image,
        **{
            name: seal_text(key, getattr(r, name), field=f"request.{name}", row_id=r.id)
            for name in REQUEST_TEXTS
            if name != "target_name"
        },
        "target_name": seal_text(key, r.target.name, field="request.target_name", row_id=r.id),
        "advice_by": r.advice_by,
        "advice_at": r.advice_at,
        "letter_id": r.letter_id,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "version": r.version,
    }


def _stored(row: CaseClockRow) -> StoredClock:
    return StoredClock(
        id=row.id,
        consultation_id=row.consultation_id,
        clock=ComputedClock(
            rule=row.rule,
            subject=row.subject,
            subject_id=row.subject_id,
            starts_at=row.starts_at,
            due_at=row.due_at,
            remind_at=row.remind_at,
            settled=row.settled,
            variant=row.variant,
        ),
        reminded_at=row.reminded_at,
        overdue_notified_at=row.overdue_notified_at,
    )


def _seen(visibility: Visibility, column: uuid.UUID, through: uuid.UUID | None) -> Any:
    """Rows read through case `through` (itself and the earlier cases it carries over), or, without one,
    rows whose own consultation is visible."""
    if through is not None:
        return visible.through_case(visibility, column, through)
    return visible.through_consultation(visibility, column)


class SqlRequests:
    def __init__(self, db: AsyncSession, clock: Clock, consultations: SqlConsultations) -> None:
        self.db = db
        self.clock = clock
        self.consultations = consultations

    async def _links(self, request_ids: Sequence[uuid.UUID]) -> list[RequestEvidenceRow]:
        if not request_ids:
            return []
        rows = await self.db.execute(
            select(RequestEvidenceRow).where(col(RequestEvidenceRow.request_id).in_(list(request_ids)))
        )
        return list(rows.scalars())

    async def _set_links(self, r: Request) -> None:
        await self.db.execute(delete(RequestEvidenceRow).where(col(RequestEvidenceRow.request_id) == r.id))
        for role, ids in ((CONCERNS, r.evidence_ids), (REPLY, r.reply_evidence_ids)):
            for position, evidence_id in enumerate(ids):
                self.db.add(
                    RequestEvidenceRow(request_id=r.id, evidence_id=evidence_id, role=role, position=position)
                )
        await self.db.flush()

    async def add(self, r: Request) -> None:
        self.db.add(
            RequestRow(
                id=r.id, **_values(r, await self.consultations.keys.for_consultation(r.consultation_id))
            )
        )
        await self.db.flush()
        await self._set_links(r)

    async def get(
        self,
        consultation_ids: Sequence[uuid.UUID],
        request_id: uuid.UUID,
        visibility: Visibility,
        *,
        through: uuid.UUID | None = None,
    ) -> Request | None:
        row = (
            await self.db.execute(
                select(R).where(
                    col(R.id) == request_id,
                    col(R.consultation_id).in_(list(consultation_ids)),
                    _seen(visibility, R.consultation_id, through),
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return None
        keys = await self.consultations.keys.of_many([row.consultation_id])
        return _request(row, await self._links([row.id]), keys.get(row.consultation_id))

    async def for_consultations(
        self,
        consultation_ids: Sequence[uuid.UUID],
        visibility: Visibility,
        *,
        through: uuid.UUID | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Request]:
        query = select(R).where(
            col(R.consultation_id).in_(list(consultation_ids)),
            ~shredded(col(R.consultation_id)),
            _seen(visibility, R.consultation_id, through),
        )
        query = keyset(query, col(R.created_at), col(R.id), after, limit)
        rows = list((await self.db.execute(query)).scalars())
        links = await self._links([r.id for r in rows])
        keys = await self.consultations.keys.of_many([r.consultation_id for r in rows])
        return [_request(r, links, keys.get(r.consultation_id)) for r in rows]

    async def update(self, r: Request, *, expected_version: int) -> bool:
        values = _values(r, await self.consultations.keys.for_consultation(r.consultation_id))
        result = await self.db.execute(
            update(R).where(col(R.id) == r.id, col(R.version) == expected_version).values(**values)
        )
        if affected(result) != 1:
            return False
        await self._set_links(r)
        return True

    async def add_event(self, e: RequestEvent) -> None:
        request = await self.db.get(R, e.request_id)  # in this unit of work already: no query
        assert request is not None, "an event is of a request added or read before"
        key = await self.consultations.keys.for_consultation(request.consultation_id)
        event_id = uuid.uuid4()
        self.db.add(
            RequestEventRow(
                id=event_id,
                request_id=e.request_id,
                actor_id=e.actor_id,
                from_status=e.from_status.value if e.from_status else None,
                to_status=e.to_status.value,
                at=e.at,
                recorded_at=self.clock.now(),
                note=seal_text(key, e.note, field=EVENT_NOTE, row_id=event_id),
            )
        )
        await self.db.flush()

    async def events(
        self, request_ids: Sequence[uuid.UUID], visibility: Visibility, *, through: uuid.UUID | None = None
    ) -> list[RequestEvent]:
        if not request_ids:
            return []
        # Each event comes with its request's case, whose key opens the note (one statement for the keys).
        rows = (
            await self.db.execute(
                select(RequestEventRow, col(R.consultation_id))
                .join(R, col(R.id) == col(RequestEventRow.request_id))
                .where(
                    col(RequestEventRow.request_id).in_(list(request_ids)),
                    _seen(visibility, R.consultation_id, through),
                )
                .order_by(col(RequestEventRow.recorded_at), col(RequestEventRow.id))
            )
        ).all()
        keys = await self.consultations.keys.of_many([cid for _, cid in rows])
        return [
            RequestEvent(
                x.request_id,
                x.actor_id,
                RequestStatus(x.from_status) if x.from_status else None,
                RequestStatus(x.to_status),
                x.at,
                opened_text(keys.get(cid), x.note, EVENT_NOTE, x.id),
            )
            for x, cid in rows
        ]

    async def evidence_ids(self, consultation_id: uuid.UUID) -> set[uuid.UUID]:
        rows = await self.db.execute(
            select(col(EvidenceRow.id)).where(col(EvidenceRow.consultation_id) == consultation_id)
        )
        return set(rows.scalars())

    # -- facts ------------------------------------------------------------------------------------

    async def facts(self, consultation_id: uuid.UUID) -> ClockFacts:
        row = await self.db.get(ConsultationFactRow, consultation_id)
        return ClockFacts(row.offender_known_on, row.damage_known_on) if row else ClockFacts()

    async def set_facts(self, consultation_id: uuid.UUID, facts: ClockFacts) -> None:
        row = await self.db.get(ConsultationFactRow, consultation_id)
        if row is None:
            row = ConsultationFactRow(consultation_id=consultation_id)
            self.db.add(row)
        row.offender_known_on, row.damage_known_on = facts.offender_known_on, facts.damage_known_on
        await self.db.flush()

    # -- clocks -----------------------------------------------------------------------------------

    async def clocks(
        self,
        consultation_ids: Sequence[uuid.UUID],
        visibility: Visibility,
        *,
        through: uuid.UUID | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[StoredClock]:
        query = select(K).where(
            col(K.consultation_id).in_(list(consultation_ids)), _seen(visibility, K.consultation_id, through)
        )
        rows = await self.db.execute(keyset(query, col(K.due_at), col(K.id), after, limit))
        return [_stored(r) for r in rows.scalars()]

    async def sync_clocks(self, consultation_id: uuid.UUID, clocks: Sequence[ComputedClock]) -> None:
        rows = {
            (r.rule, r.subject, r.subject_id): r
            for r in (
                await self.db.execute(select(K).where(col(K.consultation_id) == consultation_id))
            ).scalars()
        }
        wanted = {k.key(): k for k in clocks}
        for key, stale in rows.items():
            if key not in wanted:
                await self.db.delete(stale)
        for key, k in wanted.items():
            row = rows.get(key)
            if row is None:
                self.db.add(
                    CaseClockRow(
                        id=uuid.uuid4(),
                        consultation_id=consultation_id,
                        rule=k.rule,
                        subject=k.subject,
                        subject_id=k.subject_id,
                        variant=k.variant,
                        starts_at=k.starts_at,
                        due_at=k.due_at,
                        remind_at=k.remind_at,
                        settled=k.settled,
                    )
                )
                continue
            if row.due_at != k.due_at:
                # A new end is a new clock for the person: its reminders are owed again.
                row.reminded_at = row.overdue_notified_at = None
            row.starts_at, row.due_at, row.remind_at = k.starts_at, k.due_at, k.remind_at
            row.settled, row.variant = k.settled, k.variant
        await self.db.flush()

    async def overdue(
        self, visibility: Visibility, now: datetime, *, after: Cursor | None, limit: int
    ) -> list[tuple[StoredClock, Consultation]]:
        query = (
            select(col(K.id))
            .join(ConsultationRow, col(ConsultationRow.id) == col(K.consultation_id))
            .where(
                col(K.settled).is_(False),
                col(K.due_at) <= now,
                visible.consultations(visibility),
                # Filtered here, not after: a row dropped after LIMIT would end the page early and lose the
                # cursor to the rest.
                ~shredded(col(K.consultation_id)),
            )
        )
        ids = list((await self.db.execute(keyset(query, col(K.due_at), col(K.id), after, limit))).scalars())
        if not ids:
            return []
        rows = {r.id: r for r in (await self.db.execute(select(K).where(col(K.id).in_(ids)))).scalars()}
        cases = await self.consultations.many(list({r.consultation_id for r in rows.values()}), visibility)
        # A case shredded since its clock was stored is gone: its clocks name nothing.
        return [
            (_stored(rows[i]), cases[rows[i].consultation_id])
            for i in ids
            if rows[i].consultation_id in cases
        ]

    async def due_reminders(self, now: datetime, limit: int) -> list[Reminder]:
        before = and_(col(K.reminded_at).is_(None), col(K.remind_at) <= now, col(K.due_at) > now)
        after = and_(col(K.overdue_notified_at).is_(None), col(K.due_at) <= now)
        rows = await self.db.execute(
            select(K, col(ConsultationRow.owner_id))
            .join(ConsultationRow, col(ConsultationRow.id) == col(K.consultation_id))
            # A consulter who withdrew is not reminded of anything any more.
            .where(col(K.settled).is_(False), or_(before, after), col(ConsultationRow.status) != "withdrawn")
            .order_by(col(K.due_at), col(K.id))
            .limit(limit)
        )
        out = []
        for row, owner_id in rows:
            stage = "overdue" if row.due_at <= now else "before"
            out.append(Reminder(_stored(row), owner_id, stage))
        return out

    async def mark_reminded(self, clock_id: uuid.UUID, stage: str, at: datetime) -> bool:
        column = col(K.reminded_at) if stage == "before" else col(K.overdue_notified_at)
        values = {"reminded_at": at} if stage == "before" else {"overdue_notified_at": at}
        if stage == "overdue":
            # Past its end, the "soon" reminder is moot: never sent after the overdue notice.
            values["reminded_at"] = at
        result = await self.db.execute(
            update(K).where(col(K.id) == clock_id, column.is_(None)).values(**values)
        )
        return affected(result) == 1

    # -- continuity -------------------------------------------------------------------------------

    async def earlier_chain(self, consultation_id: uuid.UUID) -> list[uuid.UUID]:
        chain: list[uuid.UUID] = []
        current = consultation_id
        for _ in range(MAX_CHAIN):
            follows = (
                await self.db.execute(
                    select(col(ConsultationRow.follows_id)).where(col(ConsultationRow.id) == current)
                )
            ).scalar_one_or_none()
            if follows is None or follows in chain or follows == consultation_id:
                break
            chain.append(follows)
            current = follows
        return chain

    async def link(self, consultation_id: uuid.UUID, earlier_id: uuid.UUID) -> None:
        await self.db.execute(
            update(ConsultationRow)
            .where(col(ConsultationRow.id) == consultation_id)
            .values(follows_id=earlier_id)
        )

    async def set_case_clock_effects(
        self, c: Consultation, time_to_act_at: datetime | None, *, bump: bool
    ) -> None:
        """The time to act alone is derived data and leaves the version (the ETag) alone; a priority or due
        time the clocks changed is a change of the case and bumps it."""
        values: dict[str, object] = {"time_to_act_at": time_to_act_at}
        if bump:
            c.version += 1
            values |= {
                "priority": c.priority.value,
                "first_answer_due_at": c.first_answer_due_at,
                "version": c.version,
            }
        await self.db.execute(update(ConsultationRow).where(col(ConsultationRow.id) == c.id).values(**values))
