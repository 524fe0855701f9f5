"""The statistics queries' plans at a moderate size (EXPLAIN): the range of the fiscal year is read through
the created_at indexes, the re-consultation check probes the owner's index instead of scanning the table per
row, and the categories join through their key. The timing itself is tests/bench/bench_statistics.py."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import text

from domain.statistics import groupings, month_buckets
from tests.statistics_data import random_cases, seed

FY = 2025


class Capture:
    def __init__(self) -> None:
        self.sql: list[tuple[str, object]] = []


async def plans(container, dimension: str) -> str:  # type: ignore[no-untyped-def]
    """The plan of the one statement `counts(dimension)` runs."""
    captured: list[tuple[str, object]] = []
    from sqlalchemy import event

    sync_engine = container.engine.sync_engine

    def grab(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(sync_engine, "before_cursor_execute", grab)
    try:
        async with container.statistics.uow() as uow:
            await uow.statistics.counts(
                dimension, month_buckets(FY), groupings(container.knowledge).get(dimension)
            )
    finally:
        event.remove(sync_engine, "before_cursor_execute", grab)
    statement, parameters = captured[-1]
    pg = container.engine.dialect.name == "postgresql"
    async with container.engine.connect() as conn:
        if pg:
            await conn.execute(text("ANALYZE"))
        prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()  # type: ignore[arg-type]
    return "\n".join(str(r[-1] if not pg else r[0]) for r in rows)


@pytest.fixture
async def moderate(container):  # type: ignore[no-untyped-def]
    # Three fiscal years, so the year asked is a third of the table.
    cases = []
    for fy in (FY - 1, FY, FY + 1):
        cases += random_cases(1500, fy, random.Random(fy), owners=1200)
    await seed(container, cases)


async def test_the_fiscal_year_is_read_through_the_indexes(container, moderate) -> None:  # type: ignore[no-untyped-def]
    pg = container.engine.dialect.name == "postgresql"
    again = await plans(container, "reconsultation")
    # The re-consultation check is one index probe per case, never a scan of the table per case.
    assert "ix_consultation_owner_queue" in again, again
    assert (
        ("Seq Scan on consultation consultation_1" not in again)
        if pg
        else ("SCAN consultation_1" not in again)
    )
    if not pg:
        # SQLite has no statistics to weigh a third of the table against a scan: the ranges must use the
        # indexes. (PostgreSQL rightly scans a third of a small table; at scale see tests/bench.)
        # (ix_consultation_period covers status and channel too: SQLite reads it alone, as a covering index.)
        channel = await plans(container, "channel")
        assert re.search(
            r"USING (COVERING )?INDEX ix_consultation_(queue|period) \(created_at>\? AND created_at<\?\)",
            channel,
        ), channel
        assert "ix_referral_statistics" in await plans(container, "referral_desk")
        category = await plans(container, "category_group")
        assert "consultation_category" in category and "SCAN consultation_category" not in category
