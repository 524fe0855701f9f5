"""erasure requests: a person asks to delete their account; shredded after a grace period

Revision ID: 0026_erasure_requests
Revises: 0025_sealed_reference_numbers
Create Date: 2026-12-01

Issue 17 §3: at most one request open (neither cancelled nor completed) per person.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.types import UTCDateTime

revision = "0026_erasure_requests"
down_revision = "0025_sealed_reference_numbers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("cases_kept", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_erasure_request_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_request")),
    )
    op.create_index(op.f("ix_erasure_request_user_id"), "erasure_request", ["user_id"])
    open_ = sa.text("cancelled_at IS NULL AND completed_at IS NULL")
    op.create_index(
        "uq_erasure_request_open",
        "erasure_request",
        ["user_id"],
        unique=True,
        sqlite_where=open_,
        postgresql_where=open_,
    )


def downgrade() -> None:
    op.drop_index("uq_erasure_request_open", table_name="erasure_request")
    op.drop_index(op.f("ix_erasure_request_user_id"), table_name="erasure_request")
    op.drop_table("erasure_request")
