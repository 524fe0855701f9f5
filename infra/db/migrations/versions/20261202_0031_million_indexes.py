"""indexes checked against EXPLAIN at 1 M consultations: the supervisor's workload, a period's categories

Revision ID: 0031_million_indexes
Revises: 0030_custody_pending
Create Date: 2026-12-02

Issue 12: the supervisor overview grouped the open cases by assignee and counted the overdue first answers
with two sequential scans of every consultation ever received (0.9 s and 0.55 s at 1 M cases). A partial
index of the open cases holding the assignee and both first-answer columns lets one index-only scan answer
both. The breakdown by category of a period joined every category row ever written to the period's cases
(a hash join over 1.3 M rows): a category row now carries its case's created_at (copied here, set with the
row afterwards; it never changes) and the period is one range of ix_consultation_category_period. The
breakdowns by status, channel and month are one index-only range of ix_consultation_period. Built with
CREATE INDEX inside the migration's transaction: on a large database run it in a quiet
moment, or build it CONCURRENTLY by hand first with the same name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.types import UTCDateTime

revision = "0031_million_indexes"
down_revision = "0030_custody_pending"
branch_labels = None
depends_on = None

OPEN_CASES = "status IN ('answered', 'in_progress', 'submitted')"  # domain.consultations.OPEN_STATUSES


def _partial(name: str, table: str, columns: list[str], where: str) -> None:
    clause = sa.text(where)
    op.create_index(name, table, columns, postgresql_where=clause, sqlite_where=clause)


def upgrade() -> None:
    with op.batch_alter_table("consultation_category") as batch:
        batch.add_column(sa.Column("created_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE consultation_category SET created_at = (SELECT c.created_at FROM consultation c"
        " WHERE c.id = consultation_category.consultation_id)"
    )
    with op.batch_alter_table("consultation_category") as batch:
        batch.alter_column("created_at", existing_type=UTCDateTime(), nullable=False)
    op.create_index(
        "ix_consultation_category_period", "consultation_category", ["created_at", "category_code"]
    )
    op.create_index("ix_consultation_period", "consultation", ["created_at", "status", "channel"])
    _partial(
        "ix_consultation_open_workload",
        "consultation",
        ["assignee_id", "first_answer_due_at", "first_answered_at"],
        OPEN_CASES,
    )


def downgrade() -> None:
    op.drop_index("ix_consultation_open_workload", table_name="consultation")
    op.drop_index("ix_consultation_period", table_name="consultation")
    op.drop_index("ix_consultation_category_period", table_name="consultation_category")
    with op.batch_alter_table("consultation_category") as batch:
        batch.drop_column("created_at")
