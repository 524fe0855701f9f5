"""Row locks held until commit, and the one order they are taken in."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from infra.db.tables import ConsultationRow, UserRow


async def lock_consultation(db: AsyncSession, consultation_id: uuid.UUID) -> None:
    """Hold the consultation row until commit, so what is counted or checked next cannot change before the
    write. PostgreSQL: `SELECT … FOR UPDATE`. SQLite has no row locks and the driver opens its transaction only
    at the first write: a write that changes nothing takes the database's write lock here instead."""
    if db.get_bind().dialect.name == "sqlite":
        await db.execute(
            update(ConsultationRow)
            .where(col(ConsultationRow.id) == consultation_id)
            .values(id=col(ConsultationRow.id))
        )
    else:
        await db.execute(
            select(col(ConsultationRow.id))
            .where(col(ConsultationRow.id) == consultation_id)
            .with_for_update()
        )


# Lock order, everywhere a transaction takes more than one: the account row (lock_account: intake, consents,
# erasure), then the consultation row (lock_consultation: holds, retention, erasure), then the chain's custody
# head (infra/db/custody.py, taken by the audit record). Taken in this order only, two transactions never wait
# for each other in a cycle.
async def lock_account(db: AsyncSession, user_id: uuid.UUID) -> bool:
    """Hold the account row until commit (PostgreSQL `FOR NO KEY UPDATE`, which lets rows referencing it be
    written; SQLite: a write that changes nothing takes the database's write lock); whether it is active."""
    if db.get_bind().dialect.name == "sqlite":
        await db.execute(update(UserRow).where(col(UserRow.id) == user_id).values(id=col(UserRow.id)))
        query = select(col(UserRow.is_active)).where(col(UserRow.id) == user_id)
    else:
        query = (
            select(col(UserRow.is_active)).where(col(UserRow.id) == user_id).with_for_update(key_share=True)
        )
    return bool((await db.execute(query)).scalar_one_or_none())
