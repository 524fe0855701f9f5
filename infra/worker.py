"""The outbox relay: claims due rows, delivers them, retries with backoff, never sends a row twice."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.db.tables import OutboxRow, UserRow
from infra.mail import Mailer
from infra.mail_templates import TEMPLATES, render
from infra.settings import Settings

log = logging.getLogger("madoguchi.worker")

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
LEASE = timedelta(minutes=2)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


class OutboxWorker:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        mailer: Mailer,
        unseal: Callable[[str], str],
    ) -> None:
        self.unseal = unseal
        self.factory = factory
        self.settings = settings
        self.mailer = mailer
        self.handlers: dict[str, Handler] = {}
        for kind in TEMPLATES:
            self.handlers[kind] = self._mail_handler(kind)

    def _mail_handler(self, kind: str) -> Handler:
        async def send(db: AsyncSession, payload: dict[str, Any]) -> None:
            user = await db.get(UserRow, uuid.UUID(payload["user_id"]))
            if user is None or not user.is_active:
                return  # nobody to tell any more: done, not failed
            if "token" in payload:
                payload = {**payload, "token": self.unseal(payload["token"])}
            subject, body = render(kind, user.locale, self.settings.public_url, payload)
            await self.mailer.send(user.email, subject, body)

        return send

    async def _claim(self, now: datetime, limit: int) -> list[uuid.UUID]:
        async with self.factory() as db:
            candidates = (
                (
                    await db.execute(
                        select(OutboxRow.id)
                        .where(
                            OutboxRow.sent_at.is_(None),  # type: ignore[union-attr]
                            OutboxRow.failed_at.is_(None),  # type: ignore[union-attr]
                            OutboxRow.next_attempt_at <= now,
                            or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until < now),  # type: ignore[union-attr]
                        )
                        .order_by(OutboxRow.created_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            claimed = []
            for row_id in candidates:
                # The conditional UPDATE is the lock: only one worker can move locked_until forward.
                result = await db.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.id == row_id,
                        OutboxRow.sent_at.is_(None),  # type: ignore[union-attr]
                        or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until < now),  # type: ignore[union-attr]
                    )
                    .values(locked_until=now + LEASE)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(row_id)
            await db.commit()
            return claimed

    async def _deliver(self, row_id: uuid.UUID) -> bool:
        async with self.factory() as db:
            row = await db.get(OutboxRow, row_id)
            if row is None or row.sent_at is not None:
                return False
            handler = self.handlers.get(row.kind)
            now = datetime.now(UTC)
            try:
                if handler is None:
                    raise LookupError("no handler")
                await handler(db, row.payload or {})
            except Exception as exc:  # noqa: BLE001 - any failure is retried; the type name is all we keep
                row.attempts += 1
                row.last_error = type(exc).__name__[:64]
                row.locked_until = None
                if row.attempts >= self.settings.outbox_max_attempts:
                    row.failed_at = now
                    row.payload = None
                else:
                    row.next_attempt_at = now + backoff(row.attempts)
                log.warning(
                    "outbox delivery failed",
                    extra={
                        "outbox_id": str(row.id),
                        "kind": row.kind,
                        "attempts": row.attempts,
                        "error": row.last_error,
                    },
                )
                await db.commit()
                return False
            row.sent_at = now
            row.locked_until = None
            row.payload = None  # drop one-time secrets (tokens) as soon as they are delivered
            await db.commit()
            return True

    async def run_once(self, limit: int = 100) -> int:
        """Deliver everything due now; returns how many were delivered."""
        delivered = 0
        while True:
            claimed = await self._claim(datetime.now(UTC), limit)
            if not claimed:
                return delivered
            for row_id in claimed:
                delivered += await self._deliver(row_id)
            if len(claimed) < limit:
                return delivered

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill the loop
                # Only the type: driver messages can quote SQL parameters, which may be personal data.
                log.error("outbox pass failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.worker_poll_seconds)
            except TimeoutError:
                pass
