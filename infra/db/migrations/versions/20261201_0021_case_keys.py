"""each consultation's data key, wrapped by a key-encryption key

Revision ID: 0021_case_keys
Revises: 0018_statistics_summaries
Create Date: 2026-12-01

Issue 17 §1: evidence files are encrypted with a key of their case's own; the key is stored wrapped (never in
the clear) and destroyed to shred the case. Files stored before this revision stay readable as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.types import UTCDateTime

revision = "0021_case_keys"
down_revision = "0018_statistics_summaries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_key",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("destroyed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("consultation_id", name=op.f("pk_case_key")),
    )
    op.create_index(op.f("ix_case_key_kek_id"), "case_key", ["kek_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_case_key_kek_id"), table_name="case_key")
    op.drop_table("case_key")
