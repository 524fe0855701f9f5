"""The chain of custody on SQL: a change's links appended in its own transaction under a lock on the chain's head
row; a read's links waiting, in its own transaction, for the next writer of the chain."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.actors import Actor
from domain.custody import GENESIS, READS, Action, Head, Link, Stamp, check_detail, link_hash
from domain.ports import Clock
from infra.db.engine import affected
from infra.db.tables_custody import CustodyHeadRow, CustodyLinkRow, CustodyPendingRow, CustodyStampRow
from infra.db.types import table_of


def _link(row: Any) -> Link:
    return Link(
        consultation_id=row.consultation_id,
        seq=row.seq,
        at=row.at,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        actor_role=row.actor_role,
        actor_id=row.actor_id,
        client=row.client,
        detail=dict(row.detail or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@dataclass(frozen=True)
class _Event:
    """An event to chain: queued in this transaction, or a read another transaction left waiting."""

    consultation_id: uuid.UUID
    at: datetime
    action: str
    object_type: str
    object_id: str
    actor_role: str | None
    actor_id: uuid.UUID | None
    client: str | None
    detail: dict[str, Any]


_EVENT_FIELDS = [f.name for f in fields(_Event)]


def _waiting(event: _Event) -> dict[str, Any]:
    """A read's `custody_pending` row."""
    return {f: getattr(event, f) for f in _EVENT_FIELDS}


# Every write of a chain is one of these statements, built once with its values bound: building them per call
# (and the ORM's bulk insert of the links) was most of `flush`'s own CPU, on every change of a case.
_HEADS, _LINKS, _PENDING = table_of(CustodyHeadRow), table_of(CustodyLinkRow), table_of(CustodyPendingRow)
_NEW_HEAD = insert(_HEADS)
_NEW_LINKS = insert(_LINKS)
_NEW_PENDING = insert(_PENDING)
_MOVE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.consultation_id == bindparam("chain"))
    .values(seq=bindparam("to_seq"), hash=bindparam("to_hash"), updated_at=bindparam("now"))
)
_TAKE_PENDING = (
    delete(_PENDING)
    .where(_PENDING.c.consultation_id == bindparam("chain"))
    .returning(_PENDING.c.id, *(_PENDING.c[f] for f in _EVENT_FIELDS))
)


