"""A perpetrator with the victim's e-mail address: account requests reveal nothing (not even by their cost),
the centre cannot be used to flood the victim's inbox, and guessing cannot lock the owner out (issue 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from domain.actors import Role
from domain.calendar import JST
from infra.db.tables import EmailTokenRow, OutboxRow, UserRow
from tests.conftest import ON_BOTH_COUNTER_STORES, PASSWORD, assert_problem

WRONG = "まちがえたパスワード"
# Every test here is about counters: each runs on the database and on Redis.
pytestmark = ON_BOTH_COUNTER_STORES


@pytest.fixture
def clock(clock):  # type: ignore[no-untyped-def]
    """The suite's clock, set to an exact instant: windows of 15 and 60 minutes are crossed by moving it."""
    clock.set(datetime(2026, 12, 3, 9, 30, tzinfo=JST))  # a Thursday morning in Tokyo
    return clock


@asynccontextmanager
async def client_at(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """A client whose requests come from `address`, as uvicorn reports it behind a trusted proxy."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def sign_in(app, address: str, email: str, password: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    async with client_at(app, address) as http:
        return await http.post("/v1/auth/token", data={"username": email, "password": password})


def same(response: httpx.Response) -> tuple[int, dict]:  # type: ignore[type-arg]
    return response.status_code, response.json()


async def count(container, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def outbox_payloads(container) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        rows = (await db.execute(select(OutboxRow).order_by(OutboxRow.created_at))).scalars().all()
        return [(row.kind, str(row.payload)) for row in rows]


# -- 13.4: known and unknown addresses cost the request the same ---------------------------------


async def test_reset_request_does_the_same_work_for_every_address_and_the_worker_completes_it(
    client, container, mailbox, people
) -> None:
    person = await people.create()
    unknown = "shiranai.hito@example.jp"
    known_answer = await client.post("/v1/auth/password-reset", json={"email": person.email})
    unknown_answer = await client.post("/v1/auth/password-reset", json={"email": unknown})
    assert known_answer.status_code == 202 and same(known_answer) == same(unknown_answer)
    # In the request: no token minted, one outbox row each, of one kind, with no address readable in it.
    assert await count(container, EmailTokenRow) == 0
    queued = await outbox_payloads(container)
    assert [kind for kind, _ in queued] == ["account.password_reset"] * 2
    assert all(person.email not in payload and unknown not in payload for _, payload in queued)

    # One worker pass decides, mints and mails; the unknown address is dropped without a word.
    await container.worker.run_once()
    assert mailbox.to(unknown) == []
    assert len(mailbox.to(person.email)) == 1
    new_password = "夜明け前の駅で始発を待った"
    confirm = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": mailbox.token_for(person.email), "password": new_password},
    )
    assert confirm.status_code == 204
    login = await client.post("/v1/auth/token", data={"username": person.email, "password": new_password})
    assert login.status_code == 200
    # Nothing is left waiting: the requests are done, their sealed payloads dropped.
    async with container.sessions() as db:
        rows = (await db.execute(select(OutboxRow))).scalars().all()
    assert all(row.sent_at is not None and row.payload is None for row in rows)


async def test_registration_does_the_same_work_for_every_address_and_the_worker_decides(
    client, container, mailbox, people
) -> None:
    known = await people.create()
    new = "hajimete.no.hito@example.jp"
    answers = []
    for address in (known.email, new):
        response = await client.post(
            "/v1/auth/register",
            json={"email": address, "password": "朝焼けの空に飛ぶ鳥たち", "display_name": "花子"},
        )
        answers.append(same(response))
    assert answers[0] == answers[1] and answers[0][0] == 202
    # The request created no account and minted nothing: it queued one sealed row, like the known one.
    assert await count(container, UserRow, UserRow.email == new) == 0
    assert await count(container, EmailTokenRow) == 0
    queued = await outbox_payloads(container)
    assert [kind for kind, _ in queued] == ["account.registration"] * 2
    assert all(new not in payload and known.email not in payload for _, payload in queued)

    await container.worker.run_once()
    assert "すでに登録済み" in mailbox.body(mailbox.to(known.email)[-1])
    verify = await client.post("/v1/auth/verify-email", json={"token": mailbox.token_for(new)})
    assert verify.status_code == 204
    login = await client.post("/v1/auth/token", data={"username": new, "password": "朝焼けの空に飛ぶ鳥たち"})
    assert login.status_code == 200


# -- 13.5: mails per recipient are capped -------------------------------------------------------


async def test_reset_mails_to_one_address_are_capped_whoever_asks(
    app, container, mailbox, people, clock
) -> None:
    victim = await people.create()
    cap = 3  # MADOGUCHI_MAIL_PER_RECIPIENT_PER_HOUR's default
    answers = set()
    for i in range(10):  # from four client addresses, as a perpetrator rotating networks would
        async with client_at(app, f"203.0.113.{i % 4 + 1}") as http:
            response = await http.post("/v1/auth/password-reset", json={"email": victim.email})
            answers.add((response.status_code, response.text))
    async with client_at(app, "203.0.113.1") as http:
        unknown = await http.post("/v1/auth/password-reset", json={"email": "daremo.inai@example.jp"})
    # Every answer is the same, capped or not, and the same as for an address with no account.
    assert answers == {(unknown.status_code, unknown.text)} and unknown.status_code == 202

    await container.worker.run_once()
    assert len(mailbox.to(victim.email)) == cap == container.settings.mail_per_recipient_per_hour

    # The cap is per hour: an hour later the owner can ask again.
    clock.advance(timedelta(minutes=61))
    async with client_at(app, "198.51.100.20") as http:
        await http.post("/v1/auth/password-reset", json={"email": victim.email})
    await container.worker.run_once()
    assert len(mailbox.to(victim.email)) == cap + 1


async def test_registration_mails_to_one_address_are_capped(app, container, mailbox, people, clock) -> None:
    known = await people.create()
    pending = "mada.kakunin.shiteinai@example.jp"
    for i in range(6):
        async with client_at(app, f"192.0.2.{i + 1}") as http:
            for address in (known.email, pending):
                response = await http.post(
                    "/v1/auth/register", json={"email": address, "password": "川沿いの道を自転車で走った"}
                )
                assert response.status_code == 202
    await container.worker.run_once()
    # "Already registered" notes to the owner and verification links to the pending address alike.
    assert len(mailbox.to(known.email)) == 3
    assert len(mailbox.to(pending)) == 3


# -- 13.7: guessing is bounded, and never locks the owner out ------------------------------------


async def test_a_strangers_failures_do_not_lock_the_owner_out(app, container, people, clock) -> None:
    owner = await people.create()
    statuses = [(await sign_in(app, "203.0.113.66", owner.email, WRONG)).status_code for _ in range(12)]
    # The attacker's address is bounded: ten checked guesses, then 429.
    assert statuses == [401] * 10 + [429] * 2
    blocked = await sign_in(app, "203.0.113.66", owner.email, WRONG)
    body = assert_problem(blocked, 429, "too_many_attempts")
    assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60 and "401" not in str(
        {k: v for k, v in body.items() if k != "request_id"}
    )
    # The owner, from their own network, signs in with their password at once.
    assert (await sign_in(app, "198.51.100.7", owner.email, PASSWORD)).status_code == 200
    # The attacker's address gets its guesses back only when its window ends.
    clock.advance(timedelta(minutes=16))
    assert (await sign_in(app, "203.0.113.66", owner.email, WRONG)).status_code == 401


async def test_rotating_addresses_get_one_guess_each_once_the_account_is_under_attack(
    app, container, people, clock
) -> None:
    owner = await people.create()
    per_account = container.settings.login_max_failures_per_account
    checked: dict[str, int] = {}
    addresses = [f"203.0.113.{i}" for i in range(1, 13)]
    for n, address in enumerate(addresses):
        for _ in range(11 if n < 2 else 3):
            response = await sign_in(app, address, owner.email, WRONG)
            assert response.status_code in (401, 429)
            checked[address] = checked.get(address, 0) + (response.status_code == 401)
    # The first address is stopped by its own limit (10), the second by the account's (20 attempts in all,
    # the first address's refused one included); every later address gets exactly one checked guess: the
    # total grows by one per address, not by ten.
    assert per_account == 20
    assert [checked[a] for a in addresses] == [10, 9] + [1] * 10
    # Even the right password is not checked from an address that already failed here ...
    assert_problem(await sign_in(app, addresses[5], owner.email, PASSWORD), 429, "too_many_attempts")
    # ... while the owner, from an address with no failures, gets in during the attack.
    assert (await sign_in(app, "198.51.100.7", owner.email, PASSWORD)).status_code == 200
    # Signing in does not lift the attack state for the attacker's next fresh address.
    fresh = [(await sign_in(app, "203.0.113.200", owner.email, WRONG)).status_code for _ in range(3)]
    assert fresh == [401, 429, 429]
    # An unknown account behaves exactly alike: the throttle says nothing about existence.
    ghost = "inai.hito@example.jp"
    for n, address in enumerate(addresses):
        for _ in range(11 if n < 2 else 3):
            await sign_in(app, address.replace("203.0.113", "192.0.2"), ghost, WRONG)
    ghost_fresh = [(await sign_in(app, "192.0.2.200", ghost, WRONG)).status_code for _ in range(3)]
    assert ghost_fresh == fresh
    # When the account's window ends, the attack state ends with it.
    clock.advance(timedelta(minutes=61))
    statuses = [(await sign_in(app, "203.0.113.201", owner.email, WRONG)).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]


async def test_one_ipv6_network_counts_as_one_client(app, container, people, clock) -> None:
    owner = await people.create()
    for address in ("203.0.113.1", "203.0.113.2"):  # the account is now under attack
        for _ in range(11):
            await sign_in(app, address, owner.email, WRONG)
    # One host holds a whole /64: moving to the next address in it is not a fresh client.
    statuses = [
        (await sign_in(app, f"2001:db8:5:7::{i + 1:x}", owner.email, WRONG)).status_code for i in range(6)
    ]
    assert statuses == [401] + [429] * 5
    assert (await sign_in(app, "2001:db8:5:8::1", owner.email, PASSWORD)).status_code == 200


async def test_a_reset_clears_every_clients_failures_on_the_account(
    app, client, container, mailbox, people, clock
) -> None:
    owner = await people.create()
    for _ in range(11):
        await sign_in(app, "203.0.113.9", owner.email, WRONG)
    assert (await sign_in(app, "203.0.113.9", owner.email, PASSWORD)).status_code == 429
    await client.post("/v1/auth/password-reset", json={"email": owner.email})
    await container.worker.run_once()
    new_password = "港の灯りを遠くに眺めた夕暮れ"
    await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": mailbox.token_for(owner.email), "password": new_password},
    )
    assert (await sign_in(app, "203.0.113.9", owner.email, new_password)).status_code == 200


async def test_staff_accounts_follow_the_same_rules(app, container, people, clock) -> None:
    staff = await people.create(Role.consultant)
    for i in range(3):
        for _ in range(11):
            await sign_in(app, f"203.0.113.{i + 50}", staff.email, WRONG)
    assert (await sign_in(app, "198.51.100.8", staff.email, PASSWORD)).status_code == 200
