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
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from domain.actors import Actor, Client, Role
from infra.db.custody import SqlCustody
from infra.db.locks import lock_account
from infra.db.tables import UserRow
from infra.db.tables_custody import CustodyPendingRow
from infra.db.tables_quality import AuditEventRow
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


# A staff read's audit record (issue 12): when a unit of work's records, and their reads' waiting custody links,
# are all it writes, PostgreSQL gets them in ONE statement sent in autocommit, with no BEGIN and no COMMIT
# (infra/db/quality.py `DbAuditLog.commit_alone`); anything else keeps the one transaction. SQLite keeps its
# transaction throughout; the same outcomes are checked there.


@pytest.fixture
def statements(container) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every statement the engine sends through a cursor, in order."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(container.engine.sync_engine, "before_cursor_execute", note)
    yield seen
    event.remove(container.engine.sync_engine, "before_cursor_execute", note)


def staff() -> Actor:
    return Actor(Client.staff, uuid.uuid4(), role=Role.consultant)


async def trail(container, object_id: object) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        rows = await db.execute(
            select(AuditEventRow.action, AuditEventRow.object_type)
            .where(AuditEventRow.object_id == str(object_id))
            .order_by(AuditEventRow.at, AuditEventRow.action)
        )
        return [(r.action, r.object_type) for r in rows]


async def waiting_links(container, consultation_id: uuid.UUID) -> list[tuple[str, str | None, dict]]:  # type: ignore[type-arg,no-untyped-def]
    async with container.sessions() as db:
        rows = await db.execute(
            select(CustodyPendingRow)
            .where(CustodyPendingRow.consultation_id == consultation_id)
            .order_by(CustodyPendingRow.id)  # type: ignore[arg-type]
        )
        return [(r.action, r.client, r.detail) for r in rows.scalars()]


async def test_a_read_whose_records_are_all_it_writes_commits_them_in_one_statement(
    container, transactions, statements
) -> None:  # type: ignore[no-untyped-def]
    cid, reader = uuid.uuid4(), staff()
    async with container.consultations.uow() as uow:
        await uow.db.execute(select(UserRow.id).limit(1))  # the read itself
        await uow.audit.record(reader, "consultation.read", "consultation", cid)
        await uow.audit.record(reader, "evidence.viewed", "evidence", "e-1", consultation_id=cid)
        transactions.clear()
        statements.clear()
    sent, began = list(statements), list(transactions)
    assert await trail(container, cid) == [("consultation.read", "consultation")]
    assert await trail(container, "e-1") == [("evidence.viewed", "evidence")]
    assert await waiting_links(container, cid) == [
        ("consultation.read", "staff", {}),
        ("evidence.viewed", "staff", {}),
    ]
    if container.engine.dialect.name == "postgresql":
        assert began == []  # no BEGIN, no COMMIT: the statement was the whole transaction
        assert len(sent) == 1, sent
        assert sent[0].startswith("WITH audit_written AS (INSERT INTO audit_event ")
        assert ") INSERT INTO custody_pending " in sent[0]
    else:
        # The usual commit: the records, then the links, in one transaction.
        assert [s.split(" (")[0] for s in sent] == ["INSERT INTO audit_event", "INSERT INTO custody_pending"]


async def test_records_of_no_case_commit_in_one_insert(container, transactions, statements) -> None:  # type: ignore[no-untyped-def]
    user_id, reader = uuid.uuid4(), staff()
    async with container.consultations.uow() as uow:
        await uow.audit.record(reader, "user.viewed", "user", user_id)
        await uow.audit.record(reader, "user.exported", "user", user_id)
        transactions.clear()
        statements.clear()
    sent, began = list(statements), list(transactions)
    assert sorted(await trail(container, user_id)) == [("user.exported", "user"), ("user.viewed", "user")]
    if container.engine.dialect.name == "postgresql":
        assert began == []
        assert len(sent) == 1 and sent[0].startswith("INSERT INTO audit_event "), sent
        assert sent[0].count("), (") == 1  # both records, as two rows of one VALUES


