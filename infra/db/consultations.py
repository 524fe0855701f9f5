"""Consultation repository: one translator from a visibility to SQL, used by every get and list."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.actors import Role
from domain.case_keys import CaseKey
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
from domain.policy import Visibility
from domain.ports import Clock
from infra.crypto import opened_text, seal_text
from infra.db import visibility as visible
from infra.db.case_keys import SqlCaseKeys
from infra.db.engine import affected
from infra.db.locks import lock_account, lock_consultation
from infra.db.paging import keyset, keyset_bound, keyset_parameters
from infra.db.tables import (
    CaseKeyRow,
    ConsultationCategoryRow,
    ConsultationRow,
    ConsultationTransitionRow,
    EvidenceRow,
    MessageRow,
    UserRow,
)
from infra.db.tables_requests import RequestEvidenceRow
from infra.db.types import table_of

C = ConsultationRow
CONSULTATION = table_of(C)  # its Table, for the plain-row read in `many`
K = CaseKeyRow
# The case's wrapped key comes with the case in the same statement; a shredded case (its key destroyed) is not
# found at all.
KEY_COLUMNS = (col(K.kek_id), col(K.wrapped))
NOT_SHREDDED = or_(col(K.consultation_id).is_(None), col(K.wrapped).is_not(None))
# A page of the queue or of a consulter's own list is ONE statement: each case's category codes and its count
# of answers the consulter has not read come as correlated subqueries, not as two more round trips (the
# profile of a 50-case page: the two extra statements and the ORM's entity loading were 45 % of its CPU).
CC_ = ConsultationCategoryRow
# When :owner created each of their newest :newest cases after :since (intake's hourly bound); built once.
_CREATED_SINCE = (
    select(col(C.created_at))
    .where(col(C.owner_id) == bindparam("owner"), col(C.created_at) > bindparam("since"))
    .order_by(col(C.created_at).desc())
    .limit(bindparam("newest"))
)
# A status change's row (intake, and every change of status), a Core insert built once: the ORM row and its
# flush cost more than the insert.
_NEW_TRANSITION = insert(table_of(ConsultationTransitionRow))
_NEW_CATEGORIES = insert(table_of(ConsultationCategoryRow))


@visible.per_kind
def _many_statement(kind: type[Visibility]) -> Select[Any]:
    """`SqlConsultations.many`'s statement for one kind of visibility, built once: building it per read (its
    joins, its IN and the visibility's clause) was a fifth of a consultation read's CPU. It takes `ids` and
    the visibility's `viewer`."""
    return (
        select(CONSULTATION, col(CC_.category_code), *KEY_COLUMNS)
        .outerjoin(CC_, col(CC_.consultation_id) == col(C.id))
        .outerjoin(K, col(K.consultation_id) == col(C.id))
        .where(
            col(C.id).in_(bindparam("ids", expanding=True)), visible.consultations_of_kind(kind), NOT_SHREDDED
        )
        .order_by(col(C.id), col(CC_.category_code))
    )


@dataclass(frozen=True, slots=True)
class _PageShape:
    """What decides the SQL of a queue page, apart from its values: the kind of visibility, which filters are
    set (and how many category codes), whether it continues after a cursor, and the columns read."""

    kind: type[Visibility]
    filters: tuple[str, ...]
    codes: int
    unassigned: bool
    overdue: bool | None
    continued: bool
    listing: bool

    @classmethod
    def of(
        cls, visibility: Visibility, f: QueueFilter, values: dict[str, Any], *, continued: bool, listing: bool
    ) -> _PageShape:
        """The shape of a page filtered by `f`, whose bound values are `values` (`_filter_parameters`)."""
        return cls(
            type(visibility),
            tuple(sorted(values.keys() - {"now"})),
            len(values.get("codes", ())),
            f.unassigned,
            f.overdue,
            continued,
            listing,
        )


