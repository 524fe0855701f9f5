"""custody pending: reads waiting to be chained into their consultation's chain of custody

Revision ID: 0030_custody_pending
Revises: 0029_pending_file_deletes
Create Date: 2026-12-02

Issue 12: a read no longer takes the chain's head (reads of one case waited on each other's commits); its
link waits here, committed with the read, and the next change, chain read or worker pass chains it.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from infra.db.types import UTCDateTime

revision = "0030_custody_pending"
down_revision = "0029_pending_file_deletes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custody_pending",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_pending")),
    )
    op.create_index(op.f("ix_custody_pending_consultation_id"), "custody_pending", ["consultation_id"])


def downgrade() -> None:
    # Reads still waiting would be lost from their chains: they are chained first, by a worker pass.
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM custody_pending")).scalar_one()
    if waiting:
        raise RuntimeError(f"{waiting} reads wait to be chained: run `madoguchi worker --once` first")
    op.drop_index(op.f("ix_custody_pending_consultation_id"), table_name="custody_pending")
    op.drop_table("custody_pending")
