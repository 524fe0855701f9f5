"""Two readings a month apart reveal nothing either withholds (issue 18, item 2).

The council reads its statistics in August and again in September of the same open fiscal year. Everything
published in both readings — cells, row totals (the year so far), quarter columns, month totals, the grand
total, as JSON and as CSV — is one system of linear equations over the true monthly cells. The attacker knows
all of it; no cell that a reading withholds may be determined by it. The data: LINE has six consultations a
month and then one person alone in a month, so (the year-so-far LINE total read the month after) − (the one read
that month) would be that person's cell; likewise a quarter as it closes minus its months read before."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from domain.actors import Role
from domain.calendar import JST
from domain.disclosure import System, derivable
from tests.statistics_data import Case, jst, seed

FY = 2026
MONTHS = [f"{FY + (3 + k) // 12:04d}-{(3 + k) % 12 + 1:02d}" for k in range(12)]


async def seed_with_one_alone(container, alone: int) -> None:  # type: ignore[no-untyped-def]
    """Web and chatbot in every month from April to August; LINE six a month, but one person alone in the
    month `alone`."""
    cases = []
    for month in (4, 5, 6, 7, 8):
        cases += [Case(jst(FY, month, 3), owner=10 * month + n, channel="web") for n in range(7)]
        cases += [Case(jst(FY, month, 4), owner=100 + 10 * month + n, channel="chatbot") for n in range(8)]
        line = 1 if month == alone else 6 if month < alone else 0
        cases += [Case(jst(FY, month, 5), owner=200 + 10 * month + n, channel="line") for n in range(line)]
    await seed(container, cases)


def months_of(column: str, closed: list[str]) -> list[str]:
    if column.startswith("FY"):
        return MONTHS
    if "-Q" in column:
        q = int(column[-1]) - 1
        return MONTHS[3 * q : 3 * q + 3]
    return [column]


Figure = tuple[list[tuple[str, str]], int]  # the (row, month) cells it adds up, and its value


def figures(table: dict, closed: list[str]) -> list[Figure]:  # type: ignore[type-arg]
    """Every published number of a table (JSON shape) as the sum of the true monthly cells it stands for."""
    keys = [r["key"] for r in table["rows"]]
    columns = [c["key"] for c in table["columns"]]
    out: list[Figure] = []
    for r in table["rows"]:
        for column, v in zip(columns, r["cells"], strict=True):
            if v is not None:
                out.append(([(r["key"], m) for m in months_of(column, closed)], v))
        if r["total"] is not None:  # the year so far: the closed months
            out.append(([(r["key"], m) for m in closed], r["total"]))
    for column, v in zip(columns, table["column_totals"], strict=True):
        if v is not None:
            out.append(([(k, m) for k in keys for m in months_of(column, closed)], v))
    if table["total"] is not None:
        out.append(([(k, m) for k in keys for m in closed], table["total"]))
    return out


def from_csv(raw: bytes) -> dict:  # type: ignore[type-arg]
    """The CSV back into the JSON shape (X: withheld)."""
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    header, body, totals = lines[0], lines[1:-1], lines[-1]
    value = lambda s: None if s == "X" else int(s)  # noqa: E731
    columns = [h.split(" (")[1].rstrip(")") for h in header[2:-1]]
    keys = {"Q1": f"{FY}-Q1", "Q2": f"{FY}-Q2", "Q3": f"{FY}-Q3", "Q4": f"{FY}-Q4"}
    return {
        "columns": [{"key": keys.get(c, c)} for c in columns],
        "rows": [{"key": b[1], "cells": [value(s) for s in b[2:-1]], "total": value(b[-1])} for b in body],
        "column_totals": [value(s) for s in totals[2:-1]],
        "total": value(totals[-1]),
    }


def revealed(published: list[Figure], withheld: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The withheld cells the published figures determine (exact elimination, as the suppression rule)."""
    values: dict[tuple[str, ...], int] = {("cell", *c): 0 for c in withheld}
    equations = []
    for n, (cells, v) in enumerate(published):
        values[("figure", str(n))] = v
        equations.append([*((("cell", *c), 1) for c in cells), (("figure", str(n)), -1)])
    system = System(values, equations, frozenset())  # type: ignore[arg-type]
    found = derivable(system, {("cell", *c) for c in withheld})  # type: ignore[arg-type]
    return [(str(k[1]), str(k[2])) for k in found]


async def readings(
    client, who, fmt: str, **extra: str
) -> tuple[list[Figure], set[tuple[str, str]], list[str]]:  # type: ignore[no-untyped-def]
    """One reading: the channel table by month and by quarter, as JSON or CSV."""
    published: list[Figure] = []
    withheld: set[tuple[str, str]] = set()
    closed: list[str] = []
    for granularity in ("month", "quarter"):
        params = {"fiscal_year": FY, "granularity": granularity, "format": fmt, **extra}
        response = await client.get("/v1/statistics/tables/channel", headers=who.headers, params=params)
        assert response.status_code == 200, response.text
        table = response.json() if fmt == "json" else from_csv(response.content)
        if granularity == "month":
            closed = [c["key"] for c in table["columns"]]
            withheld |= {
                (r["key"], m)
                for r in table["rows"]
                for m, v in zip(closed, r["cells"], strict=True)
                if v is None
            }
        published += figures(table, closed)
    return published, withheld, closed


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    "alone",
    [
        8,  # year so far in September − year so far in August = August's LINE cell
        6,  # the first quarter once closed (July) − April and May as read in June = June's LINE cell
    ],
)
async def test_two_readings_a_month_apart_single_no_one_out(
    client, people, container, clock, fmt, alone
) -> None:  # type: ignore[no-untyped-def]
    await seed_with_one_alone(container, alone)
    clock.set(datetime(FY, alone, 15, 12, tzinfo=JST))
    council = await people.create(Role.council)
    first, withheld_first, closed_first = await readings(client, council, fmt)
    assert closed_first == MONTHS[: alone - 4]
    clock.set(datetime(FY, alone + 1, 15, 12, tzinfo=JST))
    council = await people.create(Role.council)  # a month later: a new login
    supervisor = await people.create(Role.supervisor)
    second, withheld_second, closed_second = await readings(client, council, fmt)
    assert closed_second == MONTHS[: alone - 3]
    assert ("line", MONTHS[alone - 4]) in withheld_second  # the person alone
    # What each reading withholds, the two readings together must not give back.
    withheld = withheld_first | withheld_second
    assert revealed(first + second, withheld) == []

    # The attack spelled out: the LINE year-so-far totals of the two readings are not both published.
    def line_total(published: list[Figure], months: list[str]) -> int | None:
        cells = sorted(("line", m) for m in months)
        return next((v for c, v in published if sorted(c) == cells), None)

    assert line_total(first, closed_first) is None or line_total(second, closed_second) is None
    # Each reading on its own reveals nothing either, and publishing follows the same rule.
    assert revealed(first, withheld_first) == [] and revealed(second, withheld_second) == []
    assert (await readings(client, supervisor, fmt, suppress="true"))[0] == second
    # Supervisors' own view is unchanged: every month, in full.
    full = await client.get(
        "/v1/statistics/tables/channel", headers=supervisor.headers, params={"fiscal_year": FY}
    )
    line = next(r for r in full.json()["rows"] if r["key"] == "line")
    assert line["cells"][alone - 4] == 1 and line["total"] == 6 * (alone - 4) + 1
