"""The statistics repository on SQLite and PostgreSQL (`--db postgres`): every grouped count against a recount
of the seeded cases in Python, and the percentiles against percentile_cont's definition."""

from __future__ import annotations

import random
import statistics as pystats
from collections import Counter
from datetime import timedelta

import pytest

from domain.statistics import buckets, fiscal_year_of, groupings, month_buckets
from tests.statistics_data import Case, jst, random_cases, request_sent, seed, with_requests

FY = 2025


def month_of(c: Case) -> str:
    return next(b.key for b in month_buckets(FY) if b.start <= c.created_at < b.end)


def recount(cases: list[Case], dimension: str, container) -> Counter:  # type: ignore[no-untyped-def,type-arg]
    """What the SQL must find, counted row by row here (the test's independent oracle)."""
    groups = groupings(container.knowledge)
    out: Counter = Counter()  # type: ignore[type-arg]
    seen_owner_first: dict[int, object] = {}
    for c in sorted(cases, key=lambda c: c.created_at):
        m = month_of(c)
        if dimension in ("channel", "relation"):
            out[(getattr(c, dimension), m)] += 1
        elif dimension == "reconsultation":
            out[("repeat" if c.owner in seen_owner_first else "first", m)] += 1
            seen_owner_first.setdefault(c.owner, c)
        elif dimension == "category":
            for code in set(c.categories):
                out[(code, m)] += 1
        elif dimension == "category_group":
            for g in {groups["category_group"][code] for code in c.categories}:
                out[(g, m)] += 1
        elif dimension == "platform":
            for p in set(c.platforms):
                out[(p, m)] += 1
        elif dimension == "platform_kind":
            for k in {groups["platform_kind"][p] for p in c.platforms}:
                out[(k, m)] += 1
        elif dimension == "urgency_flag":
            for f in set(c.urgency_flags):
                out[(f, m)] += 1
        elif dimension in ("request_kind", "request_outcome"):
            for kind, status in c.requests:
                month = next((b.key for b in month_buckets(FY) if b.start <= request_sent(c) < b.end), None)
                if status != "drafted" and month:
                    outcome = "awaiting" if status in ("sent", "acknowledged") else status
                    out[(kind if dimension == "request_kind" else outcome, month)] += 1
        elif dimension == "referral_desk":
            for d in c.referrals:
                when = c.created_at + timedelta(days=1)
                month = next((b.key for b in month_buckets(FY) if b.start <= when < b.end), None)
                if month:
                    out[(d, month)] += 1
    return out


DIMS = [
    "channel",
    "relation",
    "reconsultation",
    "category",
    "category_group",
    "platform",
    "platform_kind",
    "urgency_flag",
    "referral_desk",
    "request_kind",
    "request_outcome",
]


@pytest.fixture
async def seeded(container):  # type: ignore[no-untyped-def]
    cases = with_requests(random_cases(300, FY, random.Random(18), owners=200), random.Random(19))
    # Boundaries in Japan time: 1 April 00:00 JST is in the year, 31 March 23:59 JST before it is not; the
    # last instant of the year is in March.
    cases += [
        Case(jst(FY, 4, 1, 0), owner=500, channel="line"),
        Case(jst(FY, 3, 31, 23), owner=501, channel="line"),
        Case(jst(FY + 1, 3, 31, 23), owner=502, channel="chatbot"),
        Case(jst(FY + 1, 4, 1, 0), owner=503, channel="chatbot"),
    ]
    await seed(container, cases)
    inside = [c for c in cases if month_buckets(FY)[0].start <= c.created_at < month_buckets(FY)[-1].end]
    return inside


@pytest.mark.parametrize("dimension", DIMS)
async def test_grouped_counts_equal_a_recount(container, seeded, dimension) -> None:  # type: ignore[no-untyped-def]
    async with container.statistics.uow() as uow:
        found = await uow.statistics.counts(
            dimension, month_buckets(FY), groupings(container.knowledge).get(dimension)
        )
    assert found == dict(recount(seeded, dimension, container))
    assert sum(found.values()) > 0


async def test_fiscal_year_boundaries_are_japan_time(container, seeded) -> None:  # type: ignore[no-untyped-def]
    async with container.statistics.uow() as uow:
        found = await uow.statistics.counts("channel", month_buckets(FY), None)
    assert found[("line", f"{FY}-04")] >= 1
    assert found[("chatbot", f"{FY + 1}-03")] >= 1
    assert fiscal_year_of(jst(FY + 1, 3, 31, 23)) == FY and fiscal_year_of(jst(FY + 1, 4, 1, 0)) == FY + 1


def percentile_cont(values: list[float], p: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation at position p·(n−1) of the sorted values."""
    s = sorted(values)
    pos = p * (len(s) - 1)
    low = int(pos)
    high = min(low + 1, len(s) - 1)
    return s[low] + (pos - low) * (s[high] - s[low])


@pytest.mark.parametrize("granularity", ["month", "quarter", "year"])
async def test_time_to_first_answer_percentiles(container, seeded, granularity) -> None:  # type: ignore[no-untyped-def]
    columns = buckets(FY, granularity)
    async with container.statistics.uow() as uow:
        found = await uow.statistics.first_answer_times(columns)
    for b in columns:
        mine = [c for c in seeded if b.start <= c.created_at < b.end]
        took = [c.first_answer_after.total_seconds() for c in mine if c.first_answer_after]
        t = found[b.key]
        assert t.consultations == len(mine)
        assert t.answered == len(took)
        assert t.within_target == sum(
            1 for c in mine if c.first_answer_after and c.first_answer_after <= c.due_after
        )
        assert t.median_seconds == pytest.approx(percentile_cont(took, 0.5), abs=1.0)
        assert t.p90_seconds == pytest.approx(percentile_cont(took, 0.9), abs=1.0)
    if granularity == "year":
        took = [c.first_answer_after.total_seconds() for c in seeded if c.first_answer_after]
        assert found[columns[0].key].median_seconds == pytest.approx(pystats.median(took), abs=1.0)


async def test_percentiles_of_small_and_even_groups(container) -> None:  # type: ignore[no-untyped-def]
    """One value, two values (the median interpolates), and ten (p90 between the 9th and 10th)."""
    hours = {4: [5], 5: [1, 4], 6: list(range(1, 11))}
    cases = [
        Case(jst(FY, month, 10), owner=i * 10 + month, first_answer_after=timedelta(hours=h))
        for month, hs in hours.items()
        for i, h in enumerate(hs)
    ]
    await seed(container, cases)
    async with container.statistics.uow() as uow:
        found = await uow.statistics.first_answer_times(month_buckets(FY))
    assert found[f"{FY}-04"].median_seconds == pytest.approx(5 * 3600, abs=1)
    assert found[f"{FY}-05"].median_seconds == pytest.approx(2.5 * 3600, abs=1)
    assert found[f"{FY}-06"].median_seconds == pytest.approx(5.5 * 3600, abs=1)
    assert found[f"{FY}-06"].p90_seconds == pytest.approx(9.1 * 3600, abs=1)
    assert f"{FY}-07" not in found
