"""pending file deletes: stored files of shredded cases the blob store has not yet deleted

Revision ID: 0029_pending_file_deletes
Revises: 0028_sealed_case_notes
Create Date: 2026-12-02

Issue 17 §2/§3: a store that refused a delete is asked again on the worker's later passes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.types import UTCDateTime

revision = "0029_pending_file_deletes"
down_revision = "0028_sealed_case_notes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_file_delete",
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("storage_key", name=op.f("pk_pending_file_delete")),
    )
    op.create_index(op.f("ix_pending_file_delete_queued_at"), "pending_file_delete", ["queued_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_file_delete_queued_at"), table_name="pending_file_delete")
    op.drop_table("pending_file_delete")
