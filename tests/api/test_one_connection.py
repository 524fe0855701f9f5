"""One connection per request (issue 12): every route of the authorization matrix, run against an app whose
pool holds ONE connection and no overflow. A request that checked out a second connection while holding the
first (an audit record, a throttle count or a lookup in its own session) would wait for itself and answer 503
after the pool timeout; the checkout counter also fails it at once, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import event, func, select

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take
from tests.api.test_authorization_matrix import MATRIX, Row, prepare
from tests.conftest import make_settings


class Checkouts:
    """Connections held at once, and the most seen since the last reset."""

    def __init__(self) -> None:
        self.held = 0
        self.peak = 0

    def attach(self, engine) -> None:  # type: ignore[no-untyped-def]
        event.listen(engine.sync_engine, "checkout", self._out)
        event.listen(engine.sync_engine, "checkin", self._in)

    def _out(self, *_: object) -> None:
        self.held += 1
        self.peak = max(self.peak, self.held)

    def _in(self, *_: object) -> None:
        self.held -= 1

    def reset(self) -> None:
        self.peak = self.held


@pytest.fixture(scope="module")
async def container(database_url, smtp_server, suite_clock):  # type: ignore[no-untyped-def]
    from infra.container import build_container

    settings = make_settings(database_url, smtp_server[1], database_pool_size=1, database_timeout_seconds=2.0)
    c = build_container(settings, suite_clock)
    pool = c.engine.sync_engine.pool
    assert pool.size() == 1 and pool._max_overflow == 0  # type: ignore[attr-defined]
    c.checkouts = Checkouts()  # type: ignore[attr-defined]
    c.checkouts.attach(c.engine)  # type: ignore[attr-defined]
    yield c
    await c.close()


@pytest.fixture(scope="module")
def app(container):  # type: ignore[no-untyped-def]
    from api.main import create_app

    return create_app(container=container)


def success_actors(row: Row) -> list[str]:
    """Per route, the callers that reach its use case: a staff member (the audited path) and a person or
    anonymous caller when the route lets one through; else the first caller it refuses."""
    ok = [a for a, status in row.expected.items() if status < 400 or status in (404, 409, 422)]
    staff = [a for a in ok if a in ("supervisor", "consultant", "legal_advisor", "council", "admin")]
    others = [a for a in ok if a not in staff]
    chosen = staff[:1] + others[:1]
    return chosen or [next(iter(row.expected))]


CASES = [(row, actor) for row in MATRIX for actor in success_actors(row)]


@pytest.mark.parametrize(("row", "actor"), CASES, ids=[f"{r.method} {r.path} {a}" for r, a in CASES])
async def test_no_request_holds_a_second_connection(row: Row, actor: str, client, people, container) -> None:  # type: ignore[no-untyped-def]
    path, headers, request = await prepare(row, actor, client, people, container)

    container.checkouts.reset()
    response = await client.request(row.method, path, headers=headers, **request)
    assert response.status_code == row.expected[actor], (actor, response.text)
    assert container.checkouts.peak <= 1, (
        f"{row.method} {row.path} held {container.checkouts.peak} connections"
    )
    assert container.checkouts.held == 0


async def test_a_staff_read_commits_its_audit_record_with_the_read(client, people, container) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables_quality import AuditEventRow

    owner = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    supervisor = await people.create(Role.supervisor)
    container.checkouts.reset()
    read = await client.get(f"/v1/consultations/{cid}", headers=supervisor.headers)
    assert read.status_code == 200
    assert container.checkouts.peak == 1
    async with container.sessions() as db:
        actions = (
            await db.execute(
                select(AuditEventRow.action, AuditEventRow.actor_id).where(AuditEventRow.object_id == cid)
            )
        ).all()
    # Intake is on the trail too now (the chain of custody starts with it); the read is the supervisor's.
    assert sorted(actions, key=lambda a: a[0]) == [
        ("consultation.created", owner.id),
        ("consultation.read", supervisor.id),
    ]


async def test_a_change_that_rolls_back_leaves_no_audit_record(client, people, container) -> None:  # type: ignore[no-untyped-def]
    """The supervisor's close is refused (the case is not answered yet): the read that preceded the refusal
    inside the same unit of work leaves no trail entry claiming a change was looked at."""
    from infra.db.tables_quality import AuditEventRow

    owner = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    supervisor = await people.create(Role.supervisor)
    await take(client, supervisor, cid)
    async with container.sessions() as db:
        before = await db.scalar(select(func.count()).select_from(AuditEventRow))
    stale = await client.post(
        f"/v1/consultations/{cid}/close", headers={**supervisor.headers, "If-Match": '"v999"'}
    )
    assert stale.status_code == 412
    async with container.sessions() as db:
        after = await db.scalar(select(func.count()).select_from(AuditEventRow))
    assert after == before


async def test_a_pool_timeout_answers_503_and_is_logged_without_personal_data(
    client, people, container, caplog
) -> None:  # type: ignore[no-untyped-def]
    import logging

    person = await people.create(email="pool-timeout-佐藤@example.jp")
    caplog.set_level(logging.WARNING, logger="madoguchi.api")
    async with container.engine.connect() as held:  # the pool's one connection, taken by someone else
        await held.execute(select(1))
        response = await client.get("/v1/me", headers=person.headers)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
    logged = [r for r in caplog.records if r.getMessage() == "database unavailable"]
    assert len(logged) == 1
    assert logged[0].cause == "pool_timeout"  # type: ignore[attr-defined]
    assert logged[0].request_id == response.json()["request_id"]  # type: ignore[attr-defined]
    assert all("佐藤" not in str(vars(r)) and person.email not in str(vars(r)) for r in caplog.records)


class Statements:
    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.seen: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(statement)

    async def during(self, call):  # type: ignore[no-untyped-def]
        self.seen = []
        response = await call
        return response, list(self.seen)


@pytest.fixture(scope="module")
def statements(container):  # type: ignore[no-untyped-def]
    return Statements(container.engine)


async def test_the_review_queue_reads_its_cases_in_one_statement(client, people, statements) -> None:  # type: ignore[no-untyped-def]
    """It read one consultation per waiting draft (N+1): the same statements for one draft as for three."""
    supervisor = await people.create(Role.supervisor)
    advisor = await people.create(Role.legal_advisor)

    async def waiting_draft() -> None:
        cid = (await open_consultation(client, await people.create()))["id"]  # identify_poster: needs review
        await take(client, supervisor, cid)
        draft = await client.post(
            f"/v1/consultations/{cid}/answers", headers=supervisor.headers, json={"body": "回答案"}
        )
        submitted = await client.post(
            f"/v1/consultations/{cid}/answers/{draft.json()['id']}/submit", headers=supervisor.headers
        )
        assert submitted.status_code == 200, submitted.text

    await waiting_draft()
    one, with_one = await statements.during(client.get("/v1/reviews", headers=advisor.headers))
    await waiting_draft()
    await waiting_draft()
    three, with_three = await statements.during(client.get("/v1/reviews", headers=advisor.headers))
    assert len(one.json()["items"]) == 1 and len(three.json()["items"]) == 3
    assert len(with_three) == len(with_one)


async def test_the_letter_review_queue_opens_the_advice_of_many_cases_with_one_key_statement(
    client, people, statements
) -> None:  # type: ignore[no-untyped-def]
    """A letter back in the queue shows the advice it was returned with, sealed with its own case's key: the
    keys of every case on the page are read together, not one statement per letter."""
    from tests.api.test_letters import complete, evidence, letter

    advisor = await people.create(Role.legal_advisor)
    advice = "投稿者は元交際相手の可能性があります。推測の部分は削ってください。"

    async def returned_and_resubmitted() -> str:
        owner = await people.create()
        cid = (await open_consultation(client, owner, desired_outcomes=["delete"]))["id"]
        made = await letter(client, owner, cid, complete("disclosure", [await evidence(client, owner, cid)]))
        base = f"/v1/consultations/{cid}/letters/{made['id']}"
        assert (await client.post(base + "/submit", headers=owner.headers)).status_code == 200
        returned = await client.post(
            f"/v1/letter-reviews/{made['id']}",
            headers=advisor.headers,
            json={"decision": "returned", "advice": advice},
        )
        assert returned.status_code == 200, returned.text
        revision = {k: v for k, v in complete("disclosure", [await evidence(client, owner, cid, 2)]).items()}
        revision.pop("kind")
        assert (
            await client.post(base + "/versions", headers=owner.headers, json=revision)
        ).status_code == 200
        assert (await client.post(base + "/submit", headers=owner.headers)).status_code == 200
        return made["id"]  # type: ignore[no-any-return]

    def advice_of(response, ids: list[str]) -> list[list[str | None]]:  # type: ignore[no-untyped-def]
        items = {q["letter"]["id"]: q["letter"] for q in response.json()["items"]}
        return [[r["advice"] for r in items[i]["reviews"]] for i in ids]

    first = [await returned_and_resubmitted()]
    one, with_one = await statements.during(client.get("/v1/letter-reviews", headers=advisor.headers))
    assert advice_of(one, first) == [[advice]]
    more = first + [await returned_and_resubmitted(), await returned_and_resubmitted()]
    three, with_three = await statements.during(client.get("/v1/letter-reviews", headers=advisor.headers))
    assert advice_of(three, more) == [[advice]] * 3
    keys = [s for s in with_three if s.lstrip().startswith("SELECT case_key.")]
    assert len(with_three) == len(with_one) and len(keys) == 1, keys


async def test_intake_reads_the_desk_directory_only_when_it_changed(client, people, statements) -> None:  # type: ignore[no-untyped-def]
    """The emergency desks were read in full from the database on every intake. They are public reference
    data: kept per directory stamp, and an edit shows at the next intake."""
    from tests.api.consultation_helpers import intake

    person = await people.create()
    supervisor = await people.create(Role.supervisor)

    def directory_reads(seen: list[str]) -> list[str]:
        return [s for s in seen if "desk_version.data" in s]

    await client.post("/v1/consultations", headers=person.headers, json=intake())  # fills the cache
    again, seen = await statements.during(
        client.post("/v1/consultations", headers=person.headers, json=intake(title="二件目の相談"))
    )
    assert again.status_code == 201 and directory_reads(seen) == []
    assert "police_110" in {d["code"] for d in again.json()["emergency_desks"]}

    version = (await client.get("/v1/desks/police_110/versions", headers=supervisor.headers)).json()[-1]
    edited = await client.patch(
        "/v1/desks/police_110",
        headers={**supervisor.headers, "If-Match": f'"v{version["version"]}"'},
        json={"hours_ja": "24時間・年中無休・確認済み"},
    )
    assert edited.status_code == 200, edited.text
    after, seen = await statements.during(
        client.post("/v1/consultations", headers=person.headers, json=intake(title="三件目の相談"))
    )
    assert directory_reads(seen) != []
    police = next(d for d in after.json()["emergency_desks"] if d["code"] == "police_110")
    assert police["hours_ja"] == "24時間・年中無休・確認済み"


async def test_intake_sends_no_more_statements_than_it_needs(client, people, statements, container) -> None:  # type: ignore[no-untyped-def]
    """Intake's statements on the engine (PostgreSQL: the account lock, the hour's count after it (in a
    statement of its own: tests/api/test_consulter_bounds.py), key, case, categories, consents in one,
    transition, desk stamp, custody head and link, audit: 11; SQLite also sends the session lookup and its
    lock's write through it: 13). Its two consents were two INSERTs; a new case's categories were first
    deleted (it has none), and its new chain's head was inserted, then updated to its first link."""
    from tests.api.consultation_helpers import intake

    person = await people.create()
    await client.post("/v1/consultations", headers=person.headers, json=intake())  # fills the desk cache
    made, seen = await statements.during(
        client.post("/v1/consultations", headers=person.headers, json=intake(title="二件目の相談"))
    )
    assert made.status_code == 201
    assert len([s for s in seen if s.lstrip().startswith("INSERT INTO consent ")]) == 1
    assert not [s for s in seen if s.lstrip().startswith(("DELETE", "UPDATE custody_head"))], seen
    assert len(seen) <= (11 if container.engine.dialect.name == "postgresql" else 13), seen


