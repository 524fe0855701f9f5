"""The statistics summaries (issue 18 §5): the worker recounts a fiscal year into small tables when its raw
rows changed, and the statistics read those tables instead of grouping a million rows per call.

Maintenance. Per fiscal year, a fingerprint of the raw rows the figures come from (consultations opened in the
year: how many, the sum of their versions and the latest update — every edit, a status or category change
included, bumps a consultation's version; category rows; referrals made in the year; requests sent in the
year, with their versions) and of the reference data's groupings. A pass computes the fingerprints, and
recounts every fiscal year from the first whose fingerprint changed onwards (re-consultations depend on
earlier years), with the very GROUP BYs of infra/db/statistics.py, replacing that year's rows in one
transaction. The fingerprint is taken before the recount, so a change made during the recount shows as a
changed fingerprint in the next pass: a stale summary is always recounted, never kept.

Reading. A fiscal year with a state row is read from the summaries; one without (never summarised) from the
raw rows, so figures are never missing, only up to one refresh period behind the raw rows."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.knowledge_model import Knowledge
from domain.ports import Clock
from domain.statistics import (
    DIMENSION_CODES,
    GRANULARITIES,
    Bucket,
    Timing,
    buckets,
    fiscal_year_of,
    groupings,
    month_buckets,
)
from infra.db.statistics import SqlStatistics
from infra.db.tables import ConsultationCategoryRow, ConsultationRow, ReferralRow
from infra.db.tables_requests import RequestRow
from infra.db.tables_statistics import StatisticsCountRow, StatisticsStateRow, StatisticsTimingRow

log = logging.getLogger("madoguchi.worker")
REFRESH_EVERY = timedelta(minutes=5)

C_TABLE = ConsultationRow.__table__  # type: ignore[attr-defined]  # SQLModel declares no __table__ type
CC_TABLE = ConsultationCategoryRow.__table__  # type: ignore[attr-defined]
C, CC = C_TABLE.c, CC_TABLE.c
RF = ReferralRow.__table__.c  # type: ignore[attr-defined]
RQ = RequestRow.__table__.c  # type: ignore[attr-defined]
COUNTS = StatisticsCountRow.__table__  # type: ignore[attr-defined]
TIMINGS = StatisticsTimingRow.__table__  # type: ignore[attr-defined]
STATE = StatisticsStateRow.__table__  # type: ignore[attr-defined]


async def fingerprint(db: AsyncSession, fiscal_year: int, groups: Mapping[str, Mapping[str, str]]) -> str:
    months = month_buckets(fiscal_year)
    start, end = months[0].start, months[-1].end

    def within(column: Any) -> Any:
        return (column >= start) & (column < end)

    opened = (
        await db.execute(
            select(func.count(), func.sum(C.version), func.max(C.updated_at)).where(within(C.created_at))
        )
    ).one()
    categories = await db.scalar(
        select(func.count())
        .select_from(CC_TABLE.join(C_TABLE, CC.consultation_id == C.id))
        .where(within(C.created_at))
    )
    referrals = (
        await db.execute(select(func.count(), func.max(RF.updated_at)).where(within(RF.created_at)))
    ).one()
    requests = (
        await db.execute(
            select(func.count(), func.sum(RQ.version), func.max(RQ.updated_at)).where(within(RQ.sent_at))
        )
    ).one()
    facts = [list(opened), categories, list(referrals), list(requests), groups]
    return hashlib.sha256(json.dumps(facts, default=str, sort_keys=True).encode()).hexdigest()


class StatisticsSummaries:
    """The worker's side: `refresh_due` every REFRESH_EVERY, `refresh` to recount now."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], knowledge: Knowledge, clock: Clock) -> None:
        self.factory = factory
        self.knowledge = knowledge
        self.clock = clock
        self.refreshed_at: datetime | None = None

    async def _years(self, db: AsyncSession) -> list[int]:
        first = await db.scalar(select(func.min(C.created_at)))
        now = self.clock.now()
        last = fiscal_year_of(now)
        start = fiscal_year_of(first) if first is not None else last
        stored = set((await db.scalars(select(STATE.c.fiscal_year))).all())
        return sorted(set(range(min(start, last), last + 1)) | stored)

    async def refresh(self) -> list[int]:
        """Recounts the fiscal years whose raw rows changed (and the later ones); returns which."""
        groups = groupings(self.knowledge)
        async with self.factory() as db:
            years = await self._years(db)
            rows = (await db.execute(select(STATE.c.fiscal_year, STATE.c.fingerprint))).all()
            stored: dict[int, str] = {int(fy): str(p) for fy, p in rows}
            prints = {fy: await fingerprint(db, fy, groups) for fy in years}
        dirty = next((fy for fy in years if stored.get(fy) != prints[fy]), None)
        if dirty is None:
            return []
        done = []
        for fy in (y for y in years if y >= dirty):
            async with self.factory() as db:
                if db.get_bind().dialect.name == "postgresql":
                    # One snapshot for the whole recount: tables that share margins stay consistent even
                    # when rows change meanwhile (SQLite's single writer gives that already).
                    await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                await self._recount(db, fy, prints[fy], groups)
                await db.commit()
            done.append(fy)
        return done

    async def _recount(
        self, db: AsyncSession, fy: int, print_: str, groups: Mapping[str, Mapping[str, str]]
    ) -> None:
        raw = SqlStatistics(db)
        months = month_buckets(fy)
        counts = []
        for code in DIMENSION_CODES:
            found = await raw.counts(code, months, groups.get(code))
            counts += [
                {"fiscal_year": fy, "dimension": code, "value": value, "bucket": bucket, "count": n}
                for (value, bucket), n in found.items()
            ]
        timings: dict[str, Timing] = {}
        for granularity in GRANULARITIES:  # percentiles do not add up: each period is its own row
            timings.update(await raw.first_answer_times(buckets(fy, granularity)))
        await db.execute(delete(COUNTS).where(COUNTS.c.fiscal_year == fy))
        await db.execute(delete(TIMINGS).where(TIMINGS.c.fiscal_year == fy))
        await db.execute(delete(STATE).where(STATE.c.fiscal_year == fy))
        if counts:
            await db.execute(insert(COUNTS), counts)
        if timings:
            await db.execute(
                insert(TIMINGS),
                [
                    {
                        "fiscal_year": fy,
                        "bucket": key,
                        "consultations": t.consultations,
                        "answered": t.answered,
                        "within_target": t.within_target,
                        "median_seconds": t.median_seconds,
                        "p90_seconds": t.p90_seconds,
                    }
                    for key, t in timings.items()
                ],
            )
        await db.execute(
            insert(STATE), [{"fiscal_year": fy, "fingerprint": print_, "refreshed_at": self.clock.now()}]
        )

    async def refresh_due(self, now: datetime) -> int:
        """From the worker's pass: at most every REFRESH_EVERY; a failure is retried next time."""
        # A clock set back (an operator's correction, a pinned test clock) does not hold the refresh off.
        if self.refreshed_at is not None and timedelta(0) <= now - self.refreshed_at < REFRESH_EVERY:
            return 0
        self.refreshed_at = now
        try:
            return len(await self.refresh())
        except Exception as exc:  # noqa: BLE001 - a database blip; the next period recounts
            log.error("statistics summary refresh failed: %s", type(exc).__name__)
            return 0


