"""The inbox pass of the worker: each due LINE event is answered by the conversation use case
(domain/line_conversation.py); a failure is one attempt of that event alone, retried with backoff and dropped
after the last."""

from __future__ import annotations

import contextlib
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.line_conversation import LineConversation
from domain.ports import Clock
from domain.work_queue import line_inbox_policy
from infra.db.leases import drain
from infra.db.line import INBOX, SqlLineInbox
from infra.settings import Settings

log = logging.getLogger("madoguchi.line")


class LineInboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        conversation: LineConversation,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.conversation = conversation
        self.clock = clock
        self.retry = line_inbox_policy(settings.line_retry_base_seconds)

    async def drain(self, limit: int) -> None:
        await drain(
            self.sessions,
            INBOX,
            self._process,
            clock=self.clock,
            lease=self.settings.worker_lease,
            limit=limit,
        )

    async def _process(self, row_id: uuid.UUID) -> bool:
        try:
            await self.conversation.process(row_id)
        except Exception as exc:  # noqa: BLE001 - retried later; only the type name is kept
            with contextlib.suppress(
                Exception
            ):  # not even this could be written: the lease runs out, retaken
                await self._failed(row_id, type(exc).__name__)
        return False

    async def _failed(self, row_id: uuid.UUID, error: str) -> None:
        """In a fresh session: the one that failed may be unusable."""
        async with self.sessions() as db:
            row = await SqlLineInbox(db).failed(row_id, error, self.clock.now(), self.retry)
            if row is None:
                return
            log.warning(
                "line event failed",
                extra={
                    "inbox_id": str(row.id),
                    "event_type": row.event_type,
                    "attempts": row.attempts,
                    "error": row.last_error,
                },
            )
            await db.commit()
