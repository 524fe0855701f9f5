"""statistics summary tables maintained by the worker

Revision ID: 0018_statistics_summaries
Revises: 0017_evidence_edits
Create Date: 2026-12-01

Issue 18 §5: grouped counts per fiscal year, month and value, the time to first answer per period, and per
fiscal year the fingerprint of the raw rows they were computed from. Aggregates of reference-data codes only.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from infra.db.types import UTCDateTime

revision = "0018_statistics_summaries"
down_revision = "0017_evidence_edits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "statistics_count",
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("fiscal_year", "dimension", "value", "bucket"),
    )
    op.create_table(
        "statistics_timing",
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("consultations", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("within_target", sa.Integer(), nullable=False),
        sa.Column("median_seconds", sa.Float(), nullable=True),
        sa.Column("p90_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("fiscal_year", "bucket"),
    )
    op.create_table(
        "statistics_state",
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("refreshed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fiscal_year"),
    )


def downgrade() -> None:
    op.drop_table("statistics_state")
    op.drop_table("statistics_timing")
    op.drop_table("statistics_count")
