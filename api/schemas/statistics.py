"""Bodies of the statistics: tables of counts per fiscal year, quarter or month, and the time to first answer."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Output, Timestamp
from domain.statistics import Statistics, Table, TimingRow

WITHHELD = (
    "null: withheld (fewer than the threshold, or a cell that would let one be recomputed from a total)"
)


class ColumnOut(Output):
    key: str = Field(examples=["2026-04"])
    label_ja: str = Field(examples=["2026年4月"])
    label_en: str
    start: Timestamp = Field(description="First instant of the period (Japan time boundary, given in UTC)")
    end: Timestamp = Field(description="First instant after the period")
    provisional: bool = Field(
        description="The period has not ended yet, so its figures still change (supervisors' full view only: "
        "suppressed figures cover ended periods only)"
    )


class TableRowOut(Output):
    key: str = Field(description="The code counted (a channel, relation, category, platform, ...)")
    label_ja: str
    label_en: str
    cells: list[int | None] = Field(description=f"One count per column; {WITHHELD}")
    total: int | None = Field(description=f"The row's total over the fiscal year; {WITHHELD}")


class TableOut(Output):
    code: str = Field(examples=["channel"])
    label_ja: str = Field(examples=["相談経路"])
    label_en: str = Field(examples=["channel"])
    note_ja: str
    suppressed: bool = Field(description="Whether the suppression rule was applied")
    columns: list[ColumnOut]
    rows: list[TableRowOut]
    column_totals: list[int | None] = Field(description=f"Per column, the sum of the cells; {WITHHELD}")
    total: int | None


class TimingRowOut(Output):
    key: str
    label_ja: str
    label_en: str
    consultations: int | None = Field(description="Consultations opened in the period")
    answered: int | None = Field(description="Of those, answered")
    within_target: int | None = Field(description="Answered by their first-answer due time")
    within_target_share: float | None
    median_hours: float | None = Field(description="Median time to first answer (hours, percentile_cont)")
    p90_hours: float | None = Field(description="90th percentile of the time to first answer (hours)")
    provisional: bool = Field(description="The period has not ended yet (supervisors' full view only)")


class FirstAnswerOut(Output):
    target_ja: str
    rows: list[TimingRowOut]


class StatisticsOut(Output):
    fiscal_year: int = Field(description="The year the fiscal year starts (April–March, Japan time)")
    granularity: str = Field(examples=["month"])
    start: Timestamp
    end: Timestamp
    suppressed: bool
    threshold: int = Field(description="Counts below this are withheld when suppressed")
    tables: list[TableOut]
    first_answer: FirstAnswerOut


def table_out(t: Table) -> TableOut:
    return TableOut(
        code=t.code,
        label_ja=t.label_ja,
        label_en=t.label_en,
        note_ja=t.note_ja,
        suppressed=t.suppressed,
        columns=[
            ColumnOut(
                key=c.key,
                label_ja=c.label_ja,
                label_en=c.label_en,
                start=c.start,
                end=c.end,
                provisional=c.provisional,
            )
            for c in t.columns
        ],
        rows=[
            TableRowOut(key=r.key, label_ja=r.label_ja, label_en=r.label_en, cells=r.cells, total=r.total)
            for r in t.rows
        ],
        column_totals=t.column_totals,
        total=t.total,
    )


def timing_out(rows: list[TimingRow]) -> list[TimingRowOut]:
    return [TimingRowOut(**{k: getattr(r, k) for k in TimingRowOut.model_fields}) for r in rows]


def statistics_out(s: Statistics) -> StatisticsOut:
    return StatisticsOut(
        fiscal_year=s.fiscal_year,
        granularity=s.granularity,
        start=s.start,
        end=s.end,
        suppressed=s.suppressed,
        threshold=s.threshold,
        tables=[table_out(t) for t in s.tables],
        first_answer=FirstAnswerOut(target_ja=s.target_ja, rows=timing_out(s.first_answer)),
    )