@pytest.fixture
def wire(statements, monkeypatch):  # type: ignore[no-untyped-def]
    """What a request sends to the database, in order: the engine's statements, the session lookup sent on
    asyncpg's own connection ("lookup"), and PostgreSQL's BEGIN / COMMIT / ROLLBACK (asyncpg's Transaction)."""
    import asyncpg.connection
    import asyncpg.transaction

    def counting(cls, method: str, label: str) -> None:  # type: ignore[no-untyped-def]
        original = getattr(cls, method)

        async def wrapper(self, *a, **k):  # type: ignore[no-untyped-def]
            statements.seen.append(label)
            return await original(self, *a, **k)

        monkeypatch.setattr(cls, method, wrapper)

    counting(asyncpg.connection.Connection, "fetchrow", "lookup")
    for method in ("start", "commit", "rollback"):
        counting(asyncpg.transaction.Transaction, method, method.upper())
    return statements


async def assign(client, supervisor, cid: str, consultant) -> None:  # type: ignore[no-untyped-def]
    tag = (await client.get(f"/v1/consultations/{cid}", headers=supervisor.headers)).headers["etag"]
    assigned = await client.post(
        f"/v1/consultations/{cid}/assign",
        headers={**supervisor.headers, "If-Match": tag},
        json={"assignee_id": str(consultant.id)},
    )
    assert assigned.status_code == 200, assigned.text


