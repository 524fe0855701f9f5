"""legal holds: a supervisor keeps a case from retention until the hold is lifted

Revision ID: 0023_legal_holds
Revises: 0022_sealed_texts
Create Date: 2026-12-01

Issue 17 §2: ended cases are shredded after their retention period (domain/knowledge/retention.yaml) unless a hold
is in force; at most one hold is in force per case, lifted holds stay on record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.types import UTCDateTime

revision = "0023_legal_holds"
down_revision = "0022_sealed_texts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.Uuid(), nullable=False),
        sa.Column("placed_at", UTCDateTime(), nullable=False),
        sa.Column("lifted_by", sa.Uuid(), nullable=True),
        sa.Column("lifted_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_legal_hold_consultation_id_consultation")
        ),
        sa.ForeignKeyConstraint(
            ["placed_by"], ["app_user.id"], name=op.f("fk_legal_hold_placed_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["lifted_by"], ["app_user.id"], name=op.f("fk_legal_hold_lifted_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_hold")),
    )
    for column in ("consultation_id", "placed_by", "lifted_by"):
        op.create_index(op.f(f"ix_legal_hold_{column}"), "legal_hold", [column])
    active = sa.text("lifted_at IS NULL")
    op.create_index(
        "uq_legal_hold_active",
        "legal_hold",
        ["consultation_id"],
        unique=True,
        postgresql_where=active,
        sqlite_where=active,
    )


def downgrade() -> None:
    op.drop_index("uq_legal_hold_active", table_name="legal_hold")
    for column in ("consultation_id", "placed_by", "lifted_by"):
        op.drop_index(op.f(f"ix_legal_hold_{column}"), table_name="legal_hold")
    op.drop_table("legal_hold")
