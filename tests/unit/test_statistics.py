"""Fiscal years in Japan time, and the tables the domain builds from grouped counts."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from domain.statistics import (
    DIMENSIONS,
    Table,
    _vocabulary,
    buckets,
    build_tables,
    fiscal_year_of,
    month_buckets,
)
from infra.knowledge import load_knowledge

K = load_knowledge()


def test_a_fiscal_year_runs_april_to_march_in_japan_time() -> None:
    months = month_buckets(2026)
    assert [m.key for m in months][:2] == ["2026-04", "2026-05"] and months[-1].key == "2027-03"
    assert months[0].start.astimezone(UTC) == datetime(2026, 3, 31, 15, tzinfo=UTC)
    assert months[-1].end.astimezone(UTC) == datetime(2027, 3, 31, 15, tzinfo=UTC)
    assert [b.label_ja for b in buckets(2026, "quarter")] == [
        "第1四半期",
        "第2四半期",
        "第3四半期",
        "第4四半期",
    ]
    assert buckets(2026, "year")[0].label_ja == "2026年度"
    assert fiscal_year_of(datetime(2027, 3, 31, 14, 59, tzinfo=UTC)) == 2026
    assert fiscal_year_of(datetime(2027, 3, 31, 15, 0, tzinfo=UTC)) == 2027


def counts_for(cells: dict[str, dict[str, list[int]]]) -> dict[str, dict[tuple[str, str], int]]:
    keys = [m.key for m in month_buckets(2026)]
    return {
        dim: {(row, keys[j]): v for row, values in rows.items() for j, v in enumerate(values) if v}
        for dim, rows in cells.items()
    }


def test_tables_with_the_same_margins_withhold_the_same_margins() -> None:
    """Channel and relation both count every consultation once: a month total withheld in one table and shown
    in the other would undo the protection, so the margins are withheld together."""
    april = [0] * 12
    web, line = list(april), list(april)
    web[0], web[1], line[0], line[1] = 20, 20, 3, 20  # April: 23 in all
    relation_self, relation_family = list(april), list(april)
    relation_self[0], relation_self[1], relation_family[0], relation_family[1] = 12, 30, 11, 10
    counts = counts_for(
        {
            "channel": {"web": web, "line": line},
            "relation": {"self": relation_self, "family": relation_family},
            "reconsultation": {"first": [a + b for a, b in zip(web, line, strict=True)]},
        }
    )
    tables = {t.code: t for t in build_tables(K, counts, 2026, "month", suppressed=True)}
    hidden = {code: {j for j, v in enumerate(t.column_totals) if v is None} for code, t in tables.items()}
    assert hidden["channel"] == hidden["relation"] == hidden["reconsultation"]
    assert tables["channel"].rows[[r.key for r in tables["channel"].rows].index("line")].cells[0] is None
    full = {t.code: t for t in build_tables(K, counts, 2026, "quarter", suppressed=False)}
    assert full["channel"].column_totals[0] == 63 and full["channel"].total == 63


def test_every_vocabulary_value_is_a_row_and_unknown_codes_are_kept() -> None:
    counts = counts_for({d.code: {} for d in DIMENSIONS})
    counts["channel"][("fax", "2026-05")] = 7
    tables = {t.code: t for t in build_tables(K, counts, 2026, "month", suppressed=False)}
    assert [r.key for r in tables["channel"].rows] == ["web", "line", "chatbot", "fax"]
    assert [r.key for r in tables["category_group"].rows] == ["RIGHTS", "ILLEGAL", "PUBLIC", "YOUTH", "OTHER"]
    assert tables["category_group"].rows[0].label_ja.startswith("違法:")
    assert {r.key for r in tables["platform_kind"].rows} >= {
        "sns",
        "anonymous_board",
        "search",
        "video",
        "blog",
    }


def test_a_closed_month_is_published_the_same_in_every_later_reading() -> None:
    """The differencing attack (issue 18): the council reads in one month and again in a later one. Each
    closed month is protected on its own, so its published cells and total never change as later months
    close; and every aggregate (a row's year so far, a quarter, the grand total) is published only as the
    sum of published months, so two readings together give nothing either withholds."""
    rng = random.Random(18)
    counts = counts_for(
        {
            d.code: {lab.code: [rng.choice([0, 1, 2, 4, 5, 7, 9, 30]) for _ in range(12)] for lab in labels}
            for d in DIMENSIONS
            for labels in [_vocabulary(K, d.code)]
        }
    )

    def read(closed: int, granularity: str) -> dict[str, Table]:
        tables = build_tables(K, counts, 2026, granularity, suppressed=True, closed=closed)
        return {t.code: t for t in tables}

    readings = {closed: (read(closed, "month"), read(closed, "quarter")) for closed in range(1, 13)}
    withheld = 0
    for closed, (tables, quarter_tables) in readings.items():
        for code, t in tables.items():
            later = readings[12][0][code]
            for row, final in zip(t.rows, later.rows, strict=True):
                assert row.cells == final.cells[:closed], (closed, code, row.key)
                withheld += row.cells.count(None)
                shown = [v for v in row.cells if v is not None]
                assert row.total == (sum(shown) if len(shown) == closed else None)
            assert t.column_totals == later.column_totals[:closed], (closed, code)
            totals = [v for v in t.column_totals if v is not None]
            assert t.total == (sum(totals) if len(totals) == closed else None)
            for row, quarters in zip(t.rows, quarter_tables[code].rows, strict=True):
                assert len(quarters.cells) == closed // 3
                for k, v in enumerate(quarters.cells):
                    part = row.cells[3 * k : 3 * k + 3]
                    assert v == (None if None in part else sum(x for x in part if x is not None))
    assert withheld > 100  # the data set does single people out: the rule had work to do
