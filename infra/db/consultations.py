"""Consultation repository: one translator from a visibility to SQL, used by every get and list."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, false, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from domain.actors import Role
from domain.consultations import (
    OPEN_STATUSES,
    Consent,
    Consultation,
    Cursor,
    Evidence,
    EvidenceFile,
    EvidenceUsage,
    ImageHashes,
    Message,
    MessageKind,
    Priority,
    QueueFilter,
    Status,
    Transition,
    UploadSlot,
)
from domain.policy import All, AssignedToOrUnassigned, Nothing, OwnedBy, Visibility
from domain.ports import Clock
from infra.db.paging import keyset
from infra.db.tables import (
    ConsultationCategoryRow,
    ConsultationRow,
    ConsultationTransitionRow,
    EvidenceRow,
    MessageRow,
    UserRow,
)
from infra.db.tables_requests import RequestEvidenceRow

C = ConsultationRow


def visible(visibility: Visibility) -> ColumnElement[bool]:
    match visibility:
        case All():
            return true()
        case OwnedBy(user_id=user_id):
            return C.owner_id == user_id
        case AssignedToOrUnassigned(staff_id=staff_id):
            return or_(C.assignee_id == staff_id, C.assignee_id.is_(None))  # type: ignore[union-attr]
        case Nothing():
            return false()
    raise TypeError(visibility)


def _values(c: Consultation) -> dict[str, Any]:
    return {
        "owner_id": c.owner_id,
        "channel": c.channel,
        "relation": c.relation,
        "title": c.title,
        "narrative": c.narrative,
        "desired_outcomes": c.desired_outcomes,
        "platforms": c.platforms,
        "platform_other": c.platform_other,
        "tried": c.tried,
        "victim_is_minor": c.victim_is_minor,
        "status": c.status.value,
        "priority": c.priority.value,
        "urgent": c.urgent,
        "urgency_flags": c.urgency_flags,
        "assignee_id": c.assignee_id,
        "consent_terms_version": c.consent.terms_version,
        "consented_at": c.consent.agreed_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "first_answer_due_at": c.first_answer_due_at,
        "first_answered_at": c.first_answered_at,
        "closed_at": c.closed_at,
        "version": c.version,
        "time_to_act_at": c.time_to_act_at,
        "follows_id": c.follows_id,
    }


def _consultation(row: ConsultationRow, categories: list[str], unread: int = 0) -> Consultation:
    return Consultation(
        id=row.id,
        owner_id=row.owner_id,
        channel=row.channel,
        relation=row.relation,
        title=row.title,
        narrative=row.narrative,
        categories=sorted(categories),
        desired_outcomes=list(row.desired_outcomes),
        platforms=list(row.platforms),
        platform_other=row.platform_other,
        tried=row.tried,
        victim_is_minor=row.victim_is_minor,
        consent=Consent(row.consent_terms_version, row.consented_at),
        created_at=row.created_at,
        updated_at=row.updated_at,
        first_answer_due_at=row.first_answer_due_at,
        first_answered_at=row.first_answered_at,
        closed_at=row.closed_at,
        consulter_read_at=row.consulter_read_at,
        status=Status(row.status),
        priority=Priority(row.priority),
        urgent=row.urgent,
        urgency_flags=list(row.urgency_flags),
        assignee_id=row.assignee_id,
        version=row.version,
        unread_answers=unread,
        time_to_act_at=row.time_to_act_at,
        follows_id=row.follows_id,
    )


def _evidence(row: EvidenceRow) -> Evidence:
    file = None
    if row.file_key:
        file = EvidenceFile(
            storage_key=row.file_key,
            content_type=row.file_type or "",
            size=row.file_size or 0,
            sha256=row.file_sha256,
            copy_sha256=row.file_copy_sha256 or "",
            original_key=row.file_original_key,
            original_size=row.file_original_size,
            sealed=row.file_sealed,
        )
    hashes = None
    if row.image_pdq and row.image_sha256:
        hashes = ImageHashes(
            sha256=row.image_sha256,
            pdq=row.image_pdq,
            pdq_quality=row.image_pdq_quality or 0,
            width=row.image_width or 0,
            height=row.image_height or 0,
        )
    slot = None
    if row.upload_slot_opened_by and row.upload_slot_opened_at:
        slot = UploadSlot(row.upload_slot_opened_by, row.upload_slot_opened_at, row.upload_slot_reason or "")
    return Evidence(
        id=row.id,
        consultation_id=row.consultation_id,
        created_by=row.created_by,
        created_at=row.created_at,
        url=row.url,
        platform=row.platform,
        posted_at=row.posted_at,
        captured_at=row.captured_at,
        poster_account=row.poster_account,
        excerpt=row.excerpt,
        notes=row.notes,
        context_captured=row.context_captured,
        version=row.version,
        file=file,
        image_hashes=hashes,
        upload_slot=slot,
    )


def _hash_values(h: ImageHashes) -> dict[str, Any]:
    return {
        "image_sha256": h.sha256,
        "image_pdq": h.pdq,
        "image_pdq_quality": h.pdq_quality,
        "image_width": h.width,
        "image_height": h.height,
    }


class SqlConsultations:
    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def _categories(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        found: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
        if ids:
            rows = await self.db.execute(
                select(ConsultationCategoryRow.consultation_id, ConsultationCategoryRow.category_code).where(
                    ConsultationCategoryRow.consultation_id.in_(ids)  # type: ignore[attr-defined]
                )
            )
            for cid, code in rows:
                found[cid].append(code)
        return found

    async def _set_categories(self, consultation_id: uuid.UUID, codes: Sequence[str]) -> None:
        await self.db.execute(
            delete(ConsultationCategoryRow).where(ConsultationCategoryRow.consultation_id == consultation_id)
        )
        for code in codes:
            self.db.add(ConsultationCategoryRow(consultation_id=consultation_id, category_code=code))
        await self.db.flush()

    async def add(self, c: Consultation) -> None:
        self.db.add(ConsultationRow(id=c.id, **_values(c)))
        await self.db.flush()
        await self._set_categories(c.id, c.categories)

    async def get(self, consultation_id: uuid.UUID, visibility: Visibility) -> Consultation | None:
        found = await self.many([consultation_id], visibility)
        return found.get(consultation_id)

    async def many(self, ids: Sequence[uuid.UUID], visibility: Visibility) -> dict[uuid.UUID, Consultation]:
        """The visible ones of these consultations with their categories, in ONE statement (a row per
        category), read as plain rows: the ORM's identity map bought nothing here and cost a third of the
        read's CPU, and the categories were a second round trip."""
        if not ids:
            return {}
        CC = ConsultationCategoryRow
        rows = await self.db.execute(
            select(C.__table__, CC.category_code)  # type: ignore[attr-defined]
            .outerjoin(CC, CC.consultation_id == C.id)
            .where(C.id.in_(list(ids)), visible(visibility))  # type: ignore[attr-defined]
            .order_by(C.id, CC.category_code)
        )
        first: dict[uuid.UUID, Any] = {}
        codes: dict[uuid.UUID, list[str]] = {}
        for row in rows:
            first.setdefault(row.id, row)
            bucket = codes.setdefault(row.id, [])
            if row.category_code is not None:
                bucket.append(row.category_code)
        return {cid: _consultation(row, codes[cid]) for cid, row in first.items()}

    async def update(self, c: Consultation, *, expected_version: int) -> bool:
        # Optimistic concurrency in the WHERE clause: a concurrent writer makes rowcount 0.
        result = await self.db.execute(
            update(C).where(C.id == c.id, C.version == expected_version).values(**_values(c))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        await self._set_categories(c.id, c.categories)
        return True

    async def list(
        self,
        visibility: Visibility,
        queue_filter: QueueFilter,
        *,
        now: datetime,
        after: Cursor | None,
        limit: int,
    ) -> list[Consultation]:
        query = select(C).where(visible(visibility))
        if queue_filter.status is not None:
            query = query.where(C.status == queue_filter.status.value)
        if queue_filter.category is not None:
            # Codes compare exactly (a group arrives expanded to its own code and its leaves): no LIKE, so
            # `%` or `_` in the parameter match nothing rather than every categorised case.
            codes = sorted(queue_filter.category_codes or {queue_filter.category})
            query = query.where(
                C.id.in_(  # type: ignore[attr-defined]
                    select(ConsultationCategoryRow.consultation_id).where(
                        ConsultationCategoryRow.category_code.in_(codes)  # type: ignore[attr-defined]
                    )
                )
            )
        if queue_filter.urgent is not None:
            query = query.where(C.urgent == queue_filter.urgent)
        if queue_filter.priority is not None:
            query = query.where(C.priority == queue_filter.priority.value)
        if queue_filter.assignee_id is not None:
            query = query.where(C.assignee_id == queue_filter.assignee_id)
        if queue_filter.unassigned:
            query = query.where(C.assignee_id.is_(None))  # type: ignore[union-attr]
        if queue_filter.channel is not None:
            query = query.where(C.channel == queue_filter.channel)
        if queue_filter.created_from is not None:
            query = query.where(C.created_at >= queue_filter.created_from)
        if queue_filter.created_to is not None:
            query = query.where(C.created_at < queue_filter.created_to)
        if queue_filter.overdue is not None:
            is_overdue = and_(
                C.first_answered_at.is_(None),  # type: ignore[union-attr]
                C.status.in_([s.value for s in OPEN_STATUSES]),  # type: ignore[attr-defined]
                C.first_answer_due_at < now,
            )
            query = query.where(is_overdue if queue_filter.overdue else ~is_overdue)
        query = keyset(query, C.created_at, C.id, after, limit, newest_first=True)
        rows = list((await self.db.execute(query)).scalars())
        ids = [r.id for r in rows]
        categories = await self._categories(ids)
        unread = await self._unread(rows)
        return [_consultation(r, categories[r.id], unread.get(r.id, 0)) for r in rows]

    async def _unread(self, rows: Sequence[ConsultationRow]) -> dict[uuid.UUID, int]:
        if not rows:
            return {}
        query = (
            select(MessageRow.consultation_id, func.count())
            .join(C, C.id == MessageRow.consultation_id)
            .where(
                MessageRow.consultation_id.in_([r.id for r in rows]),  # type: ignore[attr-defined]
                MessageRow.kind == MessageKind.answer.value,
                or_(C.consulter_read_at.is_(None), MessageRow.created_at > C.consulter_read_at),  # type: ignore[union-attr]
            )
            .group_by(MessageRow.consultation_id)
        )
        return {cid: int(n) for cid, n in await self.db.execute(query)}

    async def count_created_since(self, owner_id: uuid.UUID, since: datetime) -> int:
        query = select(func.count()).select_from(C).where(C.owner_id == owner_id, C.created_at >= since)
        return int((await self.db.execute(query)).scalar_one())

    async def mark_read(self, consultation_id: uuid.UUID, at: datetime) -> None:
        # Deliberately not a version bump: reading is not an edit and must not stale a staff ETag.
        await self.db.execute(update(C).where(C.id == consultation_id).values(consulter_read_at=at))

    async def add_transition(self, t: Transition) -> None:
        self.db.add(
            ConsultationTransitionRow(
                id=t.id,
                consultation_id=t.consultation_id,
                actor_id=t.actor_id,
                from_status=t.from_status.value if t.from_status else None,
                to_status=t.to_status.value,
                at=t.at,
                reason=t.reason,
            )
        )
        await self.db.flush()

    async def transitions(self, consultation_id: uuid.UUID) -> list[Transition]:
        T = ConsultationTransitionRow
        rows = await self.db.execute(
            select(T).where(T.consultation_id == consultation_id).order_by(T.at, T.id)
        )
        return [
            Transition(
                r.id,
                r.consultation_id,
                r.actor_id,
                Status(r.from_status) if r.from_status else None,
                Status(r.to_status),
                r.at,
                r.reason,
            )
            for r in rows.scalars()
        ]

    async def add_message(self, m: Message) -> None:
        self.db.add(
            MessageRow(
                id=m.id,
                consultation_id=m.consultation_id,
                author_id=m.author_id,
                kind=m.kind.value,
                body=m.body,
                created_at=m.created_at,
            )
        )
        await self.db.flush()

    async def messages(
        self,
        consultation_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        M = MessageRow
        query = select(M).where(
            M.consultation_id == consultation_id,
            M.kind.in_([k.value for k in kinds]),  # type: ignore[attr-defined]
        )
        rows = await self.db.execute(_oldest_first(query, M, after, limit))
        return [_message(r) for r in rows.scalars()]

    async def get_message(
        self, consultation_id: uuid.UUID, message_id: uuid.UUID, kinds: Sequence[MessageKind]
    ) -> Message | None:
        M = MessageRow
        row = (
            await self.db.execute(
                select(M).where(
                    M.id == message_id,
                    M.consultation_id == consultation_id,
                    M.kind.in_([k.value for k in kinds]),  # type: ignore[attr-defined]
                )
            )
        ).scalar_one_or_none()
        return _message(row) if row else None

    async def message_times_since(
        self, consultation_id: uuid.UUID, kind: MessageKind, since: datetime
    ) -> list[datetime]:
        await self._lock(consultation_id)
        M = MessageRow
        rows = await self.db.execute(
            select(M.created_at)
            .where(M.consultation_id == consultation_id, M.kind == kind.value, M.created_at >= since)
            .order_by(M.created_at)  # type: ignore[arg-type]
        )
        return list(rows.scalars())

    async def _lock(self, consultation_id: uuid.UUID) -> None:
        """Hold the consultation row until commit, so what is counted next cannot change before the insert.
        PostgreSQL: `SELECT … FOR UPDATE`. SQLite has no row locks and the driver opens its transaction only at
        the first write: a write that changes nothing takes the database's write lock here instead."""
        if self.db.get_bind().dialect.name == "sqlite":
            await self.db.execute(update(C).where(C.id == consultation_id).values(id=C.id))
        else:
            await self.db.execute(select(C.id).where(C.id == consultation_id).with_for_update())

    async def add_evidence(self, e: Evidence) -> None:
        self.db.add(
            EvidenceRow(
                id=e.id,
                consultation_id=e.consultation_id,
                created_by=e.created_by,
                created_at=e.created_at,
                url=e.url,
                platform=e.platform,
                posted_at=e.posted_at,
                captured_at=e.captured_at,
                poster_account=e.poster_account,
                excerpt=e.excerpt,
                notes=e.notes,
                context_captured=e.context_captured,
                **(_hash_values(e.image_hashes) if e.image_hashes else {}),
            )
        )
        await self.db.flush()

    async def evidence(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Evidence]:
        E = EvidenceRow
        query = select(E).where(E.consultation_id == consultation_id)
        rows = await self.db.execute(_oldest_first(query, E, after, limit))
        return [_evidence(r) for r in rows.scalars()]

    async def evidence_usage(self, consultation_id: uuid.UUID, owner_id: uuid.UUID) -> EvidenceUsage:
        await self._lock(consultation_id)
        E = EvidenceRow
        size = func.coalesce(func.sum(E.file_size), 0)
        items, in_consultation = (
            await self.db.execute(select(func.count(), size).where(E.consultation_id == consultation_id))
        ).one()
        of_owner = (
            await self.db.execute(
                select(size).join(C, C.id == E.consultation_id).where(C.owner_id == owner_id)
            )
        ).scalar_one()
        return EvidenceUsage(int(items), int(in_consultation), int(of_owner))

    async def get_evidence(self, consultation_id: uuid.UUID, evidence_id: uuid.UUID) -> Evidence | None:
        E = EvidenceRow
        row = (
            await self.db.execute(select(E).where(E.id == evidence_id, E.consultation_id == consultation_id))
        ).scalar_one_or_none()
        return _evidence(row) if row else None

    async def attach_file(self, evidence_id: uuid.UUID, file: EvidenceFile) -> None:
        await self.db.execute(
            update(EvidenceRow)
            .where(EvidenceRow.id == evidence_id)
            .values(
                file_key=file.storage_key,
                file_type=file.content_type,
                file_size=file.size,
                file_sha256=file.sha256,
                file_copy_sha256=file.copy_sha256,
                file_original_key=file.original_key,
                file_original_size=file.original_size,
                file_sealed=file.sealed,
            )
        )

    async def update_evidence(self, e: Evidence, *, expected_version: int) -> bool:
        E = EvidenceRow
        result = await self.db.execute(
            update(E)
            .where(E.id == e.id, E.version == expected_version)
            .values(
                url=e.url,
                platform=e.platform,
                posted_at=e.posted_at,
                captured_at=e.captured_at,
                poster_account=e.poster_account,
                excerpt=e.excerpt,
                notes=e.notes,
                context_captured=e.context_captured,
                version=e.version,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def evidence_in_requests(self, evidence_id: uuid.UUID) -> bool:
        named = select(RequestEvidenceRow.request_id).where(RequestEvidenceRow.evidence_id == evidence_id)
        return (await self.db.execute(named.limit(1))).first() is not None

    async def delete_evidence(self, evidence_id: uuid.UUID) -> None:
        await self.db.execute(delete(EvidenceRow).where(EvidenceRow.id == evidence_id))

    async def set_image_hashes(self, evidence_id: uuid.UUID, hashes: ImageHashes) -> None:
        await self.db.execute(
            update(EvidenceRow).where(EvidenceRow.id == evidence_id).values(**_hash_values(hashes))
        )

    async def open_upload_slot(self, evidence_id: uuid.UUID, slot: UploadSlot) -> bool:
        # Conditional on no slot yet, so two supervisors at once open one slot, not two.
        E = EvidenceRow
        result = await self.db.execute(
            update(E)
            .where(E.id == evidence_id, E.upload_slot_opened_by.is_(None))  # type: ignore[union-attr]
            .values(
                upload_slot_opened_by=slot.opened_by,
                upload_slot_opened_at=slot.opened_at,
                upload_slot_reason=slot.reason,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def pdq_hashes(self) -> list[tuple[uuid.UUID, uuid.UUID, str, datetime]]:
        E = EvidenceRow
        rows = await self.db.execute(
            select(E.id, E.consultation_id, E.image_pdq, E.created_at).where(
                E.image_pdq.is_not(None)  # type: ignore[union-attr]
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.all()]

    async def supervisor_ids(self) -> list[uuid.UUID]:
        rows = await self.db.execute(
            select(UserRow.id)
            .where(UserRow.role == Role.supervisor.value, UserRow.is_active == true())
            .order_by(UserRow.id)
        )
        return list(rows.scalars())

    async def staff_role(self, user_id: uuid.UUID) -> Role | None:
        row = await self.db.get(UserRow, user_id)
        if row is None or not row.is_active:
            return None
        return Role(row.role)


def _oldest_first(query: Any, row: Any, after: Cursor | None, limit: int | None) -> Any:
    """A thread-like list in posting order, one keyset page of it."""
    return keyset(query, row.created_at, row.id, after, limit)


def _message(r: MessageRow) -> Message:
    return Message(r.id, r.consultation_id, r.author_id, MessageKind(r.kind), r.body, r.created_at)
