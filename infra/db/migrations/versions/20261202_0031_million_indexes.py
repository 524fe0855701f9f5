"""indexes checked against EXPLAIN at 1 M consultations: the supervisor's workload of open cases

Revision ID: 0031_million_indexes
Revises: 0030_custody_pending
Create Date: 2026-12-02

Issue 12: the supervisor overview grouped the open cases by assignee and counted the overdue first answers
with two sequential scans of every consultation ever received (0.9 s and 0.55 s at 1 M cases). A partial
index of the open cases holding the assignee and both first-answer columns lets one index-only scan answer
both. Built with CREATE INDEX inside the migration's transaction: on a large database run it in a quiet
moment, or build it CONCURRENTLY by hand first with the same name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031_million_indexes"
down_revision = "0030_custody_pending"
branch_labels = None
depends_on = None

OPEN_CASES = "status IN ('answered', 'in_progress', 'submitted')"  # domain.consultations.OPEN_STATUSES


def _partial(name: str, table: str, columns: list[str], where: str) -> None:
    clause = sa.text(where)
    op.create_index(name, table, columns, postgresql_where=clause, sqlite_where=clause)


def upgrade() -> None:
    _partial(
        "ix_consultation_open_workload",
        "consultation",
        ["assignee_id", "first_answer_due_at", "first_answered_at"],
        OPEN_CASES,
    )


def downgrade() -> None:
    op.drop_index("ix_consultation_open_workload", table_name="consultation")
