"""Repository of the consent ledger: append and read, nothing else."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.consents import ConsentAction, ConsentRecord, Purpose, Source
from infra.db.locks import lock_account
from infra.db.tables_consents import ConsentRow


def _record(row: ConsentRow) -> ConsentRecord:
    return ConsentRecord(
        id=row.id,
        user_id=row.user_id,
        purpose=Purpose(row.purpose),
        action=ConsentAction(row.action),
        source=Source(row.source),
        recorded_at=row.recorded_at,
        terms_version=row.terms_version,
        consultation_id=row.consultation_id,
        referral_id=row.referral_id,
        desk_code=row.desk_code,
    )


class SqlConsents:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, *records: ConsentRecord) -> None:
        """One flush, so one statement for all of them (intake's two consents were two)."""
        self.db.add_all(
            ConsentRow(
                id=record.id,
                user_id=record.user_id,
                purpose=record.purpose.value,
                action=record.action.value,
                source=record.source.value,
                recorded_at=record.recorded_at,
                terms_version=record.terms_version,
                consultation_id=record.consultation_id,
                referral_id=record.referral_id,
                desk_code=record.desk_code,
            )
            for record in records
        )
        await self.db.flush()

    async def for_user(self, user_id: uuid.UUID) -> list[ConsentRecord]:
        """Oldest first: the domain reads the history in the order it was written."""
        rows = await self.db.execute(
            select(ConsentRow)
            .where(col(ConsentRow.user_id) == user_id)
            .order_by(col(ConsentRow.recorded_at), col(ConsentRow.id))
        )
        return [_record(r) for r in rows.scalars()]

    async def lock(self, user_id: uuid.UUID) -> None:
        """The person's account row stands for their ledger (the ledger itself only grows, so it has no row to
        lock): infra/db/consultations.py `lock_account`, first in the one lock order."""
        await lock_account(self.db, user_id)