async def test_a_use_case_that_raises_after_recording_leaves_no_record_and_sends_nothing(
    container, transactions, statements
) -> None:  # type: ignore[no-untyped-def]
    cid = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with container.consultations.uow() as uow:
            await uow.db.execute(select(UserRow.id).limit(1))
            await uow.audit.record(staff(), "consultation.read", "consultation", cid)
            transactions.clear()
            statements.clear()
            raise RuntimeError("the use case failed after its read was recorded")
    assert statements == [] and transactions == []  # nothing sent after the read
    assert await trail(container, cid) == [] and await waiting_links(container, cid) == []


async def test_a_unit_of_work_that_writes_and_audits_does_both_in_one_transaction(
    container, transactions
) -> None:  # type: ignore[no-untyped-def]
    user_id, cid = await account(container), uuid.uuid4()
    transactions.clear()
    async with container.consultations.uow() as uow:
        await uow.db.execute(update(UserRow).where(UserRow.id == user_id).values(display_name="窓口 花子"))
        await uow.audit.record(staff(), "consultation.read", "consultation", cid)
    began = list(transactions)
    assert await display_name(container, user_id) == "窓口 花子"
    assert await trail(container, cid) == [("consultation.read", "consultation")]
    if container.engine.dialect.name == "postgresql":
        assert began == ["start", "commit"]

    with pytest.raises(RuntimeError):
        async with container.consultations.uow() as uow:
            await uow.db.execute(update(UserRow).where(UserRow.id == user_id).values(display_name="書き換え"))
            await uow.audit.record(staff(), "consultation.read", "consultation", cid)
            raise RuntimeError("the use case failed after its write and its record")
    assert await display_name(container, user_id) == "窓口 花子"
    assert await trail(container, cid) == [("consultation.read", "consultation")]  # only the first


async def test_a_read_that_took_a_lock_commits_its_record_in_its_transaction(container, transactions) -> None:  # type: ignore[no-untyped-def]
    user_id, cid = await account(container), uuid.uuid4()
    transactions.clear()
    async with container.consultations.uow() as uow:
        assert await lock_account(uow.db, user_id)
        await uow.audit.record(staff(), "consultation.read", "consultation", cid)
    began = list(transactions)
    assert await trail(container, cid) == [("consultation.read", "consultation")]
    if container.engine.dialect.name == "postgresql":
        assert began == ["start", "commit"]


async def test_reads_committed_alone_are_chained_in_their_order_by_the_next_change(container) -> None:  # type: ignore[no-untyped-def]
    cid, reader = uuid.uuid4(), staff()
    async with container.consultations.uow() as uow:
        await uow.audit.record(reader, "consultation.changed", "consultation", cid, {"n": 0})
    for n in (1, 2, 3):
        async with container.consultations.uow() as uow:
            await uow.audit.record(reader, "consultation.read", "consultation", cid, {"n": n})
    assert [d["n"] for _, _, d in await waiting_links(container, cid)] == [1, 2, 3]
    async with container.consultations.uow() as uow:
        await uow.audit.record(reader, "consultation.changed", "consultation", cid, {"n": 4})
    report = await container.custody.verify(cid)
    assert report.breaks == [] and report.links == 5 and report.waiting == 0
    async with container.sessions() as db:
        chain = await SqlCustody(db, container.clock).stored_links(cid)
    assert [(link.seq, link.action, link.detail["n"]) for link in chain] == [
        (1, "consultation.changed", 0),
        (2, "consultation.read", 1),
        (3, "consultation.read", 2),
        (4, "consultation.read", 3),
        (5, "consultation.changed", 4),
    ]


async def test_a_rollback_forgets_the_records_and_links_not_yet_written(container) -> None:  # type: ignore[no-untyped-def]
    cid, reader = uuid.uuid4(), staff()
    async with container.consultations.uow() as uow:
        await uow.audit.record(reader, "consultation.read", "consultation", cid)
        await uow.rollback()
        await uow.audit.record(reader, "evidence.viewed", "evidence", "e-2", consultation_id=cid)
        await uow.commit()
    assert await trail(container, cid) == []
    assert await trail(container, "e-2") == [("evidence.viewed", "evidence")]
    assert [action for action, _, _ in await waiting_links(container, cid)] == ["evidence.viewed"]