def kinds(seen: list[str]) -> list[tuple[str, ...]]:
    """Each statement as its verb and the tables it names first: (SELECT, its FROM), (INSERT, its table),
    (WITH, the CTE's table, the main statement's table); ("lookup",) and the transaction's labels as they are."""
    shown: list[tuple[str, ...]] = []
    for s in seen:
        words = s.split()
        if words[0] == "WITH":
            shown.append(("WITH", words[words.index("INTO") + 1], words[words.index("INTO", 6) + 1]))
        elif words[0] == "SELECT":
            shown.append(("SELECT", words[words.index("FROM") + 1]))
        elif words[0] == "INSERT":
            shown.append(("INSERT", words[2]))
        else:
            shown.append(tuple(words))
    return shown


async def test_the_assigned_consultants_read_sends_three_statements(client, people, container, wire) -> None:  # type: ignore[no-untyped-def]
    """The read GET /v1/consultations/{id} as the assigned consultant, with its audit record (issue 12). It
    sent six on PostgreSQL: the session lookup, the case, then BEGIN, the record's INSERT, its custody link's
    INSERT and COMMIT. The record and the link now go in one statement, in autocommit, as the read's whole
    transaction: three, with the record committed before the answer. SQLite keeps the transaction."""
    from infra.db.tables_custody import CustodyPendingRow
    from infra.db.tables_quality import AuditEventRow

    owner = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    consultant = await people.create(Role.consultant)
    await assign(client, await people.create(Role.supervisor), cid, consultant)
    await client.get(f"/v1/consultations/{cid}", headers=consultant.headers)  # warm (first-use caches)

    read, seen = await wire.during(client.get(f"/v1/consultations/{cid}", headers=consultant.headers))
    assert read.status_code == 200 and read.json()["id"] == cid
    if container.engine.dialect.name == "postgresql":
        assert kinds(seen) == [
            ("lookup",),
            ("SELECT", "consultation"),
            ("WITH", "audit_event", "custody_pending"),  # WITH … AS (INSERT INTO audit_event …) INSERT …
        ]
    else:  # the lookup through the engine; the record, then its link, in pysqlite's own transaction
        assert kinds(seen) == [
            ("SELECT", "auth_session"),
            ("SELECT", "consultation"),
            ("INSERT", "audit_event"),
            ("INSERT", "custody_pending"),
        ]
    async with container.sessions() as db:
        reads = (
            await db.execute(
                select(AuditEventRow.actor_id, AuditEventRow.actor_role, AuditEventRow.detail).where(
                    AuditEventRow.object_id == cid, AuditEventRow.action == "consultation.read"
                )
            )
        ).all()
        links = (
            await db.execute(
                select(
                    CustodyPendingRow.actor_id, CustodyPendingRow.client, CustodyPendingRow.object_id
                ).where(CustodyPendingRow.action == "consultation.read")
            )
        ).all()
    assert reads.count((consultant.id, "consultant", {})) == 2
    assert links.count((consultant.id, "staff", cid)) == 2


