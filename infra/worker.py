"""The outbox relay: claims due rows, delivers them, retries with backoff, never sends a row twice."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.accounts import EMAIL_CHANGE, PASSWORD_RESET, REGISTRATION, AccountService
from domain.ports import Clock
from domain.work_queue import outbox_policy
from infra import idempotency, metrics
from infra.db import queue_stats
from infra.db.chatbot import purge_chatbot
from infra.db.leases import WorkTable, drain, record_failure
from infra.db.tables import OutboxRow, UserRow
from infra.logging import log as json_log
from infra.mail import Mailer
from infra.mail_templates import TEMPLATES, render
from infra.settings import Settings

if TYPE_CHECKING:
    from domain.erasure import ErasureService
    from domain.requests import RequestService
    from domain.retention import RetentionService
    from infra.custody import CustodyChecks
    from infra.db.statistics_summary import StatisticsSummaries
    from infra.line import LineBot

log = logging.getLogger("madoguchi.worker")
delivery_log = json_log("madoguchi.worker")

# A handler that returns False did its job without sending anything itself (the LINE notice only queues a
# delivery, or the person is not linked): the row completes but is not counted as delivered.
Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[bool | None]]
CHATBOT_PURGE_EVERY = timedelta(hours=1)
RETENTION_EVERY = timedelta(hours=6)  # ended cases past their retention are shredded a few times a day


OUTBOX = WorkTable(
    OutboxRow,
    pending=lambda: [col(OutboxRow.sent_at).is_(None), col(OutboxRow.failed_at).is_(None)],
    due=lambda now: [col(OutboxRow.next_attempt_at) <= now],
    order_by=lambda: [col(OutboxRow.created_at)],
)


@dataclass
class PassReport:
    """What one pass did, by outbox kind, for the operator (`madoguchi worker --once`)."""

    delivered: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # will be retried unless attempts ran out
    given_up: Counter[str] = field(default_factory=Counter)
    chatbot_sessions_purged: int = 0
    heads_stamped: int = 0
    reads_chained: int = 0  # reads of consultations chained into their chain of custody
    clock_reminders: int = 0  # clocks whose reminder (or overdue notice) was queued
    statistics_years: int = 0  # fiscal years whose statistics summaries were recounted
    consultations_shredded: int = 0  # ended cases past their retention period (issue 17)
    exports_prepared: int = 0  # personal exports made ready (issue 17 §3)
    exports_swept: int = 0  # stored exports deleted once downloaded or expired
    erasures_completed: int = 0  # erasure requests carried out after their grace period (issue 17 §3)
    erasure_shredded: int = 0  # consultations of erased accounts shredded
    erasure_kept: int = 0  # consultations of erased accounts a legal hold keeps (shredded when it is lifted)
    files_left: int = 0  # files of shredded cases the store refused to delete (retried on the next pass)

    @property
    def total(self) -> int:
        return sum(self.delivered.values())


class OutboxWorker:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        mailer: Mailer,
        unseal: Callable[[str], str],
        clock: Clock,
    ) -> None:
        self.unseal = unseal
        self.clock = clock
        self.factory = factory
        self.settings = settings
        self.mailer = mailer
        self.retry = outbox_policy(settings.outbox_max_attempts)
        self.handlers: dict[str, Handler] = {}
        self.passes: list[Callable[[int], Awaitable[int]]] = []
        self.chatbot_purged_at: datetime | None = None
        self.custody: CustodyChecks | None = None
        self.stamp_every = timedelta(hours=1)
        self.stamped_at: datetime | None = None
        self.measured_at: datetime | None = None
        self.last_pass = PassReport()
        self.reminders: Callable[[int], Awaitable[int]] | None = None
        self.statistics: StatisticsSummaries | None = None
        self.retention: RetentionService | None = None
        self.retention_at: datetime | None = None
        self.exports: Callable[[int], Awaitable[int]] | None = None
        self.exports_sweep: Callable[[int], Awaitable[int]] | None = None
        self.erasure: ErasureService | None = None
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
            # A sealed `to` is another address of this account's: the new one being confirmed, or the old one
            # told of a change.
            to = self.unseal(payload["to"]) if "to" in payload else user.email
            await self.mailer.send(to, subject, body)

        return send

    async def _deliver(self, row_id: uuid.UUID) -> bool:
        """Deliver one row and record the outcome before the next row is touched. Whatever goes wrong with this
        row, however unexpected, is a failed attempt of this row alone: it backs off, and becomes a dead
        letter (`failed_at`) after MADOGUCHI_OUTBOX_MAX_ATTEMPTS."""
        began = time.perf_counter()
        try:
            async with self.factory() as db:
                row = await db.get(OutboxRow, row_id)
                if row is None or row.sent_at is not None or row.failed_at is not None:
                    return False
                handler = self.handlers.get(row.kind)
                if handler is None:
                    raise LookupError("no handler")
                sent = await handler(db, row.payload or {})
                row.sent_at = self.clock.now()
                row.locked_until = None
                row.payload = None  # drop one-time secrets (tokens) as soon as they are delivered
                await db.commit()
                if sent is not False:
                    self.last_pass.delivered[row.kind] += 1
                outcome = "delivered" if sent is not False else "done"
                self._delivered(row_id, row.kind, outcome, row.attempts + 1, began)
                return sent is not False
        except Exception as exc:  # noqa: BLE001 - any failure is retried; the type name is all we keep
            await self._failed(row_id, type(exc).__name__, began)
            return False

    @staticmethod
    def _delivered(row_id: uuid.UUID, kind: str, outcome: str, attempt: int, began: float) -> None:
        """One line and one count per delivery: the row id and its kind, never the payload or the recipient."""
        metrics.WORKER_DELIVERIES.labels(metrics.kind_label(kind), outcome).inc()
        delivery_log.info(
            "delivery",
            queue="outbox",
            outbox_id=str(row_id),
            kind=kind,
            outcome=outcome,
            attempt=attempt,
            duration_ms=round((time.perf_counter() - began) * 1000, 2),
        )

    async def _failed(self, row_id: uuid.UUID, error: str, began: float | None = None) -> None:
        """Recorded in a fresh session: the one that failed may be unusable (a dropped connection)."""
        try:
            async with self.factory() as db:
                row = await db.get(OutboxRow, row_id)
                if row is None or row.sent_at is not None:
                    return
                now = self.clock.now()
                if record_failure(row, error, now, self.retry):
                    row.failed_at = now
                    row.payload = None
                    self.last_pass.given_up[row.kind] += 1
                    outcome = "dead"
                else:
                    self.last_pass.failed[row.kind] += 1
                    outcome = "retry"
                metrics.WORKER_DELIVERIES.labels(metrics.kind_label(row.kind), outcome).inc()
                delivery_log.warning(
                    "outbox delivery failed",
                    queue="outbox",
                    outbox_id=str(row.id),
                    kind=row.kind,
                    outcome=outcome,
                    attempts=row.attempts,
                    error=row.last_error,
                    duration_ms=round((time.perf_counter() - began) * 1000, 2) if began else None,
                )
                await db.commit()
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the row is tried again
            log.error("outbox failure not recorded: %s", type(exc).__name__)

    def add_accounts(self, accounts: AccountService) -> None:
        """Anonymous registration and reset requests are decided here, off the request path, so known and
        unknown addresses cost the request the same. What they decide to mail is queued as mail rows."""

        async def registration(_db: AsyncSession, payload: dict[str, Any]) -> bool:
            await accounts.complete_registration(payload)
            return False

        async def password_reset(_db: AsyncSession, payload: dict[str, Any]) -> bool:
            await accounts.complete_password_reset(payload)
            return False

        async def email_change(_db: AsyncSession, payload: dict[str, Any]) -> bool:
            await accounts.complete_email_change(payload)
            return False

        self.handlers[REGISTRATION] = registration
        self.handlers[PASSWORD_RESET] = password_reset
        self.handlers[EMAIL_CHANGE] = email_change

    def add_line(self, line: LineBot) -> None:
        """The LINE bot: its inbox and deliveries drain with the outbox, and published answers notify linked
        LINE users (the handler completes silently for anyone not linked or not following)."""
        self.handlers["line.answer_published"] = line.on_answer_published
        for kind in ("clock_reminder", "clock_overdue"):
            self.handlers[f"line.{kind}"] = line.clock_notice_handler(kind)
        self.passes.append(line.run_once)

    def add_custody(self, custody: CustodyChecks, every_seconds: float) -> None:
        """Reads waiting for their chain of custody are chained on every pass; heads that moved are
        time-stamped every `every_seconds` (when a TSA is set)."""
        self.custody = custody
        self.stamp_every = timedelta(seconds=every_seconds)

    async def chain_reads(self) -> int:
        if self.custody is None:
            return 0
        try:
            return await self.custody.chain_reads()
        except Exception as exc:  # noqa: BLE001 - a database blip; the reads wait for the next pass
            log.error("custody read chaining failed: %s", type(exc).__name__)
            return 0

    async def stamp_heads_due(self, now: datetime) -> int:
        if self.custody is None or self.custody.tsa is None:
            return 0
        if self.stamped_at is not None and now - self.stamped_at < self.stamp_every:
            return 0
        self.stamped_at = now
        try:
            return (await self.custody.stamp_heads()).stamped
        except Exception as exc:  # noqa: BLE001 - a database blip; the next period tries again
            log.error("custody stamping failed: %s", type(exc).__name__)
            return 0

    def add_requests(self, requests: RequestService) -> None:
        """Clock reminders: a pass that queues the mail and LINE notices for clocks about to run out or run
        out (each once, claimed in the clock's row), ahead of the outbox pass that sends them."""
        self.reminders = requests.send_reminders

    def add_retention(self, retention: RetentionService) -> None:
        """Retention: ended cases past their period and under no legal hold are shredded every few hours."""
        self.retention = retention

    async def shred_due(self, now: datetime) -> int:
        if self.retention is None or (
            # A clock set back (an operator's correction, a pinned test clock) does not hold the pass off.
            self.retention_at is not None and timedelta(0) <= now - self.retention_at < RETENTION_EVERY
        ):
            return 0
        self.retention_at = now
        try:
            return (await self.retention.apply()).shredded
        except Exception as exc:  # noqa: BLE001 - a database blip; the next period goes on where this stopped
            log.error("retention pass failed: %s", type(exc).__name__)
            return 0

    def add_exports(
        self, prepare: Callable[[int], Awaitable[int]], sweep: Callable[[int], Awaitable[int]]
    ) -> None:
        """Personal exports: prepared ahead of the outbox pass (so the mail saying one is ready goes out in the
        same pass), and the stored copies of downloaded or expired ones deleted."""
        self.exports = prepare
        self.exports_sweep = sweep

    async def _exports_pass(self, limit: int) -> None:
        if self.exports is None or self.exports_sweep is None:
            return
        try:
            self.last_pass.exports_prepared = await self.exports(limit)
        except Exception as exc:  # noqa: BLE001 - a database blip; the next pass tries again
            log.error("export pass failed: %s", type(exc).__name__)
        try:
            self.last_pass.exports_swept = await self.exports_sweep(limit)
        except Exception as exc:  # noqa: BLE001 - the next pass sweeps again
            log.error("export sweep failed: %s", type(exc).__name__)

    def add_erasure(self, erasure: ErasureService) -> None:
        """Erasure requests whose grace period ended are carried out on each pass (issue 17 §3). The completion
        mail goes to the address sealed in its row: the account no longer has one."""
        self.erasure = erasure

        async def completed(_db: AsyncSession, payload: dict[str, Any]) -> None:
            subject, body = render(
                "mail.erasure_completed", payload.get("locale", "ja"), self.settings.public_url, payload
            )
            await self.mailer.send(self.unseal(payload["to"]), subject, body)

        self.handlers["mail.erasure_completed"] = completed

    async def erase_due(self) -> int:
        if self.erasure is None:
            return 0
        try:
            report = await self.erasure.apply()
        except Exception as exc:  # noqa: BLE001 - a database blip; the next pass goes on
            log.error("erasure pass failed: %s", type(exc).__name__)
            return 0
        self.last_pass.erasure_shredded = report.consultations_shredded
        self.last_pass.erasure_kept = report.consultations_kept
        self.last_pass.files_left = report.files_left
        if report.files_left:  # a count only: storage keys and cases stay out of the log
            log.warning("erasure pass: %d file(s) of shredded cases left in the store", report.files_left)
        return report.completed

    def add_statistics(self, summaries: StatisticsSummaries) -> None:
        """The statistics summaries: recounted (the fiscal years whose raw rows changed) every few minutes."""
        self.statistics = summaries

    async def run_once(self, limit: int = 100) -> int:
        """Deliver everything due now; returns how many were delivered (by kind in `last_pass`)."""
        self.last_pass = PassReport()
        metrics.known_kinds([*self.handlers, "line.message"])
        began = time.perf_counter()
        delivered = 0
        if self.reminders is not None:
            try:
                self.last_pass.clock_reminders = await self.reminders(limit)
            except Exception as exc:  # noqa: BLE001 - a database blip; the next pass tries again
                log.error("clock reminder pass failed: %s", type(exc).__name__)
        await self._exports_pass(limit)
        # Extra passes (the LINE inbox and deliveries) run after the outbox, so a notice an outbox handler
        # queued goes out in the same pass. Each pass stands alone: one failing does not hold up the others.
        for one_pass in (self._drain_outbox, *self.passes):
            try:
                sent = await one_pass(limit)
            except Exception as exc:  # noqa: BLE001 - a database blip; the next pass tries again
                log.error("worker pass failed: %s", type(exc).__name__)
                continue
            delivered += sent
            if sent and one_pass != self._drain_outbox:  # the outbox counts its rows by kind itself
                self.last_pass.delivered["line.message"] += sent
                metrics.WORKER_DELIVERIES.labels("line.message", "delivered").inc(sent)
        # run_forever calls this: hourly at most
        self.last_pass.chatbot_sessions_purged = await self.purge_chatbot_due(self.clock.now())
        self.last_pass.reads_chained = await self.chain_reads()
        self.last_pass.heads_stamped = await self.stamp_heads_due(self.clock.now())
        self.last_pass.consultations_shredded = await self.shred_due(self.clock.now())
        self.last_pass.erasures_completed = await self.erase_due()
        if self.statistics is not None:
            self.last_pass.statistics_years = await self.statistics.refresh_due(self.clock.now())
        metrics.WORKER_PASS_DURATION.observe(time.perf_counter() - began)
        now = self.clock.now()
        metrics.WORKER_LAST_PASS.set(now.timestamp())
        await self.measure_queues_due(now)
        return delivered

    async def measure_queues_due(self, now: datetime, *, force: bool = False) -> None:
        """The queue gauges, every QUEUE_STATS_EVERY at most (a few aggregate queries)."""
        if (
            not force
            and self.measured_at is not None
            and now - self.measured_at < queue_stats.QUEUE_STATS_EVERY
        ):
            return
        self.measured_at = now
        try:
            queues, chatbot_sessions = await queue_stats.measure(self.factory, now)
        except Exception as exc:  # noqa: BLE001 - measured again next time; delivery goes on
            log.error("queue measurement failed: %s", type(exc).__name__)
            return
        for name, stats in queues.items():
            metrics.QUEUE_DEPTH.labels(name).set(stats.depth)
            metrics.QUEUE_OLDEST_AGE.labels(name).set(stats.oldest_age_seconds)
            metrics.WORKER_LAG.labels(name).set(stats.lag_seconds)
            metrics.DEAD_LETTERS.labels(name).set(stats.dead_letters)
        metrics.CHATBOT_SESSIONS_ACTIVE.set(chatbot_sessions)
        metrics.QUEUE_MEASURED_AT.set(now.timestamp())

    async def purge_idempotency_keys(self, now: datetime) -> int:
        """Idempotency keys and the answers kept with them (which may quote what a consulter wrote) go after a
        day; returns how many did."""
        try:
            return await idempotency.purge_expired(self.factory, now)
        except Exception as exc:  # noqa: BLE001 - retried next hour
            log.error("idempotency purge failed: %s", type(exc).__name__)
            return 0

    async def purge_chatbot_due(self, now: datetime) -> int:
        """Chatbot transcripts past MADOGUCHI_CHATBOT_RETENTION_DAYS go; returns how many sessions did."""
        if self.chatbot_purged_at is not None and now - self.chatbot_purged_at < CHATBOT_PURGE_EVERY:
            return 0
        self.chatbot_purged_at = now
        await self.purge_idempotency_keys(now)
        try:
            return await purge_chatbot(
                self.factory, now, timedelta(days=self.settings.chatbot_retention_days)
            )
        except Exception as exc:  # noqa: BLE001 - a failed purge is retried next hour; delivery goes on
            log.error("chatbot purge failed: %s", type(exc).__name__)
            return 0

    async def _drain_outbox(self, limit: int) -> int:
        return await drain(
            self.factory,
            OUTBOX,
            self._deliver,
            clock=self.clock,
            lease=self.settings.worker_lease,
            limit=limit,
        )

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
