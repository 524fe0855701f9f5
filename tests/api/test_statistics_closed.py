"""The council sees closed periods only (issue 18): months, quarters and the fiscal year that have ended by
the clock (Japan time); the still-filling period is shown to supervisors, marked provisional."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.actors import Role
from domain.calendar import JST
from domain.statistics import closed_months
from tests.statistics_data import Case, jst, seed

FY = 2026
YEAR = {"fiscal_year": FY}


def test_a_month_closes_at_midnight_japan_time() -> None:
    first = datetime(2026, 5, 1, tzinfo=JST)
    assert closed_months(FY, first - timedelta(microseconds=1)) == 0
    assert closed_months(FY, first) == 1
    assert closed_months(FY, datetime(2026, 8, 15, 12, tzinfo=JST)) == 4
    assert closed_months(FY, datetime(2027, 4, 1, tzinfo=JST)) == 12
    assert closed_months(FY, datetime(2026, 3, 31, 23, tzinfo=JST)) == 0


@pytest.fixture
async def data(container):  # type: ignore[no-untyped-def]
    cases = []
    for month in (4, 5, 6, 7, 8):
        cases += [Case(jst(FY, month, 3), owner=10 * month + n, channel="web") for n in range(7)]
    cases += [Case(jst(FY, 8, 31, 23), owner=200 + n, channel="line") for n in range(6)]  # late on the 31st
    await seed(container, cases)
    return cases


async def read(client, who, **params):  # type: ignore[no-untyped-def]
    response = await client.get("/v1/statistics", headers=who.headers, params={**YEAR, **params})
    assert response.status_code == 200, response.text
    return response.json()


def channel(body: dict) -> dict:  # type: ignore[type-arg]
    return next(t for t in body["tables"] if t["code"] == "channel")


async def test_mid_month_the_council_sees_the_ended_months_only(client, people, data, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(FY, 8, 15, 12, tzinfo=JST))  # first: the tokens are issued by the same clock
    council = await people.create(Role.council)
    supervisor = await people.create(Role.supervisor)
    months = channel(await read(client, council))
    assert [c["key"] for c in months["columns"]] == ["2026-04", "2026-05", "2026-06", "2026-07"]
    assert months["column_totals"] == [7, 7, 7, 7]  # August's 13 (still filling) are not there
    assert all(len(r["cells"]) == 4 for r in months["rows"])
    assert months["total"] == 28  # the year so far: its closed months
    assert not any(c["provisional"] for c in months["columns"])
    quarters = channel(await read(client, council, granularity="quarter"))
    assert [c["key"] for c in quarters["columns"]] == [f"{FY}-Q1"] and quarters["column_totals"] == [21]
    year = channel(await read(client, council, granularity="year"))
    assert year["columns"] == [] and year["column_totals"] == []
    timing = (await read(client, council))["first_answer"]["rows"]
    assert [r["key"] for r in timing] == ["2026-04", "2026-05", "2026-06", "2026-07"]
    # Publishing (a supervisor asking for the suppressed figures) follows the same rule.
    published = channel(await read(client, supervisor, suppress="true"))
    assert published == months
    # The supervisors' own view: every month, August and later marked provisional.
    full = channel(await read(client, supervisor))
    assert len(full["columns"]) == 12 and full["column_totals"][4] == 13 and full["total"] == 41
    assert [c["provisional"] for c in full["columns"]] == [False] * 4 + [True] * 8
    q = channel(await read(client, supervisor, granularity="quarter"))
    assert [c["provisional"] for c in q["columns"]] == [False, True, True, True]
    timing = (await read(client, supervisor, granularity="quarter"))["first_answer"]["rows"]
    assert [r["provisional"] for r in timing] == [False, True, True, True]


async def test_at_the_month_boundary_the_month_closes(client, people, data, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(FY, 9, 1, tzinfo=JST) - timedelta(seconds=30))
    council = await people.create(Role.council)
    supervisor = await people.create(Role.supervisor)
    before = channel(await read(client, council))
    assert [c["key"] for c in before["columns"]][-1] == "2026-07"
    clock.set(datetime(FY, 9, 1, tzinfo=JST))
    after = channel(await read(client, council))
    assert [c["key"] for c in after["columns"]][-1] == "2026-08"
    assert after["column_totals"][-1] == 13  # the cases late on 31 August (Japan time) count in August
    line = next(r for r in after["rows"] if r["key"] == "line")
    assert line["cells"][-1] == 6
    full = channel(await read(client, supervisor))
    assert [c["provisional"] for c in full["columns"]] == [False] * 5 + [True] * 7