class SummaryStatistics:
    """The repository the statistics service reads: summaries where the worker made them, else the raw SQL."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.raw = SqlStatistics(db)

    async def _summarised(self, fy: int) -> bool:
        return await self.db.scalar(select(STATE.c.fiscal_year).where(STATE.c.fiscal_year == fy)) is not None

    async def counts(
        self, dimension: str, buckets: Sequence[Bucket], groups: Mapping[str, str] | None
    ) -> dict[tuple[str, str], int]:
        fy = fiscal_year_of(buckets[0].start)
        if not await self._summarised(fy):
            return await self.raw.counts(dimension, buckets, groups)
        keys = [b.key for b in buckets]
        rows = await self.db.execute(
            select(COUNTS.c.value, COUNTS.c.bucket, COUNTS.c.count).where(
                COUNTS.c.fiscal_year == fy, COUNTS.c.dimension == dimension, COUNTS.c.bucket.in_(keys)
            )
        )
        return {(str(v), str(b)): int(n) for v, b, n in rows}

    async def first_answer_times(self, buckets: Sequence[Bucket]) -> dict[str, Timing]:
        fy = fiscal_year_of(buckets[0].start)
        if not await self._summarised(fy):
            return await self.raw.first_answer_times(buckets)
        T = TIMINGS.c
        rows = await self.db.execute(
            select(
                T.bucket, T.consultations, T.answered, T.within_target, T.median_seconds, T.p90_seconds
            ).where(T.fiscal_year == fy, T.bucket.in_([b.key for b in buckets]))
        )
        return {str(b): Timing(int(n), int(a), int(w), m, p) for b, n, a, w, m, p in rows}
