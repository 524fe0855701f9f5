"""Row locks held until commit, and the one order they are taken in."""

from __future__ import annotations

import uuid
from typing import Any

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
    row = await locked_account(db, user_id)
    return row is not None and bool(row[0])


async def locked_account(db: AsyncSession, user_id: uuid.UUID, *also: Any) -> tuple[Any, ...] | None:
    """`lock_account`'s statement: the account row's `is_active` and the `also` columns (e.g. a scalar
    subquery the caller needs under the lock, read in the same round trip); None if there is no such row.
    Only the account row is locked (`OF app_user`), not the rows the subqueries read."""
    query = select(col(UserRow.is_active), *also).where(col(UserRow.id) == user_id)
    if db.get_bind().dialect.name == "sqlite":
        await db.execute(update(UserRow).where(col(UserRow.id) == user_id).values(id=col(UserRow.id)))
    else:
        query = query.with_for_update(key_share=True, of=UserRow)
    row = (await db.execute(query)).one_or_none()
    return None if row is None else tuple(row)
