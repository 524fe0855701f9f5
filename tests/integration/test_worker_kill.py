"""Killing `madoguchi worker` with SIGKILL in the middle of a drain (issue 13.11), as an operator's crash would:
real worker processes against the test database, a loopback SMTP server and the fake LINE server.

What must hold: nothing is lost, no LINE message is sent twice, at most one mail per kill is sent twice, and
the rows a dead worker held are free again within one lease.

Why one mail per kill cannot be avoided: SMTP has no idempotency key. A worker that is killed after the server
answered 250 to DATA but before it wrote `sent_at` leaves a row that looks unsent; the next worker must send it
again (or risk losing it), and nothing in SMTP lets it ask the server whether that message already arrived.
Each worker works one row at a time and records it before the next send, so that window holds one mail. LINE
pushes carry `X-Line-Retry-Key`, so LINE itself refuses the second copy (409), and an interrupted reply is never
followed by a push.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from domain.actors import Role
from infra.db.line import SqlLineDeliveries, SqlLineUsers
from infra.db.tables import OutboxRow
from infra.db.tables_line import LineDeliveryRow
from infra.settings import Settings
from tests.conftest import PASSWORD, free_port
from tests.integration.fake_line import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine, line_user_id

# The worker processes run on the system clock (a subprocess cannot share the suite's pinned clock), so the rows
# this test queues and the leases it checks use it too; nothing here depends on the hour, day or zone.
LEASE_SECONDS = 1.5
MAILS = 24
PUSHES = 16


class SlowMailbox:
    """Takes 40 ms per message, so a kill lands in the middle of a drain."""

    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        await asyncio.sleep(0.04)
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def slow_smtp() -> Iterator[tuple[SlowMailbox, int]]:
    mailbox = SlowMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
async def fake_line() -> AsyncIterator[FakeLine]:
    async with FakeLine.running() as fake:
        fake.delay_seconds = 0.04
        yield fake


def start_worker(settings, smtp_port: int, line_url: str) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "MADOGUCHI_ENV": "test",
        "MADOGUCHI_DATABASE_URL": settings.database_url,
        "MADOGUCHI_SECRET_KEY": settings.secret_key.get_secret_value(),
        "MADOGUCHI_MAIL_BACKEND": "smtp",
        "MADOGUCHI_SMTP_HOST": "127.0.0.1",
        "MADOGUCHI_SMTP_PORT": str(smtp_port),
        "MADOGUCHI_WORKER_POLL_SECONDS": "0.1",
        "MADOGUCHI_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "MADOGUCHI_LINE_CHANNEL_SECRET": CHANNEL_SECRET,
        "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
        "MADOGUCHI_LINE_API_BASE_URL": line_url,
        "MADOGUCHI_LINE_DATA_API_BASE_URL": line_url,
        "MADOGUCHI_LINE_RETRY_BASE_SECONDS": "0",
        "MADOGUCHI_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(  # noqa: S603 - our own console script
        [sys.executable, "-m", "infra.cli", "worker"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for(condition, what: str, within: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """Poll `condition`; `within` only bounds a hang (worker start-up is slow on a loaded machine)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def kill(process: subprocess.Popen[bytes]) -> datetime:
    process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(process.wait)
    return datetime.now(UTC)


async def leases(container) -> list[datetime]:  # type: ignore[no-untyped-def]
    """The leases unfinished rows still carry."""
    async with container.sessions() as db:
        mail = await db.scalars(
            select(OutboxRow.locked_until).where(
                OutboxRow.sent_at.is_(None),  # type: ignore[union-attr]
                OutboxRow.locked_until.is_not(None),  # type: ignore[union-attr]
            )
        )
        line = await db.scalars(
            select(LineDeliveryRow.locked_until).where(
                LineDeliveryRow.status == "pending",
                LineDeliveryRow.locked_until.is_not(None),  # type: ignore[union-attr]
            )
        )
        found = [*mail, *line]
    return [t if t.tzinfo else t.replace(tzinfo=UTC) for t in found]


async def test_sigkill_mid_drain_loses_nothing_and_repeats_no_line_message(
    container, settings, slow_smtp, fake_line
) -> None:  # type: ignore[no-untyped-def]
    mailbox, smtp_port = slow_smtp
    addresses = []
    for n in range(MAILS):
        email = f"kill-{n}-{uuid.uuid4().hex[:6]}@example.jp"
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
                    created_at=datetime.now(UTC) + timedelta(microseconds=n),
                    next_attempt_at=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
            await db.commit()
    retry_keys = []
    async with container.sessions() as db:
        for _ in range(PUSHES):
            user = line_user_id()
            await SqlLineUsers(db).seen(user, datetime.now(UTC))
            row = SqlLineDeliveries(db).add(
                purpose="answer_published",
                line_user_id=user,
                messages=[{"type": "text", "text": "相談への回答が届きました。マイページでご確認ください。"}],
                now=datetime.now(UTC) - timedelta(seconds=1),
            )
            retry_keys.append(row.retry_key)
        await db.commit()

    async def some_mail():  # type: ignore[no-untyped-def]
        return len(mailbox.recipients) >= 6

    # Three workers at once (one start-up wait, not three); the first dies during the mail, the second
    # during the LINE deliveries, the third finishes.
    workers = [start_worker(settings, smtp_port, fake_line.url) for _ in range(3)]
    kills: list[datetime] = []
    try:

        async def some_mail():  # type: ignore[no-untyped-def]
            return len(mailbox.recipients) >= 6

        async def some_pushes():  # type: ignore[no-untyped-def]
            return len(fake_line.of("push")) >= 5

        async def all_done():  # type: ignore[no-untyped-def]
            async with container.sessions() as db:
                mail = await db.scalar(
                    select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))  # type: ignore[union-attr]
                )
                line = await db.scalar(
                    select(func.count()).select_from(LineDeliveryRow).where(LineDeliveryRow.status != "sent")
                )
            return mail == 0 and line == 0

        for victim, midway in ((workers[0], some_mail), (workers[1], some_pushes)):
            await wait_for(midway, "the drain to get going")
            kills.append(await kill(victim))
            # Each worker holds one row at a time, and no lease reaches further than one lease from now: the
            # row the dead worker held is free again within MADOGUCHI_WORKER_LEASE_SECONDS.
            held = await leases(container)
            assert len(held) <= len(workers)
            assert all(t <= kills[-1] + timedelta(seconds=LEASE_SECONDS + 0.5) for t in held)
        await wait_for(all_done, "the last worker to finish the drain")
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()

    # Nothing lost: every mail arrived, every LINE message was accepted by LINE.
    received = Counter(mailbox.recipients)
    assert set(received) == set(addresses)
    # At most one duplicate mail per kill (see the module docstring for why not zero).
    assert sum(received.values()) - MAILS <= len(kills)
    # No LINE message twice: LINE accepted each retry key exactly once (a retried push meets 409).
    accepted = Counter(c.headers.get("x-line-retry-key") for c in fake_line.sent())
    assert accepted == Counter(dict.fromkeys(retry_keys, 1))


def test_a_dead_workers_rows_are_retaken_within_30_seconds_by_default() -> None:
    assert Settings().worker_lease_seconds <= 30
