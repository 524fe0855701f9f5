"""Summary tables of the statistics (issue 18 §5): grouped counts per fiscal year, month and value, and the time
to first answer per period, maintained by the worker (infra/db/statistics_summary.py). They hold aggregates of
reference-data codes only (channels, categories, platforms, desks, request kinds): no person, no consultation,
no free text."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from infra.db.tables import ts

__all__ = ["StatisticsCountRow", "StatisticsStateRow", "StatisticsTimingRow"]


class StatisticsCountRow(SQLModel, table=True):
    __tablename__ = "statistics_count"

    fiscal_year: int = Field(primary_key=True)
    dimension: str = Field(primary_key=True, max_length=32)
    value: str = Field(primary_key=True, max_length=64)
    bucket: str = Field(primary_key=True, max_length=16)  # the month, "2026-04"
    count: int


class StatisticsTimingRow(SQLModel, table=True):
    __tablename__ = "statistics_timing"

    fiscal_year: int = Field(primary_key=True)
    bucket: str = Field(primary_key=True, max_length=16)  # a month, a quarter or the year
    consultations: int
    answered: int
    within_target: int
    median_seconds: float | None = None
    p90_seconds: float | None = None


class StatisticsStateRow(SQLModel, table=True):
    """Per fiscal year: what the summaries were computed from (a fingerprint of the raw rows) and when."""

    __tablename__ = "statistics_state"

    fiscal_year: int = Field(primary_key=True)
    fingerprint: str = Field(max_length=200)
    refreshed_at: datetime = ts(nullable=False)
