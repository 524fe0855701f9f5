"""The chain of custody on SQL: appended in the caller's transaction under a lock on the chain's head row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.actors import Actor
from domain.custody import GENESIS, Head, Link, Stamp, check_detail, link_hash
from domain.ports import Clock
from infra.db.engine import affected
from infra.db.tables_custody import CustodyHeadRow, CustodyLinkRow, CustodyStampRow


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
class _Queued:
    actor: Actor | None
    consultation_id: uuid.UUID
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]


class SqlCustody:
    """Links are queued as events happen and written at the unit of work's commit (`flush`), each chain's head
    locked once for all of its links: the head's lock, which lines up every writer of a chain, is then held
    for the commit's round trip only, not for the rest of the request (a staff read locked the case's chain
    from its first statement to its commit, so reads of one case ran one at a time for a whole request
    each), and it is always the last lock a transaction takes, after the account and the case. Links still
    commit or roll back with their event; reading a chain writes the queued links first."""

    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.queued: list[_Queued] = []

    async def _locked_head(self, consultation_id: uuid.UUID, now: datetime) -> tuple[int, str]:
        """The head row (created on a chain's first event) in one statement, locked until this transaction
        ends: INSERT … ON CONFLICT DO UPDATE … RETURNING waits for a concurrent writer of the same head and
        then returns the committed head (PostgreSQL, READ COMMITTED); SQLite runs one write transaction at a
        time. Either way the primary key (consultation_id, seq) refuses a second link n outright."""
        dialect = self.db.get_bind().dialect.name
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            make(CustodyHeadRow)
            .values(consultation_id=consultation_id, seq=0, hash=GENESIS, updated_at=now)
            .on_conflict_do_update(index_elements=["consultation_id"], set_={"updated_at": now})
            .returning(col(CustodyHeadRow.seq), col(CustodyHeadRow.hash))
        )
        row = (await self.db.execute(statement)).one()
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
        checked = check_detail(dict(detail or {}))
        self.queued.append(_Queued(actor, consultation_id, action, object_type, str(object_id), checked))

    async def flush(self) -> list[Link]:
        """Writes the queued links, chains in a fixed order (by id) so two transactions never wait on each
        other's heads in opposite orders."""
        queued, self.queued = self.queued, []
        written: list[Link] = []
        for consultation_id in sorted({q.consultation_id for q in queued}, key=str):
            now = self.clock.now()
            seq, prev = await self._locked_head(consultation_id, now)
            links = []
            for q in (q for q in queued if q.consultation_id == consultation_id):
                seq += 1
                link = Link(
                    consultation_id=consultation_id,
                    seq=seq,
                    at=now,
                    action=q.action,
                    object_type=q.object_type,
                    object_id=q.object_id,
                    actor_role=q.actor.role.value if q.actor and q.actor.role else None,
                    actor_id=q.actor.user_id if q.actor else None,
                    client=q.actor.client.value if q.actor else None,
                    detail=q.detail,
                    prev_hash=prev,
                )
                prev = link_hash(prev, link)
                links.append(replace(link, hash=prev))
            await self.db.execute(
                insert(CustodyLinkRow),
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
            moved = await self.db.execute(
                update(CustodyHeadRow)
                .where(col(CustodyHeadRow.consultation_id) == consultation_id)
                .values(seq=seq, hash=prev, updated_at=now)
            )
            if affected(moved) != 1:
                raise RuntimeError("custody head vanished under its lock")  # never: the lock forbids it
            written += links
        return written

    async def head(self, consultation_id: uuid.UUID) -> Head | None:
        await self.flush()
        row = (
            await self.db.execute(
                select(CustodyHeadRow).where(col(CustodyHeadRow.consultation_id) == consultation_id)
            )
        ).scalar_one_or_none()
        return Head(row.consultation_id, row.seq, row.hash, row.updated_at) if row else None

    async def links(self, consultation_id: uuid.UUID) -> list[Link]:
        await self.flush()
        rows = (
            await self.db.execute(
                select(CustodyLinkRow)
                .where(col(CustodyLinkRow.consultation_id) == consultation_id)
                .order_by(col(CustodyLinkRow.seq))
            )
        ).scalars()
        return [_link(r) for r in rows]

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