def _filter_parameters(f: QueueFilter, now: datetime) -> dict[str, Any]:
    """The values of the filters a queue page sets, by the name of their bound parameter."""
    values: dict[str, Any] = {
        "status": f.status.value if f.status is not None else None,
        "codes": sorted(f.category_codes or {f.category}) if f.category is not None else None,
        "urgent": f.urgent,
        "priority": f.priority.value if f.priority is not None else None,
        "assignee": f.assignee_id,
        "channel": f.channel,
        "created_from": f.created_from,
        "created_to": f.created_to,
        "now": now if f.overdue is not None else None,
    }
    return {name: value for name, value in values.items() if value is not None}


@functools.cache
def _page_statement(shape: _PageShape) -> Select[Any]:
    """A queue page's statement for its shape, built once (building it was a sixth of a page's CPU). The
    shapes are bounded: a visibility kind, a set of filters and the number of codes of one category group."""
    columns = LISTED_COLUMNS if shape.listing else tuple(CONSULTATION.c)
    query = (
        select(*columns, *KEY_COLUMNS, CATEGORY_CODES, UNREAD_ANSWERS)
        .select_from(C)
        .outerjoin(K, col(K.consultation_id) == col(C.id))
        .where(visible.consultations_of_kind(shape.kind), NOT_SHREDDED)
    )
    filters = set(shape.filters)
    # The page's order: the queue's (created_at, id), or for one category the same values off its category
    # rows, whose index (category_code, created_at, consultation_id) then yields the page as one backward
    # range instead of probing every newer case for the category (migration 0032).
    at, id_ = col(C.created_at), col(C.id)
    if "status" in filters:
        query = query.where(col(C.status) == bindparam("status"))
    # Codes compare exactly (a group arrives expanded to its own code and its leaves): no LIKE, so `%` or `_`
    # in the parameter match nothing rather than every categorised case.
    if "codes" in filters and shape.codes == 1:
        query = query.join(
            CC_,
            and_(
                col(CC_.consultation_id) == col(C.id),
                col(CC_.category_code).in_(bindparam("codes", expanding=True)),
            ),
        )
        at, id_ = col(CC_.created_at), col(CC_.consultation_id)
    elif "codes" in filters:  # a case in several codes of the group is on the page once
        query = query.where(
            col(C.id).in_(
                select(col(CC_.consultation_id)).where(
                    col(CC_.category_code).in_(bindparam("codes", expanding=True))
                )
            )
        )
    if "urgent" in filters:
        query = query.where(col(C.urgent) == bindparam("urgent"))
    if "priority" in filters:
        query = query.where(col(C.priority) == bindparam("priority"))
    if "assignee" in filters:
        query = query.where(col(C.assignee_id) == bindparam("assignee"))
    if shape.unassigned:
        query = query.where(col(C.assignee_id).is_(None))
    if "channel" in filters:
        query = query.where(col(C.channel) == bindparam("channel"))
    if "created_from" in filters:
        query = query.where(col(C.created_at) >= bindparam("created_from"))
    if "created_to" in filters:
        query = query.where(col(C.created_at) < bindparam("created_to"))
    if shape.overdue is not None:
        is_overdue = and_(
            col(C.first_answered_at).is_(None),
            col(C.status).in_([s.value for s in OPEN_STATUSES]),
            col(C.first_answer_due_at) < bindparam("now"),
        )
        query = query.where(is_overdue if shape.overdue else ~is_overdue)
    paged: Select[Any] = keyset_bound(query, at, id_, continued=shape.continued, newest_first=True)
    return paged


CODE_SEPARATOR = " "  # category codes are dotted upper-case words (domain/knowledge): never a space
CATEGORY_CODES = (
    select(func.aggregate_strings(col(CC_.category_code), CODE_SEPARATOR))
    .where(col(CC_.consultation_id) == col(C.id))
    .correlate(C)
    .scalar_subquery()
    .label("category_codes")
)
UNREAD_ANSWERS = (
    select(func.count())
    .select_from(MessageRow)
    .where(
        col(MessageRow.consultation_id) == col(C.id),
        col(MessageRow.kind) == MessageKind.answer.value,
        or_(col(C.consulter_read_at).is_(None), col(MessageRow.created_at) > col(C.consulter_read_at)),
    )
    .correlate(C)
    .scalar_subquery()
    .label("unread_answers")
)


