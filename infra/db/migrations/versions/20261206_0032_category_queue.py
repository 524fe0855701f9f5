"""the staff queue filtered by one category reads that category's cases newest first from one index

Revision ID: 0032_category_queue
Revises: 0031_million_indexes
Create Date: 2026-12-06

Issue 12: a queue page filtered by a category walked the whole queue newest first and probed each case for
the category until it had a page. That costs what lies between the newest case and the category's 50th
newest: constant while the category is common among recent cases, but thousands of probes as soon as it is
not (2,000 newer intakes of other categories halved the first category page's req/s in tests/bench/run.py;
a rare category at 1 M cases walks most of the table). A category row carries its case's created_at
(0031), so (category_code, created_at, consultation_id) orders one category's cases as the queue does: the
page is one backward range of this index. It replaces the index on category_code alone, which is its
prefix. Built with CREATE INDEX inside the migration's transaction: on a large database run it in a quiet
moment, or build it CONCURRENTLY by hand first with the same name.
"""

from __future__ import annotations

from alembic import op

revision = "0032_category_queue"
down_revision = "0031_million_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_consultation_category_queue",
        "consultation_category",
        ["category_code", "created_at", "consultation_id"],
    )
    op.drop_index("ix_consultation_category_category_code", table_name="consultation_category")


def downgrade() -> None:
    op.create_index("ix_consultation_category_category_code", "consultation_category", ["category_code"])
    op.drop_index("ix_consultation_category_queue", table_name="consultation_category")
