"""The chain of custody on SQL: appended in the caller's transaction under a lock on the chain's head row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
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


class SqlCustody:
    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def _locked_head(self, consultation_id: uuid.UUID, now: datetime) -> tuple[int, str]:
        """The head row, created on a chain's first event, locked until this transaction ends.

        PostgreSQL: INSERT … ON CONFLICT DO NOTHING waits for a concurrent first insert to commit, and
        SELECT … FOR UPDATE waits for the other writer and then reads its committed head (READ COMMITTED),
        so two events on one consultation line up instead of forking. SQLite: the insert opens the write
        transaction, which SQLite runs one at a time (busy_timeout waits for the other). Either way the
        primary key (consultation_id, seq) refuses a second link n outright."""
        dialect = self.db.get_bind().dialect.name
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.db.execute(
            make(CustodyHeadRow)
            .values(consultation_id=consultation_id, seq=0, hash=GENESIS, updated_at=now)
            .on_conflict_do_nothing(index_elements=["consultation_id"])
        )
        query = select(col(CustodyHeadRow.seq), col(CustodyHeadRow.hash)).where(
            col(CustodyHeadRow.consultation_id) == consultation_id
        )
        if dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.db.execute(query)).one()
        return int(row.seq), str(row.hash)

    async def append(
        self,
        actor: Actor | None,
        consultation_id: uuid.UUID,
        action: str,
        object_type: str,
        object_id: object,
        detail: dict[str, Any] | None = None,
    ) -> Link:
        now = self.clock.now()
        seq, prev = await self._locked_head(consultation_id, now)
        link = Link(
            consultation_id=consultation_id,
            seq=seq + 1,
            at=now,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            actor_role=actor.role.value if actor and actor.role else None,
            actor_id=actor.user_id if actor else None,
            client=actor.client.value if actor else None,
            detail=check_detail(dict(detail or {})),
            prev_hash=prev,
        )
        digest = link_hash(prev, link)
        await self.db.execute(
            insert(CustodyLinkRow).values(
                consultation_id=consultation_id,
                seq=link.seq,
                at=now,
                action=action,
                object_type=object_type,
                object_id=link.object_id,
                actor_role=link.actor_role,
                actor_id=link.actor_id,
                client=link.client,
                detail=link.detail,
                prev_hash=prev,
                hash=digest,
            )
        )
        moved = await self.db.execute(
            update(CustodyHeadRow)
            .where(col(CustodyHeadRow.consultation_id) == consultation_id, col(CustodyHeadRow.seq) == seq)
            .values(seq=link.seq, hash=digest, updated_at=now)
        )
        if affected(moved) != 1:
            raise RuntimeError("custody head moved under its lock")  # never: the lock and the key forbid it
        return replace(link, hash=digest)

    async def head(self, consultation_id: uuid.UUID) -> Head | None:
        row = (
            await self.db.execute(
                select(CustodyHeadRow).where(col(CustodyHeadRow.consultation_id) == consultation_id)
            )
        ).scalar_one_or_none()
        return Head(row.consultation_id, row.seq, row.hash, row.updated_at) if row else None

    async def links(self, consultation_id: uuid.UUID) -> list[Link]:
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
        """Heads that moved since their last stamp (or were never stamped)."""
        rows = (
            (await self.db.execute(select(CustodyHeadRow).where(col(CustodyHeadRow.seq) > 0))).scalars().all()
        )
        out: list[Head] = []
        for row in rows:
            last = (
                await self.db.execute(
                    select(col(CustodyStampRow.seq))
                    .where(col(CustodyStampRow.consultation_id) == row.consultation_id)
                    .order_by(col(CustodyStampRow.seq).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if last is None or last < row.seq:
                out.append(Head(row.consultation_id, row.seq, row.hash, row.updated_at))
            if len(out) >= limit:
                break
        return out
