"""The delivery pass of the worker: send each due `line_delivery` through the Messaging API. A reply while the
reply token is fresh, a push with the row's stored `X-Line-Retry-Key` otherwise; 429, 5xx and network failures
are retried with backoff (domain/work_queue.py), and after the last try, or on a failure no retry can mend, a
delivery becomes a dead letter an admin can replay (domain/line_dead_letters.py)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.line_conversation import notice_still_wanted
from domain.ports import Clock
from domain.work_queue import line_delivery_policy
from infra.db.leases import drain
from infra.db.line import (
    DELIVERIES,
    PENDING,
    SENT,
    SKIPPED,
    SqlLineDeliveries,
    SqlLineRepositories,
    SqlLineUsers,
)
from infra.db.tables_line import LineDeliveryRow
from infra.line_sdk import LineApi, LineCallFailed
from infra.logging import log as json_log
from infra.settings import Settings

log = logging.getLogger("madoguchi.line")
delivery_log = json_log("madoguchi.line")

# `last_error` of a delivery whose reply may have reached LINE (the call was cut off, or the worker died during
# it). A reply carries no retry key, so such a row is never said again by push: only a reply with the same token
# (LINE refuses a used one) may follow, and if that cannot settle it the row waits as a dead letter.
REPLY_UNSURE = "reply_unsure"


class LineDeliverySender:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, api: LineApi, clock: Clock
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.api = api
        self.clock = clock
        self.retry = line_delivery_policy(settings.line_max_attempts, settings.line_retry_base_seconds)

    async def drain(self, limit: int) -> int:
        if not self.api.configured:
            return 0
        return await drain(
            self.sessions,
            DELIVERIES,
            self._deliver,
            clock=self.clock,
            lease=self.settings.worker_lease,
            limit=limit,
        )

    async def _deliver(self, row_id: uuid.UUID) -> bool:
        """Send one delivery and record the outcome. Any exception, of whatever type, is a failed attempt of
        this row alone (backoff, then a dead letter); it never leaves the row leased to be sent again blind."""
        began = time.perf_counter()
        try:
            sent = await self._deliver_row(row_id)
        except Exception as exc:  # noqa: BLE001 - the type name is all we keep
            await self._record_failure(row_id, LineCallFailed(0, code=type(exc).__name__[:64]))
            sent = False
        # One line per delivery: the row id and whether it went out (failures log their reason above), never
        # the LINE user id, the reply token or the messages.
        delivery_log.info(
            "delivery",
            queue="line_delivery",
            delivery_id=str(row_id),
            outcome="sent" if sent else "not_sent",
            duration_ms=round((time.perf_counter() - began) * 1000, 2),
        )
        return sent

    async def _deliver_row(self, row_id: uuid.UUID) -> bool:
        async with self.sessions() as db:
            row = await SqlLineDeliveries(db).get(row_id)
            if row is None or row.status != PENDING:
                return False
            person = await SqlLineUsers(db).by_line_id(row.line_user_id)
            if (
                person is None
                or not person.following
                or (row.user_id is not None and person.user_id != row.user_id)
            ):
                # Blocked, or the account was unlinked since: the notice is no longer wanted.
                SqlLineDeliveries.finish(row, SKIPPED)
                await db.commit()
                return False
            if row.user_id is not None and not await notice_still_wanted(
                SqlLineRepositories(db), row.user_id
            ):
                # A notice whose person withdrew LINE notifications after it was queued (issue 17 §4).
                SqlLineDeliveries.finish(row, SKIPPED)
                await db.commit()
                return False
            now = self.clock.now()
            unsure = (row.last_error or "").startswith(REPLY_UNSURE)
            fresh = (
                row.mode == "reply"
                and row.reply_token is not None
                and row.event_at is not None
                and (now - row.event_at).total_seconds() < self.settings.line_reply_window_seconds
            )
            if row.mode == "reply" and unsure and not fresh:
                SqlLineDeliveries.bury(row, "reply_outcome_unknown", now)  # a push now might say it twice
                await db.commit()
                return False
            if not fresh and row.mode == "reply":
                SqlLineDeliveries.as_push(row)
            try:
                if fresh:
                    # Marked before the call: if this worker dies during it, whoever retakes the row knows.
                    SqlLineDeliveries.mark_reply_in_flight(row, REPLY_UNSURE)
                    await db.commit()
                    try:
                        await self.api.reply(str(row.reply_token), row.messages or [])
                    except LineCallFailed as refused:
                        if refused.status != 400:
                            raise
                        if unsure:
                            # Used already (by the attempt we are unsure of) or expired: we cannot tell.
                            SqlLineDeliveries.bury(row, "reply_outcome_unknown", now)
                            await db.commit()
                            return False
                        # The reply token was refused (expired or already used): say it with a push, now.
                        SqlLineDeliveries.as_push(row)
                        fresh = False
                if not fresh:
                    await self.api.push(row.line_user_id, row.messages or [], row.retry_key)
            except LineCallFailed as failure:
                if fresh or failure.status != 409:
                    self._failed(row, failure, now, replying=fresh)
                    await db.commit()
                    return False
                # 409 to a push: LINE already accepted this retry key, so the message was sent.
            SqlLineDeliveries.finish(row, SENT, now)
            await db.commit()
            return True

    async def _record_failure(self, row_id: uuid.UUID, failure: LineCallFailed) -> None:
        """In a fresh session: the one that failed may be unusable."""
        try:
            async with self.sessions() as db:
                row = await SqlLineDeliveries(db).get(row_id)
                if row is None or row.status != PENDING:
                    return
                self._failed(row, failure, self.clock.now(), replying=False)
                await db.commit()
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the row is tried again
            log.error("line delivery failure not recorded: %s", type(exc).__name__)

    def _failed(
        self, row: LineDeliveryRow, failure: LineCallFailed, now: datetime, *, replying: bool
    ) -> None:
        error = failure.code
        if replying and failure.outcome_unknown:
            error = f"{REPLY_UNSURE}_{failure.code}"
        SqlLineDeliveries.failed(
            row,
            error,
            now,
            self.retry,
            retryable=failure.retryable,
            retry_after=failure.retry_after,
        )
        log.warning(
            "line delivery failed",
            extra={
                "delivery_id": str(row.id),
                "purpose": row.purpose,
                "attempts": row.attempts,
                "error": row.last_error,
            },
        )
