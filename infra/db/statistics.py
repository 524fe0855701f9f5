"""The statistics in SQL: every figure is one GROUP BY over the fiscal year, on SQLite and PostgreSQL alike.

Buckets (months, quarters) are given as instants computed in Japan time, and the SQL assigns a row to its
bucket with a CASE over those instants: the same expression on both databases, no time-zone functions, and
the range condition stays on the indexed `created_at`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statistics import OUTCOME_OF_STATUS, Bucket, Timing
from infra.db.tables import ConsultationCategoryRow, ConsultationRow, ReferralRow
from infra.db.tables_requests import RequestRow

# Core columns (SQLModel types its attributes as the Python values, which mypy cannot build SQL from).
C_TABLE = ConsultationRow.__table__  # type: ignore[attr-defined]
CC_TABLE = ConsultationCategoryRow.__table__  # type: ignore[attr-defined]
C, CC = C_TABLE.c, CC_TABLE.c
R = ReferralRow.__table__.c  # type: ignore[attr-defined]
Q = RequestRow.__table__.c  # type: ignore[attr-defined]


def _bucket(column: Any, buckets: Sequence[Bucket]) -> Any:
    if len(buckets) == 1:
        return literal(buckets[0].key)
    return case(*[(column < b.end, literal(b.key)) for b in buckets[:-1]], else_=literal(buckets[-1].key))


def _span(column: Any, buckets: Sequence[Bucket]) -> Any:
    return and_(column >= buckets[0].start, column < buckets[-1].end)


def _grouped(column: Any, groups: Mapping[str, str]) -> Any:
    return case(*[(column == code, literal(group)) for code, group in groups.items()], else_=literal("other"))


class SqlStatistics:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    @property
    def _pg(self) -> bool:
        return self.db.bind.dialect.name == "postgresql"  # type: ignore[union-attr]

    def _elements(self, column: Any) -> Any:
        """The elements of a JSON array column as a table joined to its row."""
        if self._pg:
            return func.json_array_elements_text(column).table_valued("value").alias("element")
        return func.json_each(column).table_valued("value").alias("element")

    async def counts(
        self, dimension: str, buckets: Sequence[Bucket], groups: Mapping[str, str] | None
    ) -> dict[tuple[str, str], int]:
        """(value, bucket) → count. The rows are labelled in a subquery and grouped outside it, so both
        databases group by the same columns (PostgreSQL would not match two copies of a parameterised CASE)."""
        distinct = True
        key: Any
        if dimension in ("channel", "relation"):
            inner = select(
                getattr(C, dimension).label("k"), _bucket(C.created_at, buckets).label("b"), C.id.label("i")
            )
            inner, distinct = inner.where(_span(C.created_at, buckets)), False
        elif dimension == "reconsultation":
            earlier = C_TABLE.alias("earlier").c
            before = exists().where(earlier.owner_id == C.owner_id, earlier.created_at < C.created_at)
            key = case((before, literal("repeat")), else_=literal("first"))
            inner = select(key.label("k"), _bucket(C.created_at, buckets).label("b"), C.id.label("i"))
            inner, distinct = inner.where(_span(C.created_at, buckets)), False
        elif dimension in ("category", "category_group"):
            code = CC.category_code
            key = code if dimension == "category" else _grouped(code, groups or {})
            inner = (
                select(key.label("k"), _bucket(C.created_at, buckets).label("b"), C.id.label("i"))
                .select_from(C_TABLE)
                .join(CC_TABLE, CC.consultation_id == C.id)
                .where(_span(C.created_at, buckets))
            )
            distinct = dimension == "category_group"  # two leaves of one group count the case once
        elif dimension in ("platform", "platform_kind", "urgency_flag"):
            element = self._elements(C.urgency_flags if dimension == "urgency_flag" else C.platforms)
            key = element.c.value if dimension != "platform_kind" else _grouped(element.c.value, groups or {})
            inner = (
                select(key.label("k"), _bucket(C.created_at, buckets).label("b"), C.id.label("i"))
                .select_from(C_TABLE)
                .join(element, true())
                .where(_span(C.created_at, buckets))
            )
        elif dimension == "referral_desk":
            inner = select(R.desk_code.label("k"), _bucket(R.created_at, buckets).label("b"), R.id.label("i"))
            inner, distinct = inner.where(_span(R.created_at, buckets)), False
        elif dimension in ("request_kind", "request_outcome"):
            sent = Q.sent_at
            key = (
                Q.kind
                if dimension == "request_kind"
                else case(
                    *[(Q.status == status, literal(o)) for status, o in OUTCOME_OF_STATUS.items()],
                    else_=Q.status,
                )
            )
            inner = select(key.label("k"), _bucket(sent, buckets).label("b"), Q.id.label("i"))
            inner, distinct = inner.where(sent.is_not(None), _span(sent, buckets)), False
        else:
            raise ValueError(f"unknown dimension {dimension}")
        q = inner.subquery("counted")
        n = func.count(func.distinct(q.c.i)) if distinct else func.count()
        rows = await self.db.execute(select(q.c.k, q.c.b, n).group_by(q.c.k, q.c.b))
        return {(str(k), str(b)): int(v) for k, b, v in rows}

    def _seconds(self, later: Any, earlier: Any) -> Any:
        if self._pg:
            return func.extract("epoch", later - earlier)
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0

    async def first_answer_times(self, buckets: Sequence[Bucket]) -> dict[str, Timing]:
        on_time = case((C.first_answered_at <= C.first_answer_due_at, 1), else_=0)
        opened = (
            select(
                _bucket(C.created_at, buckets).label("b"),
                C.first_answered_at.label("answered_at"),
                on_time.label("on_time"),
                self._seconds(C.first_answered_at, C.created_at).label("took"),
            )
            .where(_span(C.created_at, buckets))
            .subquery("opened")
        )
        totals = await self.db.execute(
            select(
                opened.c.b, func.count(), func.count(opened.c.answered_at), func.sum(opened.c.on_time)
            ).group_by(opened.c.b)
        )
        figures: dict[str, list[Any]] = {
            str(b): [int(n), int(a), int(w or 0), None, None] for b, n, a, w in totals
        }
        answered = opened.c.took.is_not(None)
        if self._pg:
            query = (
                select(
                    opened.c.b,
                    func.percentile_cont(0.5).within_group(opened.c.took),
                    func.percentile_cont(0.9).within_group(opened.c.took),
                )
                .where(answered)
                .group_by(opened.c.b)
            )
        else:
            query = self._sqlite_percentiles(opened, answered)
        for b, median, p90 in await self.db.execute(query):
            figures[str(b)][3:5] = [
                None if median is None else float(median),
                None if p90 is None else float(p90),
            ]
        return {b: Timing(*f) for b, f in figures.items()}

    @staticmethod
    def _sqlite_percentiles(opened: Any, where: Any) -> Any:
        """percentile_cont (linear interpolation between the closest ranks, as PostgreSQL) with window
        functions: rank each duration within its bucket, then pick the two ranks around p·(n−1). The position
        is computed in integers (p as a fraction), so no rounding error moves it to the wrong rank."""
        ranked = (
            select(
                opened.c.b,
                opened.c.took,
                (func.row_number().over(partition_by=opened.c.b, order_by=opened.c.took) - 1).label("rank"),
                func.count().over(partition_by=opened.c.b).label("n"),
            )
            .where(where)
            .subquery("ranked")
        )

        def percentile(numerator: int, denominator: int) -> Any:
            base = (ranked.c.n - 1) * numerator // denominator
            fraction = ((ranked.c.n - 1) * numerator % denominator) * 1.0 / denominator
            low = func.max(case((ranked.c.rank == base, ranked.c.took)))
            high = func.max(case((ranked.c.rank == base + 1, ranked.c.took)))
            return low + func.max(fraction) * (func.coalesce(high, low) - low)

        return select(ranked.c.b, percentile(1, 2), percentile(9, 10)).group_by(ranked.c.b)
