"""The outbox relay: retries with backoff, gives up after the last attempt, and never delivers twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from domain.actors import Role
from infra.db.tables import OutboxRow
from infra.worker import OutboxWorker
from tests.conftest import PASSWORD


class FlakyMailer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("smtp down")
        self.sent.append((to, subject, body))


async def queue_mail(container) -> uuid.UUID:  # type: ignore[no-untyped-def]
    user = await container.accounts.create_user_directly(
        email=f"w-{uuid.uuid4().hex[:6]}@example.jp", role=Role.consulter, password=PASSWORD
    )
    async with container.sessions() as db:
        row = OutboxRow(
            id=uuid.uuid4(),
            kind="mail.answer_published",
            payload={"user_id": str(user.id), "consultation_id": str(uuid.uuid4())},
            created_at=container.clock.now(),
            next_attempt_at=container.clock.now() - timedelta(seconds=1),
        )
        db.add(row)
        await db.commit()
        return row.id


async def make_due(container, row_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    async with container.engine.begin() as conn:
        await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(next_attempt_at=container.clock.now() - timedelta(seconds=1))
        )


async def row(container, row_id: uuid.UUID) -> OutboxRow:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return (await db.execute(select(OutboxRow).where(OutboxRow.id == row_id))).scalar_one()


async def test_failed_delivery_is_retried_later_then_sent_once(container) -> None:
    mailer = FlakyMailer(failures=1)
    worker = OutboxWorker(
        container.sessions, container.settings, mailer, container.tokens.unseal, container.clock
    )
    row_id = await queue_mail(container)
    assert await worker.run_once() == 0
    failed = await row(container, row_id)
    assert failed.attempts == 1 and failed.last_error == "ConnectionRefusedError" and failed.sent_at is None
    assert failed.next_attempt_at > container.clock.now()  # backoff: not retried at once
    assert await worker.run_once() == 0 and mailer.sent == []
    await make_due(container, row_id)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    await make_due(container, row_id)
    assert await worker.run_once() == 0
    assert len(mailer.sent) == 1
    done = await row(container, row_id)
    assert done.sent_at is not None and done.payload is None


async def test_gives_up_after_the_last_attempt(container) -> None:
    settings = container.settings.model_copy(update={"outbox_max_attempts": 2})
    worker = OutboxWorker(
        container.sessions, settings, FlakyMailer(failures=5), container.tokens.unseal, container.clock
    )
    row_id = await queue_mail(container)
    await worker.run_once()
    await make_due(container, row_id)
    await worker.run_once()
    gone = await row(container, row_id)
    assert gone.failed_at is not None and gone.attempts == 2 and gone.payload is None
    await make_due(container, row_id)
    assert await worker.run_once() == 0


async def test_concurrent_workers_deliver_each_row_once(container) -> None:
    mailer = FlakyMailer(failures=0)
    workers = [
        OutboxWorker(container.sessions, container.settings, mailer, container.tokens.unseal, container.clock)
        for _ in range(3)
    ]
    for _ in range(5):
        await queue_mail(container)
    delivered = await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(delivered) == 5 and len(mailer.sent) == 5


async def test_an_unexpected_error_in_the_outbox_handler_is_counted_and_does_not_stall(container) -> None:  # type: ignore[no-untyped-def]
    class Mailer:
        sent: list[str] = []

        async def send(self, to: str, subject: str, body: str) -> None:
            if "壊" in to:
                raise UnicodeEncodeError("ascii", to, 0, 1, "an exception nobody planned for")
            self.sent.append(to)

    worker = OutboxWorker(
        container.sessions, container.settings, Mailer(), container.tokens.unseal, container.clock
    )
    ids = []
    for name in ("壊れた", "ok-1", "ok-2"):
        user = await container.accounts.create_user_directly(
            email=f"{name}-{uuid.uuid4().hex[:6]}@example.jp", role=Role.consulter, password=PASSWORD
        )
        async with container.sessions() as db:
            row = OutboxRow(
                id=uuid.uuid4(),
                kind="mail.answer_published",
                payload={"user_id": str(user.id), "consultation_id": str(uuid.uuid4())},
                created_at=container.clock.now(),
                next_attempt_at=container.clock.now() - timedelta(seconds=1),
            )
            db.add(row)
            await db.commit()
            ids.append(row.id)
    assert await worker.run_once() == 2
    async with container.sessions() as db:
        broken = await db.get(OutboxRow, ids[0])
        assert broken is not None and broken.attempts == 1 and broken.last_error == "UnicodeEncodeError"
        assert broken.locked_until is None and broken.next_attempt_at > container.clock.now()


async def test_the_worker_purges_idempotency_keys_after_a_day(container) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables import IdempotencyRow

    now = container.clock.now()
    async with container.sessions() as db:
        for age, name in ((timedelta(hours=25), "old"), (timedelta(hours=1), "new")):
            db.add(
                IdempotencyRow(
                    principal_id=uuid.uuid4(),
                    key=f"key-{name}-0001",
                    operation="messages_create",
                    fingerprint="0" * 64,
                    status_code=201,
                    response_body='{"body": "加害者の投稿が増えました"}',
                    created_at=now - age,
                    expires_at=now - age + timedelta(hours=24),
                )
            )
        await db.commit()
    worker = OutboxWorker(
        container.sessions, container.settings, FlakyMailer(0), container.tokens.unseal, container.clock
    )
    assert await worker.purge_idempotency_keys(now) == 1
    async with container.sessions() as db:
        left = (await db.execute(select(IdempotencyRow.key))).scalars().all()
    assert left == ["key-new-0001"]
