"""What the queues hold, for the metrics: depth, oldest age, lag and dead letters of the outbox, the LINE inbox
and the LINE deliveries, and the live chatbot sessions. A handful of aggregate queries over the partial
indexes of the rows still to process; the worker runs them every QUEUE_STATS_EVERY, not per row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

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
        pending = [col(o.sent_at).is_(None), col(o.failed_at).is_(None)]
        depth, oldest, due = (
            await db.execute(
                select(func.count(), func.min(col(o.created_at)), func.min(col(o.next_attempt_at))).where(
                    *pending
                )
            )
        ).one()
        dead = await db.scalar(select(func.count()).where(col(o.failed_at).is_not(None)))
        outbox = QueueStats(depth, _age(now, oldest), _age(now, due), dead or 0)

        i = LineInboxRow
        depth, oldest, due = (
            await db.execute(
                select(func.count(), func.min(col(i.received_at)), func.min(col(i.next_attempt_at))).where(
                    col(i.processed_at).is_(None)
                )
            )
        ).one()
        inbox = QueueStats(depth, _age(now, oldest), _age(now, due), 0)

        d = LineDeliveryRow
        depth, oldest, due = (
            await db.execute(
                select(func.count(), func.min(col(d.created_at)), func.min(col(d.next_attempt_at))).where(
                    col(d.status) == "pending"
                )
            )
        ).one()
        dead = await db.scalar(select(func.count()).where(col(d.status) == "dead"))
        deliveries = QueueStats(depth, _age(now, oldest), _age(now, due), dead or 0)

        chatbot = await db.scalar(select(func.count()).where(col(ChatbotSessionRow.expires_at) > now))
    return {"outbox": outbox, "line_inbox": inbox, "line_delivery": deliveries}, chatbot or 0
