"""chain of custody: hash-linked links per consultation, their heads and RFC 3161 time-stamp tokens

Revision ID: 0015_custody
Revises: 0016_statistics
Create Date: 2026-12-01

Issue 16 §3. No foreign key to consultation: the chain outlives what it describes (deletions are events).
Existing consultations start their chain at their next event.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from infra.db.types import UTCDateTime

revision = "0015_custody"
down_revision = "0016_statistics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custody_link",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("consultation_id", "seq", name=op.f("pk_custody_link")),
    )
    op.create_table(
        "custody_head",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consultation_id", name=op.f("pk_custody_head")),
    )
    op.create_table(
        "custody_stamp",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("stamped_at", UTCDateTime(), nullable=False),
        sa.Column("tsa_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_stamp")),
    )
    op.create_index(op.f("ix_custody_stamp_consultation_id"), "custody_stamp", ["consultation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_custody_stamp_consultation_id"), table_name="custody_stamp")
    op.drop_table("custody_stamp")
    op.drop_table("custody_head")
    op.drop_table("custody_link")