@functools.cache
def _take_head(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING of a chain's head, in the dialect's own syntax."""
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    now: BindParameter[datetime] = bindparam("now")
    return (
        make(_HEADS)
        .values(consultation_id=bindparam("chain"), seq=0, hash=GENESIS, updated_at=now)
        .on_conflict_do_update(index_elements=["consultation_id"], set_={"updated_at": now})
        .returning(_HEADS.c.seq, _HEADS.c.hash)
    )


class SqlCustody:
    """Links are queued as events happen and written at the unit of work's commit (`flush`), each chain's head
    locked once for all of its links: the head's lock, which lines up every writer of a chain, is then held
    for the commit's round trip only, and it is always the last lock a transaction takes, after the account
    and the case. A transaction that only reads a consultation (domain.custody.READS) does not take the head
    at all: its links wait in `custody_pending`, committed with the read, and the next writer of that chain
    (a change, the evidence bundle, the worker's pass) chains them in order before its own, under the lock.
    So reads of one case never wait on each other's commits (they did: 110 staff reads/s of one case at 64
    connections, each holding the head across its WAL flush), and a change still commits or rolls back with
    its links."""

    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.queued: list[_Event] = []

    async def _locked_head(self, consultation_id: uuid.UUID, now: datetime) -> tuple[int, str]:
        """The head row (created on a chain's first event) in one statement, locked until this transaction
        ends: INSERT … ON CONFLICT DO UPDATE … RETURNING waits for a concurrent writer of the same head and
        then returns the committed head (PostgreSQL, READ COMMITTED); SQLite runs one write transaction at a
        time. Either way the primary key (consultation_id, seq) refuses a second link n outright."""
        statement = _take_head(self.db.get_bind().dialect.name)
        row = (await self.db.execute(statement, {"chain": consultation_id, "now": now})).one()
        return int(row.seq), str(row.hash)

    def append(
        self,
        actor: Actor | None,
        consultation_id: uuid.UUID,
        action: str,
        object_type: str,
        object_id: object,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Queues a link (its detail checked now, so a bad one fails the event that carries it)."""
        self.queued.append(
            _Event(
                consultation_id=consultation_id,
                at=self.clock.now(),
                action=action,
                object_type=object_type,
                object_id=str(object_id),
                actor_role=actor.role.value if actor and actor.role else None,
                actor_id=actor.user_id if actor else None,
                client=actor.client.value if actor else None,
                detail=check_detail(dict(detail or {})),
            )
        )

    async def flush(self, *, settle: Collection[uuid.UUID] = ()) -> list[Link]:
        """Writes what was queued: a chain that only saw reads gets waiting rows (one statement for all of
        them); a chain with a change, or named in `settle`, is extended under its head's lock with the reads
        waiting for it and then its own events. Chains are locked in a fixed order (by id), so two
        transactions never wait on each other's heads in opposite orders. Returns the links written."""
        queued, self.queued = self.queued, []
        chains: dict[uuid.UUID, list[_Event]] = {cid: [] for cid in settle}
        for event in queued:
            chains.setdefault(event.consultation_id, []).append(event)
        reads_only = {
            cid
            for cid, events in chains.items()
            if cid not in settle and all(e.action in READS for e in events)
        }
        if reads_only:
            await self.db.execute(_NEW_PENDING, [_waiting(e) for cid in reads_only for e in chains[cid]])
        written: list[Link] = []
        for cid in sorted(chains.keys() - reads_only, key=str):
            written += await self._extend(cid, chains[cid])
        return written

    def waiting_rows(self) -> list[dict[str, Any]] | None:
        """What `flush` would write now when every queued event is a read: the `custody_pending` rows, each
        chain's in the order its events happened (none when nothing is queued), for the caller to write in a
        statement of its own (infra/db/quality.py `DbAuditLog.commit_alone`); None when a chain must be
        extended under its head. Writes nothing and leaves the queue as it is (`clear` empties it)."""
        chains: dict[uuid.UUID, list[_Event]] = {}
        for event in self.queued:
            if event.action not in READS:
                return None
            chains.setdefault(event.consultation_id, []).append(event)
        return [_waiting(e) for events in chains.values() for e in events]

    def clear(self) -> None:
        """Forgets the queue, once the caller has written what `waiting_rows` gave it."""
        self.queued = []

    async def _take_waiting(self, consultation_id: uuid.UUID) -> list[_Event]:
        """The reads waiting for this chain, removed in the statement that reads them (the caller holds the
        head, so no other transaction takes them; one committed after this statement waits for the next)."""
        rows = await self.db.execute(_TAKE_PENDING, {"chain": consultation_id})
        return [
            _Event(**{f: getattr(r, f) for f in _EVENT_FIELDS}) for r in sorted(rows, key=lambda r: int(r.id))
        ]

    async def _extend(self, consultation_id: uuid.UUID, events: list[_Event]) -> list[Link]:
        now = self.clock.now()
        # A new case's chain starts in this transaction: no head to take and nothing can have been read before
        # the case existed, so its head is written once, already at its last link (a head that somehow
        # existed would fail the insert on its primary key rather than fork the chain).
        new_chain = bool(events) and events[0].action == Action.consultation_created
        if new_chain:
            seq, prev = 0, GENESIS
        else:
            seq, prev = await self._locked_head(consultation_id, now)
            events = [*await self._take_waiting(consultation_id), *events]
        if not events:
            return []
        links = []
        for event in events:
            seq += 1
            link = Link(
                consultation_id=consultation_id,
                seq=seq,
                at=event.at,
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                actor_role=event.actor_role,
                actor_id=event.actor_id,
                client=event.client,
                detail=event.detail,
                prev_hash=prev,
            )
            prev = link_hash(prev, link)
            links.append(replace(link, hash=prev))
        if new_chain:
            await self.db.execute(
                _NEW_HEAD, {"consultation_id": consultation_id, "seq": seq, "hash": prev, "updated_at": now}
            )
        await self.db.execute(
            _NEW_LINKS,
            [
                {
                    "consultation_id": consultation_id,
                    "seq": link.seq,
                    "at": link.at,
                    "action": link.action,
                    "object_type": link.object_type,
                    "object_id": link.object_id,
                    "actor_role": link.actor_role,
                    "actor_id": link.actor_id,
                    "client": link.client,
                    "detail": link.detail,
                    "prev_hash": link.prev_hash,
                    "hash": link.hash,
                }
                for link in links
            ],
        )
        if new_chain:
            return links
        moved = await self.db.execute(
            _MOVE_HEAD, {"chain": consultation_id, "to_seq": seq, "to_hash": prev, "now": now}
        )
        if affected(moved) != 1:
            raise RuntimeError("custody head vanished under its lock")  # never: the lock forbids it
        return links

    async def head(self, consultation_id: uuid.UUID) -> Head | None:
        """The head after this transaction's own events (as `links`, after `links`, gives the same chain)."""
        await self.flush()
        return await self.stored_head(consultation_id)

    async def links(self, consultation_id: uuid.UUID) -> list[Link]:
        """The whole chain as of now: this transaction's events and every read waiting for it chained first,
        the head then held until the transaction ends."""
        await self.flush(settle={consultation_id})
        return await self.stored_links(consultation_id)

    async def stored_head(self, consultation_id: uuid.UUID) -> Head | None:
        row = (
            await self.db.execute(
                select(CustodyHeadRow).where(col(CustodyHeadRow.consultation_id) == consultation_id)
            )
        ).scalar_one_or_none()
        return Head(row.consultation_id, row.seq, row.hash, row.updated_at) if row else None

    async def stored_links(self, consultation_id: uuid.UUID) -> list[Link]:
        """The chain as stored, writing nothing (the check of every chain reads this way, taking no lock)."""
        rows = (
            await self.db.execute(
                select(CustodyLinkRow)
                .where(col(CustodyLinkRow.consultation_id) == consultation_id)
                .order_by(col(CustodyLinkRow.seq))
            )
        ).scalars()
        return [_link(r) for r in rows]

    async def waiting_chains(self, limit: int) -> list[uuid.UUID]:
        """Consultations with reads waiting to be chained, oldest first."""
        first = func.min(col(CustodyPendingRow.id))
        rows = await self.db.execute(
            select(col(CustodyPendingRow.consultation_id))
            .group_by(col(CustodyPendingRow.consultation_id))
            .order_by(first)
            .limit(limit)
        )
        return list(rows.scalars())

    async def waiting(self, consultation_id: uuid.UUID | None = None) -> int:
        """How many reads wait to be chained (of one consultation, or of all)."""
        query = select(func.count()).select_from(CustodyPendingRow)
        if consultation_id is not None:
            query = query.where(col(CustodyPendingRow.consultation_id) == consultation_id)
        return int((await self.db.execute(query)).scalar_one())

    async def chain_ids(self) -> list[uuid.UUID]:
        """Every consultation with a head or a link (a chain whose head was deleted still shows)."""
        heads = (await self.db.execute(select(col(CustodyHeadRow.consultation_id)))).scalars().all()
        linked = (
            (await self.db.execute(select(col(CustodyLinkRow.consultation_id)).distinct())).scalars().all()
        )
        return sorted({*heads, *linked}, key=str)

    async def stamps(self, consultation_id: uuid.UUID) -> list[Stamp]:
        rows = (
            await self.db.execute(
                select(CustodyStampRow)
                .where(col(CustodyStampRow.consultation_id) == consultation_id)
                .order_by(col(CustodyStampRow.seq), col(CustodyStampRow.stamped_at))
            )
        ).scalars()
        return [Stamp(r.consultation_id, r.seq, r.hash, r.token, r.stamped_at, r.tsa_url) for r in rows]

    async def add_stamp(self, stamp: Stamp) -> None:
        self.db.add(
            CustodyStampRow(
                id=uuid.uuid4(),
                consultation_id=stamp.consultation_id,
                seq=stamp.seq,
                hash=stamp.hash,
                token=stamp.token,
                stamped_at=stamp.stamped_at,
                tsa_url=stamp.tsa_url,
            )
        )

    async def unstamped_heads(self, limit: int = 500) -> Sequence[Head]:
        """Heads that moved since their last stamp (or were never stamped), in one statement."""
        last_stamp = (
            select(func.max(col(CustodyStampRow.seq)))
            .where(col(CustodyStampRow.consultation_id) == col(CustodyHeadRow.consultation_id))
            .correlate(CustodyHeadRow)
            .scalar_subquery()
        )
        rows = await self.db.execute(
            select(CustodyHeadRow)
            .where(
                col(CustodyHeadRow.seq) > 0, or_(last_stamp.is_(None), last_stamp < col(CustodyHeadRow.seq))
            )
            .order_by(col(CustodyHeadRow.updated_at))
            .limit(limit)
        )
        return [Head(r.consultation_id, r.seq, r.hash, r.updated_at) for r in rows.scalars()]
