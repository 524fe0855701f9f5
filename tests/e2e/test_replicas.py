"""Several replicas on one database (issue 19.1): two `madoguchi serve` processes and two `madoguchi worker`
processes on loopback, driven alternately as a load balancer would. Sessions, refresh rotation (with reuse
detection), idempotency, rate limits and throttles hold across replicas, with the counters in the database and
in Redis; every outbox row and LINE event is delivered exactly once across the two workers; a worker killed
with SIGKILL in the middle of a batch is taken over by the other within one lease.

It runs on SQLite too: the API processes and workers share the one database file (SQLite's locking serialises
the writers; the workers' leases are conditional UPDATEs, not row locks), which is how a single-host deployment
with several uvicorn workers runs. Production replicas use PostgreSQL (--db postgres in CI)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from domain.actors import Role
from infra.db.line import SqlLineDeliveries, SqlLineUsers
from infra.db.tables import OutboxRow
from infra.db.tables_line import LineDeliveryRow, LineInboxRow
from tests.conftest import ON_BOTH_COUNTER_STORES, PASSWORD
from tests.e2e.conftest import start_server, stop_server, wait_until_ready
from tests.integration import test_worker_kill
from tests.integration.fake_line import ACCESS_TOKEN, CHANNEL_SECRET, line_user_id, payload, sign, text_event
from tests.integration.test_worker_kill import LEASE_SECONDS, kill, start_worker, wait_for

# The worker-kill test's slow SMTP server and fake LINE (40 ms per message, so a kill lands mid-batch).
slow_smtp = test_worker_kill.slow_smtp
fake_line = test_worker_kill.fake_line

pytestmark = pytest.mark.e2e
LOGIN_FAILURES = 3
TRIAGE_PER_MINUTE = 4


@pytest.fixture
async def replicas(settings, slow_smtp, fake_line, container) -> AsyncIterator[list[httpx.AsyncClient]]:  # type: ignore[no-untyped-def]
    """Two API processes on the test database (and the container's counter store), started side by side."""
    env = {
        "MADOGUCHI_SECRET_KEY": settings.secret_key.get_secret_value(),  # one key for every replica and worker
        "MADOGUCHI_WORKER_IN_PROCESS": "false",
        "MADOGUCHI_LOGIN_MAX_FAILURES": str(LOGIN_FAILURES),
        "MADOGUCHI_TRIAGE_PER_MINUTE": str(TRIAGE_PER_MINUTE),
        "MADOGUCHI_LINE_CHANNEL_SECRET": CHANNEL_SECRET,
        "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
        "MADOGUCHI_LINE_API_BASE_URL": fake_line.url,
        "MADOGUCHI_LINE_DATA_API_BASE_URL": fake_line.url,
        "MADOGUCHI_STORAGE_DIR": str(settings.storage_dir),
        "MADOGUCHI_LOG_LEVEL": "WARNING",
    }
    if container.redis is not None:
        env["MADOGUCHI_REDIS_URL"] = container.settings.redis_url.get_secret_value()
        env["MADOGUCHI_REDIS_PREFIX"] = container.settings.redis_prefix
    started = [
        start_server(settings.database_url, slow_smtp[1], "https://madoguchi.example.jp", **env) for _ in "ab"
    ]
    try:
        for process, base in started:
            await asyncio.to_thread(wait_until_ready, process, base)
        clients = [httpx.AsyncClient(base_url=base, timeout=30) for _, base in started]
        try:
            yield clients
        finally:
            for client in clients:
                await client.aclose()
    finally:
        for process, _ in started:
            stop_server(process)


@ON_BOTH_COUNTER_STORES
async def test_sessions_refresh_idempotency_and_limits_hold_across_replicas(replicas, container) -> None:  # type: ignore[no-untyped-def]
    a, b = replicas
    email = f"replica-{uuid.uuid4().hex[:8]}@example.jp"
    await container.accounts.create_user_directly(email=email, role=Role.consulter, password=PASSWORD)

    # A session made on one replica is known to the other.
    signed_in = await a.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    tokens = signed_in.json()
    assert (
        await b.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    ).status_code == 200

    # Refresh rotation: rotated on B; the old refresh token replayed on A is reuse, which ends the family,
    # so the token B just issued is dead on B too.
    rotated = await b.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    replayed = await a.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replayed.status_code == 401
    dead = await b.post("/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
    assert dead.status_code == 401

    # Idempotency: the same create sent to A and then to B makes one consultation, and B answers A's result.
    signed_in = await b.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    headers = {
        "Authorization": f"Bearer {signed_in.json()['access_token']}",
        "Idempotency-Key": uuid.uuid4().hex,
    }
    from tests.api.consultation_helpers import intake

    body = intake()
    first = await a.post("/v1/consultations", headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = await b.post("/v1/consultations", headers=headers, json=body)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    listed = await a.get("/v1/consultations", headers={"Authorization": headers["Authorization"]})
    assert [c["id"] for c in listed.json()["items"] if c["id"] == first.json()["id"]] == [first.json()["id"]]

    # Sign-in throttling counts failures of both replicas together: the limit is reached alternately.
    wrong = {"username": email, "password": "ちがうパスワードです"}
    answers = [await (a, b)[n % 2].post("/v1/auth/token", data=wrong) for n in range(LOGIN_FAILURES + 1)]
    assert [r.status_code for r in answers[:LOGIN_FAILURES]] == [401] * LOGIN_FAILURES
    assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) > 0

    # A rate limit (triage per client per minute) is one budget across replicas.
    text = {"text": "SNSで私の写真が無断で投稿されています。削除してほしいです。"}
    triaged = [await (a, b)[n % 2].post("/v1/triage", json=text) for n in range(TRIAGE_PER_MINUTE + 1)]
    assert [r.status_code for r in triaged] == [200] * TRIAGE_PER_MINUTE + [429]


async def _queue(container, mails: int, pushes: int) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    addresses, retry_keys = [], []
    now = datetime.now(UTC)  # the workers run on the system clock
    for n in range(mails):
        email = f"replica-mail-{n}-{uuid.uuid4().hex[:6]}@example.jp"
        user = await container.accounts.create_user_directly(
            email=email, role=Role.consulter, password=PASSWORD
        )
        addresses.append(email)
        async with container.sessions() as db:
            db.add(
                OutboxRow(
                    id=uuid.uuid4(),
                    kind="mail.answer_published",
                    payload={"user_id": str(user.id), "consultation_id": str(uuid.uuid4())},
                    created_at=now + timedelta(microseconds=n),
                    next_attempt_at=now - timedelta(seconds=1),
                )
            )
            await db.commit()
    async with container.sessions() as db:
        for _ in range(pushes):
            user = line_user_id()
            await SqlLineUsers(db).seen(user, now)
            row = SqlLineDeliveries(db).add(
                purpose="answer_published",
                line_user_id=user,
                messages=[{"type": "text", "text": "相談への回答が届きました。マイページでご確認ください。"}],
                now=now - timedelta(seconds=1),
            )
            retry_keys.append(row.retry_key)
        await db.commit()
    return addresses, retry_keys


async def _undelivered(container) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        mail = await db.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None)))  # type: ignore[union-attr]
        line = await db.scalar(
            select(func.count()).select_from(LineDeliveryRow).where(LineDeliveryRow.status == "pending")
        )
        inbox = await db.scalar(
            select(func.count()).select_from(LineInboxRow).where(LineInboxRow.processed_at.is_(None))  # type: ignore[union-attr]
        )
    return int(mail or 0) + int(line or 0) + int(inbox or 0)


