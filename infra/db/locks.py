"""Row locks held until commit, and the one order they are taken in."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db.tables import ConsultationRow, UserRow
from infra.db.types import table_of

# The statements are built once (building them per call was most of a lock's CPU); `row` is the id.
_CASES, _ACCOUNTS = table_of(ConsultationRow), table_of(UserRow)
# SQLite has no row locks and the driver opens its transaction only at the first write: a write that changes
# nothing takes the database's write lock instead.
_TOUCH_CASE = update(_CASES).where(_CASES.c.id == bindparam("row")).values(id=_CASES.c.id)
_LOCK_CASE = select(_CASES.c.id).where(_CASES.c.id == bindparam("row")).with_for_update()
_TOUCH_ACCOUNT = update(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("row")).values(id=_ACCOUNTS.c.id)
_ACTIVE = select(_ACCOUNTS.c.is_active).where(_ACCOUNTS.c.id == bindparam("row"))
_LOCK_ACCOUNT = _ACTIVE.with_for_update(key_share=True)


async def lock_consultation(db: AsyncSession, consultation_id: uuid.UUID) -> None:
    """Hold the consultation row until commit, so what is counted or checked next cannot change before the
    write. PostgreSQL: `SELECT … FOR UPDATE`; SQLite: a write that changes nothing."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    await db.execute(_TOUCH_CASE if sqlite else _LOCK_CASE, {"row": consultation_id})


# Lock order, everywhere a transaction takes more than one: the account row (lock_account: intake, consents,
# erasure), then the consultation row (lock_consultation: holds, retention, erasure), then the chain's custody
# head (infra/db/custody.py, taken by the audit record). Taken in this order only, two transactions never wait
# for each other in a cycle.
async def lock_account(db: AsyncSession, user_id: uuid.UUID) -> bool:
    """Hold the account row until commit (PostgreSQL `FOR NO KEY UPDATE`, which lets rows referencing it be
    written; SQLite: a write that changes nothing takes the database's write lock); whether it is active."""
    if db.get_bind().dialect.name == "sqlite":
        await db.execute(_TOUCH_ACCOUNT, {"row": user_id})
        query = _ACTIVE
    else:
        query = _LOCK_ACCOUNT
    return bool((await db.execute(query, {"row": user_id})).scalar_one_or_none())
