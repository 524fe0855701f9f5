"""What a unit of work's transaction guarantees. On PostgreSQL it begins at its first statement that writes or
locks (infra/db/engine.py `BeginAtFirstWrite`), so a unit of work that only reads sends no BEGIN and no
ROLLBACK; everything from that first write or lock on is one transaction, committed or rolled back whole, and
a lock taken after plain reads is held until the commit. The same properties hold on SQLite, where they are
checked the same way (its write lock stands for the row lock)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from domain.actors import Role
from infra.db.locks import lock_account
from infra.db.tables import UserRow
from tests.conftest import PASSWORD


@pytest.fixture
def transactions(container, monkeypatch) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """PostgreSQL: every start, commit and rollback of a transaction on asyncpg's connections, in order."""
    seen: list[str] = []
    if container.engine.dialect.name == "postgresql":
        from asyncpg.transaction import Transaction

        for name in ("start", "commit", "rollback"):
            original = getattr(Transaction, name)

            async def counted(self, *a, _original=original, _name=name, **k):  # type: ignore[no-untyped-def]
                seen.append(_name)
                return await _original(self, *a, **k)

            monkeypatch.setattr(Transaction, name, counted)
    yield seen


async def account(container) -> uuid.UUID:  # type: ignore[no-untyped-def]
    user = await container.accounts.create_user_directly(
        email=f"tx-{uuid.uuid4().hex[:8]}@example.jp", role=Role.consulter, password=PASSWORD
    )
    return user.id


async def display_name(container, user_id: uuid.UUID) -> str | None:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return (await db.execute(select(UserRow.display_name).where(UserRow.id == user_id))).scalar_one()  # type: ignore[no-any-return]


async def another_connection_can_lock(container, user_id: uuid.UUID) -> bool:  # type: ignore[no-untyped-def]
    """Whether a second connection could take the account's lock right now (without waiting for it)."""
    if container.engine.dialect.name == "sqlite":
        path = make_url(container.settings.database_url).database
        raw = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")  # the database's write lock, which SQLite's lock_account takes
            raw.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            raw.close()
    async with container.engine.connect() as other:
        try:
            await other.execute(
                text("SELECT 1 FROM app_user WHERE id = :id FOR NO KEY UPDATE NOWAIT"), {"id": user_id}
            )
            return True
        except DBAPIError:
            return False


async def test_a_read_only_unit_of_work_opens_no_transaction_and_a_write_opens_one(
    container, transactions
) -> None:  # type: ignore[no-untyped-def]
    user_id = await account(container)
    transactions.clear()
    async with container.sessions() as db:
        found = (await db.execute(select(UserRow.email).where(UserRow.id == user_id))).scalar_one()
        again = (await db.execute(select(UserRow.role).where(UserRow.id == user_id))).scalar_one()
    assert found.startswith("tx-") and again == Role.consulter.value
    assert transactions == []  # PostgreSQL: no BEGIN, no ROLLBACK (SQLite: nothing is recorded)

    async with container.sessions() as db:
        await db.execute(select(UserRow.email).where(UserRow.id == user_id))
        await db.execute(update(UserRow).where(UserRow.id == user_id).values(display_name="窓口 花子"))
        await db.commit()
    assert await display_name(container, user_id) == "窓口 花子"
    if container.engine.dialect.name == "postgresql":
        assert transactions == ["start", "commit"]


async def test_a_lock_taken_after_plain_reads_is_held_until_the_commit(container) -> None:  # type: ignore[no-untyped-def]
    """Were the locking statement run outside a transaction, like the reads before it, its lock would end with
    the statement and a second connection could take it at once."""
    user_id = await account(container)
    async with container.sessions() as db:
        await db.execute(select(UserRow.email).where(UserRow.id == user_id))
        assert await lock_account(db, user_id)
        assert not await another_connection_can_lock(container, user_id)
        await db.commit()
    assert await another_connection_can_lock(container, user_id)


async def test_a_unit_of_work_that_read_first_and_then_failed_leaves_none_of_its_writes(container) -> None:  # type: ignore[no-untyped-def]
    user_id = await account(container)
    with pytest.raises(RuntimeError):
        async with container.consultations.uow() as uow:
            db = uow.db
            await db.execute(select(UserRow.email).where(UserRow.id == user_id))
            await db.execute(update(UserRow).where(UserRow.id == user_id).values(display_name="書き換え"))
            await db.execute(select(UserRow.display_name).where(UserRow.id == user_id))
            await db.execute(update(UserRow).where(UserRow.id == user_id).values(locale="en"))
            raise RuntimeError("the use case failed after its writes")
    assert await display_name(container, user_id) is None
    async with container.sessions() as db:
        locale = (await db.execute(select(UserRow.locale).where(UserRow.id == user_id))).scalar_one()
    assert locale == "ja"