def _codes(joined: str | None) -> list[str]:
    return joined.split(CODE_SEPARATOR) if joined else []


def _plain(result: Any) -> list[SimpleNamespace]:
    """A result's rows as plain objects. A SQLAlchemy Row's named attribute is a `__getattr__` fallback, about
    1 µs a read; `_consultation` reads ~30 of them a case: with a 50-case queue page that was 1.5 ms of its
    CPU, the same as every decryption of the page together. Read once by position here, they cost ~40 ns."""
    keys = list(result.keys())
    return [SimpleNamespace(**dict(zip(keys, row, strict=True))) for row in result]


# What a person wrote is stored encrypted with the case's key (issue 17 §1; infra/crypto.py); what the queue,
# filters and statistics need (status, categories, dates, urgency, channel) stays queryable.
CONSULTATION_TEXTS = ("title", "narrative", "platform_other", "tried")
# What a list of cases shows of those texts (api ConsultationOut): a page reads and opens only these, and the
# narrative, the longest text of a case, stays in the database (a page's records leave it and `tried` empty).
LISTED_TEXTS = ("title", "platform_other")
LISTED_COLUMNS = tuple(c for c in CONSULTATION.c if c.name not in set(CONSULTATION_TEXTS) - set(LISTED_TEXTS))
EVIDENCE_TEXTS = ("url", "poster_account", "excerpt", "notes")
SLOT_REASON = "evidence.upload_slot_reason"  # a supervisor's reason for one upload: sealed too