async def test_two_workers_deliver_everything_once_and_take_over_from_a_killed_one(
    replicas, container, settings, slow_smtp, fake_line
) -> None:  # type: ignore[no-untyped-def]
    mailbox, smtp_port = slow_smtp
    a, b = replicas
    addresses, retry_keys = await _queue(container, mails=12, pushes=8)

    # LINE events arrive through both replicas; LINE redelivers some of them, to the other replica.
    events = [text_event(line_user_id(), "こんにちは", timestamp=int(time.time() * 1000)) for _ in range(6)]
    for n, one in enumerate(events):
        body = payload(one)
        headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body)}
        for replica in (a, b) if n % 2 else (b, a):
            answered = await replica.post("/v1/line/webhook", content=body, headers=headers)
            assert answered.status_code == 200, answered.text

    workers = [start_worker(settings, smtp_port, fake_line.url) for _ in range(2)]
    try:

        async def drained() -> bool:
            return await _undelivered(container) == 0

        await wait_for(drained, "two workers to drain the outbox, the LINE deliveries and the inbox")
        # Exactly once across the two: every mail once, every LINE push accepted once and sent once (no
        # second attempt met LINE's retry-key refusal), every webhook event answered with one reply.
        assert Counter(mailbox.recipients) == Counter(dict.fromkeys(addresses, 1))
        pushes = fake_line.of("push")
        sent_keys = Counter(c.headers.get("x-line-retry-key") for c in pushes)
        assert set(sent_keys.values()) == {1} and set(retry_keys) <= set(sent_keys)
        # Each event is answered once: by a reply, or by a push when it waited past the reply window (the
        # workers start slowly on a loaded machine).
        for one in events:
            replies = [c for c in fake_line.of("reply") if c.body["replyToken"] == one["replyToken"]]
            late = [c for c in pushes if c.body.get("to") == one["source"]["userId"]]
            assert len(replies) + len(late) == 1, one["webhookEventId"]

        # A second batch; one worker is killed in the middle of it and the other takes over its rows.
        mailbox.recipients.clear()
        fake_line.reset()
        addresses, retry_keys = await _queue(container, mails=16, pushes=8)

        async def some_mail() -> bool:
            return len(mailbox.recipients) >= 3

        await wait_for(some_mail, "the second batch to get going")
        killed_at = await kill(workers[0])
        await wait_for(drained, "the surviving worker to finish the batch")
        finished_at = datetime.now(UTC)
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
        for process in workers:
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()

    received = Counter(mailbox.recipients)
    assert set(received) == set(addresses)  # nothing lost
    assert sum(received.values()) - len(addresses) <= 1  # one mail may repeat (test_worker_kill says why)
    accepted = Counter(c.headers.get("x-line-retry-key") for c in fake_line.sent())
    assert accepted == Counter(dict.fromkeys(retry_keys, 1))  # LINE accepted every push once
    assert finished_at > killed_at and LEASE_SECONDS < 5
