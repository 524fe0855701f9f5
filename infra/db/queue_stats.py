"""What the queues hold, for the metrics: depth, oldest age, lag and dead letters of the outbox, the LINE inbox
and the LINE deliveries, and the live chatbot sessions. A handful of aggregate queries over the partial
indexes of the rows still to process; the worker runs them every QUEUE_STATS_EVERY, not per row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.db.tables import OutboxRow
from infra.db.tables_chatbot import ChatbotSessionRow
from infra.db.tables_line import LineDeliveryRow, LineInboxRow

QUEUE_STATS_EVERY = timedelta(seconds=15)


@dataclass(frozen=True)
class QueueStats:
    depth: int
    oldest_age_seconds: float
    lag_seconds: float
    dead_letters: int


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # an aggregate over a SQLite column can come back naive (stored as UTC)
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


async def measure(
    factory: async_sessionmaker[AsyncSession], now: datetime
) -> tuple[dict[str, QueueStats], int]:
    async with factory() as db:
        o = OutboxRow
        pending = [o.sent_at.is_(None), o.failed_at.is_(None)]  # type: ignore[union-attr]
        depth, oldest, due = (
            await db.execute(
                select(func.count(), func.min(o.created_at), func.min(o.next_attempt_at)).where(*pending)
            )
        ).one()
        dead = await db.scalar(select(func.count()).where(o.failed_at.is_not(None)))  # type: ignore[union-attr]
        outbox = QueueStats(depth, _age(now, oldest), _age(now, due), dead or 0)

        i = LineInboxRow
        depth, oldest, due = (
            await db.execute(
                select(func.count(), func.min(i.received_at), func.min(i.next_attempt_at)).where(
                    i.processed_at.is_(None)  # type: ignore[union-attr]
                )
            )
        ).one()
        inbox = QueueStats(depth, _age(now, oldest), _age(now, due), 0)

        d = LineDeliveryRow
        depth, oldest, due = (
            await db.execute(
                select(func.count(), func.min(d.created_at), func.min(d.next_attempt_at)).where(
                    d.status == "pending"
                )
            )
        ).one()
        dead = await db.scalar(select(func.count()).where(d.status == "dead"))
        deliveries = QueueStats(depth, _age(now, oldest), _age(now, due), dead or 0)

        chatbot = await db.scalar(
            select(func.count()).where(ChatbotSessionRow.expires_at > now)  # type: ignore[operator]
        )
    return {"outbox": outbox, "line_inbox": inbox, "line_delivery": deliveries}, chatbot or 0
