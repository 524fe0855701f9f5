"""personal exports (the person's copy of what is held about them)

Revision ID: 0024_personal_exports
Revises: 0019_consents
Create Date: 2026-12-01

Issue 17 §3: `personal_export`, one row per export asked for, a work table the worker prepares (the work-queue
columns), with the blob key of the sealed ZIP and its data key wrapped by the key-encryption key.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0024_personal_exports"
down_revision = "0019_consents"
branch_labels = None
depends_on = None

TS = infra.db.types.UTCDateTime(timezone=True)


def _str(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "personal_export",
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_error", _str(64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("state", _str(16), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("ready_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("downloaded_at", TS, nullable=True),
        sa.Column("blob_key", _str(200), nullable=True),
        sa.Column("kek_id", _str(64), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_personal_export_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_export")),
    )
    op.create_index("ix_personal_export_user_state", "personal_export", ["user_id", "state"], unique=False)
    op.create_index(
        "ix_personal_export_state_due", "personal_export", ["state", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_personal_export_state_due", table_name="personal_export")
    op.drop_index("ix_personal_export_user_state", table_name="personal_export")
    op.drop_table("personal_export")
