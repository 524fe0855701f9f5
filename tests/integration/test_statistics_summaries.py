"""The statistics summaries the worker maintains (issue 18 §5) agree with a recount over the raw rows after a
realistic sequence of changes — new cases, status changes, category changes, requests sent and answered,
deletions — on SQLite and PostgreSQL (`--db postgres`); and the statistics are read from them."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update

from domain.calendar import JST
from domain.statistics import DIMENSION_CODES, GRANULARITIES, buckets, groupings, month_buckets
from infra.db.statistics import SqlStatistics
from infra.db.statistics_summary import StatisticsSummaries, SummaryStatistics
from infra.db.tables import ConsultationCategoryRow, ConsultationRow, ReferralRow
from infra.db.tables_requests import RequestRow
from infra.db.tables_statistics import StatisticsCountRow
from tests.statistics_data import Case, jst, random_cases, seed, with_requests

NOW = datetime(2026, 6, 10, 10, tzinfo=JST)  # fiscal year 2026 is under way
YEARS = [2024, 2025, 2026]


async def disagreements(container) -> list[str]:  # type: ignore[no-untyped-def]
    """Every figure the summaries give that a recount over the raw rows does not."""
    groups = groupings(container.knowledge)
    out = []
    async with container.sessions() as db:
        summary, raw = SummaryStatistics(db), SqlStatistics(db)
        for fy in YEARS:
            months = month_buckets(fy)
            for code in DIMENSION_CODES:
                if await summary.counts(code, months, groups.get(code)) != await raw.counts(
                    code, months, groups.get(code)
                ):
                    out.append(f"{fy} {code}")
            for g in GRANULARITIES:
                got, want = (
                    await summary.first_answer_times(buckets(fy, g)),
                    await raw.first_answer_times(buckets(fy, g)),
                )
                if got.keys() != want.keys():
                    out.append(f"{fy} timing {g} periods")
                for key, t in want.items():
                    s = got.get(key)
                    same = s is not None and (s.consultations, s.answered, s.within_target) == (
                        t.consultations,
                        t.answered,
                        t.within_target,
                    )
                    for a, b in (
                        (s and s.median_seconds, t.median_seconds),
                        (s and s.p90_seconds, t.p90_seconds),
                    ):
                        same = same and (
                            (a is None and b is None)
                            or (a is not None and b is not None and math.isclose(a, b))
                        )
                    if not same:
                        out.append(f"{fy} timing {key}")
    return out


async def summary_counts(container) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(StatisticsCountRow)) or 0)


@pytest.fixture
async def summaries(container, clock):  # type: ignore[no-untyped-def]
    clock.set(NOW)
    rng = random.Random(5)
    cases: list[Case] = []
    for fy in (2024, 2025):
        cases += with_requests(random_cases(120, fy, rng, owners=60), rng)
    cases += with_requests([Case(jst(2026, 4, d), owner=d) for d in range(1, 20)], rng)
    await seed(container, cases)
    return StatisticsSummaries(container.sessions, container.knowledge, container.clock)


async def test_summaries_agree_with_a_recount_after_every_change(container, summaries, clock) -> None:  # type: ignore[no-untyped-def]
    # Before the worker ran: nothing summarised, the statistics read the raw rows.
    assert await summary_counts(container) == 0 and await disagreements(container) == []
    assert await summaries.refresh() == YEARS and await summary_counts(container) > 0
    assert await disagreements(container) == []
    assert await summaries.refresh() == []  # nothing changed: nothing recounted

    C, CC, RF, RQ = ConsultationRow, ConsultationCategoryRow, ReferralRow, RequestRow
    fy2025 = (month_buckets(2025)[0].start, month_buckets(2025)[-1].end)

    async def ids_in(db, span, n):  # type: ignore[no-untyped-def]
        rows = await db.scalars(
            select(C.id)
            .where(C.created_at >= span[0], C.created_at < span[1])
            .order_by(C.created_at)
            .limit(n)
        )
        return list(rows)

    # 1. New cases in 2025 (with requests): 2025 and the later year are recounted (re-consultations follow).
    more = with_requests(random_cases(30, 2025, random.Random(6), owners=60), random.Random(7))
    await seed(container, more)
    assert await disagreements(container) != []  # the summaries are what is read: stale until the worker runs
    assert await summaries.refresh() == [2025, 2026]
    assert await disagreements(container) == []

    later = datetime.now(UTC).replace(microsecond=0)  # only for updated_at: the figures do not depend on it
    # 2. Status changes: some cases answered (time to first answer moves), requests answered or sent.
    async with container.sessions() as db:
        answered = await ids_in(db, fy2025, 15)
        for k, cid in enumerate(answered):
            opened = await db.scalar(select(C.created_at).where(C.id == cid))
            await db.execute(
                update(C)
                .where(C.id == cid)
                .values(
                    status="answered",
                    first_answered_at=opened + timedelta(hours=3 + 7 * k),
                    version=C.version + 1,
                    updated_at=later,
                )
            )
        drafts = list(await db.scalars(select(RQ.id).where(RQ.sent_at.is_(None)).limit(5)))  # type: ignore[union-attr]
        for rid in drafts:
            created = await db.scalar(select(RQ.created_at).where(RQ.id == rid))
            await db.execute(
                update(RQ)
                .where(RQ.id == rid)
                .values(status="sent", sent_at=created + timedelta(hours=1), version=RQ.version + 1)
            )
        sent = list(await db.scalars(select(RQ.id).where(RQ.status == "sent").limit(5)))
        await db.execute(update(RQ).where(RQ.id.in_(sent)).values(status="refused", version=RQ.version + 1))  # type: ignore[attr-defined]
        await db.commit()
    assert drafts and sent
    assert await disagreements(container) != []
    assert await summaries.refresh()
    assert await disagreements(container) == []

    # 3. Category changes (as the service makes them: the rows replaced, the case's version bumped).
    async with container.sessions() as db:
        for cid in await ids_in(db, fy2025, 12):
            await db.execute(delete(CC).where(CC.consultation_id == cid))
            at = await db.scalar(select(C.created_at).where(C.id == cid))
            await db.execute(
                insert(CC), [{"consultation_id": cid, "category_code": "YOUTH.BULLYING", "created_at": at}]
            )
            await db.execute(update(C).where(C.id == cid).values(version=C.version + 1, updated_at=later))
        await db.commit()
    assert await disagreements(container) != []
    assert await summaries.refresh() == [2025, 2026]
    assert await disagreements(container) == []

    # 4. Deletions in 2024 (with their rows): 2024 and every later year recounted, since a 2025 case whose
    # earlier case was deleted is a first consultation now.
    async with container.sessions() as db:
        gone = await ids_in(db, (month_buckets(2024)[0].start, month_buckets(2024)[-1].end), 40)
        await db.execute(delete(CC).where(CC.consultation_id.in_(gone)))  # type: ignore[attr-defined]
        await db.execute(delete(RF).where(RF.consultation_id.in_(gone)))  # type: ignore[attr-defined]
        await db.execute(delete(RQ).where(RQ.consultation_id.in_(gone)))  # type: ignore[attr-defined]
        await db.execute(delete(C).where(C.id.in_(gone)))  # type: ignore[attr-defined]
        await db.commit()
    stale = await disagreements(container)
    assert "2024 channel" in stale and "2025 reconsultation" in stale
    assert await summaries.refresh() == YEARS
    assert await disagreements(container) == []


async def test_the_worker_keeps_them_and_the_api_reads_them(container, summaries, clock) -> None:  # type: ignore[no-untyped-def]
    worker = container.worker
    await worker.run_once()
    assert worker.last_pass.statistics_years == len(YEARS)
    await worker.run_once()
    assert worker.last_pass.statistics_years == 0  # within the refresh period: not even fingerprinted
    clock.advance(timedelta(minutes=6))
    await worker.run_once()
    assert worker.last_pass.statistics_years == 0  # due, but nothing changed
    assert await disagreements(container) == []