def _values(c: Consultation, key: CaseKey) -> dict[str, Any]:
    return {
        "owner_id": c.owner_id,
        "channel": c.channel,
        "relation": c.relation,
        **{name: seal_text(key, getattr(c, name), field=name, row_id=c.id) for name in CONSULTATION_TEXTS},
        "desired_outcomes": c.desired_outcomes,
        "platforms": c.platforms,
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


def _consultation(
    row: Any,
    categories: list[str],
    key: CaseKey | None,
    unread: int = 0,
    texts_read: Sequence[str] = CONSULTATION_TEXTS,
) -> Consultation:
    texts = {name: opened_text(key, getattr(row, name), name, row.id) for name in texts_read}
    return Consultation(
        id=row.id,
        owner_id=row.owner_id,
        channel=row.channel,
        relation=row.relation,
        title=texts["title"] or "",
        narrative=texts.get("narrative") or "",
        categories=sorted(categories),
        desired_outcomes=list(row.desired_outcomes),
        platforms=list(row.platforms),
        platform_other=texts["platform_other"],
        tried=texts.get("tried"),
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


def _evidence_texts(e: Evidence, key: CaseKey) -> dict[str, str | None]:
    return {
        name: seal_text(key, getattr(e, name), field=f"evidence.{name}", row_id=e.id)
        for name in EVIDENCE_TEXTS
    }


def _evidence(row: EvidenceRow, key: CaseKey | None) -> Evidence:
    texts = {
        name: opened_text(key, getattr(row, name), f"evidence.{name}", row.id) for name in EVIDENCE_TEXTS
    }
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
        reason = opened_text(key, row.upload_slot_reason, SLOT_REASON, row.id)
        slot = UploadSlot(row.upload_slot_opened_by, row.upload_slot_opened_at, reason or "")
    return Evidence(
        id=row.id,
        consultation_id=row.consultation_id,
        created_by=row.created_by,
        created_at=row.created_at,
        url=texts["url"],
        platform=row.platform,
        posted_at=row.posted_at,
        captured_at=row.captured_at,
        poster_account=texts["poster_account"],
        excerpt=texts["excerpt"],
        notes=texts["notes"],
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
    def __init__(self, db: AsyncSession, clock: Clock, keys: SqlCaseKeys) -> None:
        self.db = db
        self.clock = clock
        self.keys = keys

    async def _key(self, consultation_id: uuid.UUID) -> CaseKey:
        return await self.keys.for_consultation(consultation_id)

    def _row_key(self, consultation_id: uuid.UUID, row: Any) -> CaseKey | None:
        """The key joined to a consultation row (None for a case stored before texts were encrypted)."""
        return self.keys.opened(consultation_id, row.kek_id, row.wrapped) if row.wrapped is not None else None

    async def _set_categories(
        self, consultation_id: uuid.UUID, codes: Sequence[str], created_at: datetime, *, new: bool = False
    ) -> None:
        if not new:  # a new case has none to replace
            await self.db.execute(
                delete(ConsultationCategoryRow).where(
                    col(ConsultationCategoryRow.consultation_id) == consultation_id
                )
            )
        if codes:
            await self.db.execute(
                _NEW_CATEGORIES,
                [
                    {"consultation_id": consultation_id, "category_code": code, "created_at": created_at}
                    for code in codes
                ],
            )

    async def add(self, c: Consultation) -> None:
        # The case's own row stays an ORM row: the idempotency layer learns from the session which row a
        # create made (infra/idempotency.py `watch`). Its key and categories are Core inserts built once.
        key = await self.keys.for_new_consultation(c.id)
        self.db.add(ConsultationRow(id=c.id, **_values(c, key)))
        await self.db.flush()
        await self._set_categories(c.id, c.categories, c.created_at, new=True)

    async def get(self, consultation_id: uuid.UUID, visibility: Visibility) -> Consultation | None:
        found = await self.many([consultation_id], visibility)
        return found.get(consultation_id)

    async def many(self, ids: Sequence[uuid.UUID], visibility: Visibility) -> dict[uuid.UUID, Consultation]:
        """The visible ones of these consultations with their categories, in ONE statement (a row per
        category), read as plain rows: the ORM's identity map bought nothing here and cost a third of the
        read's CPU, and the categories were a second round trip."""
        if not ids:
            return {}
        rows = await self.db.execute(
            _many_statement(visibility), {"ids": list(ids), **visible.viewer_parameter(visibility)}
        )
        first: dict[uuid.UUID, Any] = {}
        codes: dict[uuid.UUID, list[str]] = {}
        for row in _plain(rows):
            first.setdefault(row.id, row)
            bucket = codes.setdefault(row.id, [])
            if row.category_code is not None:
                bucket.append(row.category_code)
        return {cid: _consultation(row, codes[cid], self._row_key(cid, row)) for cid, row in first.items()}

    async def update(self, c: Consultation, *, expected_version: int) -> bool:
        # Optimistic concurrency in the WHERE clause: a concurrent writer makes rowcount 0.
        result = await self.db.execute(
            update(C)
            .where(col(C.id) == c.id, col(C.version) == expected_version)
            .values(**_values(c, await self._key(c.id)))
        )
        if affected(result) != 1:
            return False
        await self._set_categories(c.id, c.categories, c.created_at)
        return True

    async def page(
        self,
        visibility: Visibility,
        queue_filter: QueueFilter,
        *,
        now: datetime,
        after: Cursor | None,
        limit: int,
        listing: bool = False,
    ) -> list[Consultation]:
        texts_read = LISTED_TEXTS if listing else CONSULTATION_TEXTS
        filtered = _filter_parameters(queue_filter, now)
        shape = _PageShape.of(
            visibility, queue_filter, filtered, continued=after is not None, listing=listing
        )
        parameters = {**visible.viewer_parameter(visibility), **keyset_parameters(after, limit), **filtered}
        return [
            _consultation(
                row, _codes(row.category_codes), self._row_key(row.id, row), row.unread_answers, texts_read
            )
            for row in _plain(await self.db.execute(_page_statement(shape), parameters))
        ]

    async def lock_owner(self, owner_id: uuid.UUID) -> bool:
        return await lock_account(self.db, owner_id)

    async def created_times_since(self, owner_id: uuid.UUID, since: datetime, newest: int) -> list[datetime]:
        found = await self.db.execute(_CREATED_SINCE, {"owner": owner_id, "since": since, "newest": newest})
        return sorted(found.scalars())

    async def mark_read(self, consultation_id: uuid.UUID, at: datetime) -> None:
        # Deliberately not a version bump: reading is not an edit and must not stale a staff ETag.
        await self.db.execute(update(C).where(col(C.id) == consultation_id).values(consulter_read_at=at))

    async def add_transition(self, t: Transition) -> None:
        await self.db.execute(
            _NEW_TRANSITION,
            {
                "id": t.id,
                "consultation_id": t.consultation_id,
                "actor_id": t.actor_id,
                "from_status": t.from_status.value if t.from_status else None,
                "to_status": t.to_status.value,
                "at": t.at,
                "reason": t.reason,
            },
        )

    async def transitions(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Transition]:
        T = ConsultationTransitionRow
        query = select(T).where(col(T.consultation_id) == consultation_id)
        rows = await self.db.execute(keyset(query, col(T.at), col(T.id), after, limit))
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
                body=seal_text(await self._key(m.consultation_id), m.body, field="message.body", row_id=m.id),
                created_at=m.created_at,
            )
        )
        await self.db.flush()

    async def messages(
        self,
        consultation_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        M = MessageRow
        query = select(M).where(
            col(M.consultation_id) == consultation_id,
            col(M.kind).in_([k.value for k in kinds]),
            visible.of_consultation(visibility, consultation_id),
        )
        rows = list((await self.db.execute(_oldest_first(query, M, after, limit))).scalars())
        key = await self._key(consultation_id) if rows else None
        return [_message(r, key) for r in rows]

    async def get_message(
        self,
        consultation_id: uuid.UUID,
        message_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        visibility: Visibility,
    ) -> Message | None:
        M = MessageRow
        row = (
            await self.db.execute(
                select(M).where(
                    col(M.id) == message_id,
                    col(M.consultation_id) == consultation_id,
                    col(M.kind).in_([k.value for k in kinds]),
                    visible.of_consultation(visibility, consultation_id),
                )
            )
        ).scalar_one_or_none()
        return _message(row, await self._key(consultation_id)) if row else None

    async def message_times_since(
        self, consultation_id: uuid.UUID, kind: MessageKind, since: datetime
    ) -> list[datetime]:
        await self._lock(consultation_id)
        M = MessageRow
        rows = await self.db.execute(
            select(col(M.created_at))
            .where(
                col(M.consultation_id) == consultation_id,
                col(M.kind) == kind.value,
                col(M.created_at) > since,
            )
            .order_by(col(M.created_at))
        )
        return list(rows.scalars())

    async def _lock(self, consultation_id: uuid.UUID) -> None:
        await lock_consultation(self.db, consultation_id)

    async def add_evidence(self, e: Evidence) -> None:
        texts = _evidence_texts(e, await self._key(e.consultation_id))
        self.db.add(
            EvidenceRow(
                url=texts["url"],
                poster_account=texts["poster_account"],
                excerpt=texts["excerpt"],
                notes=texts["notes"],
                id=e.id,
                consultation_id=e.consultation_id,
                created_by=e.created_by,
                created_at=e.created_at,
                platform=e.platform,
                posted_at=e.posted_at,
                captured_at=e.captured_at,
                context_captured=e.context_captured,
                **(_hash_values(e.image_hashes) if e.image_hashes else {}),
            )
        )
        await self.db.flush()

    async def evidence(
        self,
        consultation_id: uuid.UUID,
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Evidence]:
        E = EvidenceRow
        query = select(E).where(
            col(E.consultation_id) == consultation_id, visible.of_consultation(visibility, consultation_id)
        )
        rows = list((await self.db.execute(_oldest_first(query, E, after, limit))).scalars())
        key = await self._key(consultation_id) if rows else None
        return [_evidence(r, key) for r in rows]

    async def evidence_usage(self, consultation_id: uuid.UUID, owner_id: uuid.UUID) -> EvidenceUsage:
        await self._lock(consultation_id)
        E = EvidenceRow
        size = func.coalesce(func.sum(col(E.file_size)), 0)
        items, in_consultation = (
            await self.db.execute(select(func.count(), size).where(col(E.consultation_id) == consultation_id))
        ).one()
        of_owner = (
            await self.db.execute(
                select(size).join(C, col(C.id) == col(E.consultation_id)).where(col(C.owner_id) == owner_id)
            )
        ).scalar_one()
        return EvidenceUsage(int(items), int(in_consultation or 0), int(of_owner or 0))

    async def get_evidence(
        self, consultation_id: uuid.UUID, evidence_id: uuid.UUID, visibility: Visibility
    ) -> Evidence | None:
        E = EvidenceRow
        row = (
            await self.db.execute(
                select(E).where(
                    col(E.id) == evidence_id,
                    col(E.consultation_id) == consultation_id,
                    visible.of_consultation(visibility, consultation_id),
                )
            )
        ).scalar_one_or_none()
        return _evidence(row, await self._key(consultation_id)) if row else None

    async def attach_file(self, evidence_id: uuid.UUID, file: EvidenceFile) -> None:
        await self.db.execute(
            update(EvidenceRow)
            .where(col(EvidenceRow.id) == evidence_id)
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
            .where(col(E.id) == e.id, col(E.version) == expected_version)
            .values(
                platform=e.platform,
                posted_at=e.posted_at,
                captured_at=e.captured_at,
                context_captured=e.context_captured,
                version=e.version,
                **_evidence_texts(e, await self._key(e.consultation_id)),
            )
        )
        return bool(affected(result))

    async def evidence_in_requests(self, evidence_id: uuid.UUID) -> bool:
        named = select(col(RequestEvidenceRow.request_id)).where(
            col(RequestEvidenceRow.evidence_id) == evidence_id
        )
        return (await self.db.execute(named.limit(1))).first() is not None

    async def delete_evidence(self, evidence_id: uuid.UUID) -> None:
        await self.db.execute(delete(EvidenceRow).where(col(EvidenceRow.id) == evidence_id))

    async def set_image_hashes(self, evidence_id: uuid.UUID, hashes: ImageHashes) -> None:
        await self.db.execute(
            update(EvidenceRow).where(col(EvidenceRow.id) == evidence_id).values(**_hash_values(hashes))
        )

    async def open_upload_slot(self, evidence_id: uuid.UUID, slot: UploadSlot) -> bool:
        # Conditional on no slot yet, so two supervisors at once open one slot, not two.
        E = EvidenceRow
        item = await self.db.get(E, evidence_id)  # read by the caller in this unit of work: no query
        if item is None:
            return False
        key = await self._key(item.consultation_id)
        result = await self.db.execute(
            update(E)
            .where(col(E.id) == evidence_id, col(E.upload_slot_opened_by).is_(None))
            .values(
                upload_slot_opened_by=slot.opened_by,
                upload_slot_opened_at=slot.opened_at,
                upload_slot_reason=seal_text(key, slot.reason, field=SLOT_REASON, row_id=evidence_id),
            )
        )
        return bool(affected(result))

    async def pdq_hashes(self) -> list[tuple[uuid.UUID, uuid.UUID, str, datetime]]:
        E = EvidenceRow
        rows = await self.db.execute(
            select(col(E.id), col(E.consultation_id), col(E.image_pdq), col(E.created_at)).where(
                col(E.image_pdq).is_not(None)
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.all() if r[2] is not None]

    async def supervisor_ids(self) -> list[uuid.UUID]:
        rows = await self.db.execute(
            select(col(UserRow.id))
            .where(col(UserRow.role) == Role.supervisor.value, col(UserRow.is_active) == true())
            .order_by(col(UserRow.id))
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


def _message(r: MessageRow, key: CaseKey | None) -> Message:
    body = opened_text(key, r.body, "message.body", r.id) or ""
    return Message(r.id, r.consultation_id, r.author_id, MessageKind(r.kind), body, r.created_at)