async def test_a_read_whose_audit_record_cannot_be_written_answers_an_error_without_the_case(
    app, client, people, container
) -> None:  # type: ignore[no-untyped-def]
    """The database itself refuses the record (PostgreSQL: a CHECK constraint, SQLite: a trigger, both
    refusing this case's reads only): the read answers a problem+json 500 with nothing of the case, leaves no
    record and no custody link, and hands its one connection back for the next request."""
    from sqlalchemy import text

    from infra.db.tables_custody import CustodyPendingRow
    from infra.db.tables_quality import AuditEventRow

    owner = await people.create()
    case = await open_consultation(client, owner)
    cid = case["id"]
    consultant = await people.create(Role.consultant)
    await assign(client, await people.create(Role.supervisor), cid, consultant)
    postgres = container.engine.dialect.name == "postgresql"
    refuse, allow = (
        (
            f"ALTER TABLE audit_event ADD CONSTRAINT test_refuses_{cid[:8]} CHECK (NOT (object_id = '{cid}' "
            f"AND action = 'consultation.read' AND actor_id = '{consultant.id}'))",
            f"ALTER TABLE audit_event DROP CONSTRAINT test_refuses_{cid[:8]}",
        )
        if postgres
        else (
            f"CREATE TRIGGER test_refuses_{cid[:8]} BEFORE INSERT ON audit_event "
            f"WHEN NEW.object_id = '{cid}' AND NEW.action = 'consultation.read' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END",
            f"DROP TRIGGER test_refuses_{cid[:8]}",
        )
    )

    async def reads_of_the_case() -> tuple[int, int]:
        async with container.sessions() as db:
            records = await db.scalar(
                select(func.count())
                .select_from(AuditEventRow)
                .where(AuditEventRow.object_id == cid, AuditEventRow.actor_id == consultant.id)
            )
            links = await db.scalar(
                select(func.count())
                .select_from(CustodyPendingRow)
                .where(CustodyPendingRow.object_id == cid, CustodyPendingRow.actor_id == consultant.id)
            )
        return int(records or 0), int(links or 0)

    async with container.engine.begin() as conn:
        await conn.execute(text(refuse))
    try:
        container.checkouts.reset()
        # Not through the contract's recorder: an internal error is no documented answer of the route.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as unrecorded:
            refused = await unrecorded.get(f"/v1/consultations/{cid}", headers=consultant.headers)
    finally:
        async with container.engine.begin() as conn:
            await conn.execute(text(allow))
    assert refused.status_code == 500
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "internal_error"
    assert "etag" not in refused.headers
    assert case["title"] not in refused.text and case["narrative"] not in refused.text
    assert set(refused.json()) == {"type", "title", "status", "code", "instance", "request_id"}
    assert await reads_of_the_case() == (0, 0)
    assert container.checkouts.peak == 1 and container.checkouts.held == 0

    again = await client.get(f"/v1/consultations/{cid}", headers=consultant.headers)
    assert again.status_code == 200 and again.json()["title"] == case["title"]
    assert await reads_of_the_case() == (1, 1)
