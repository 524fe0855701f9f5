"""pending passwords, totp replay guard, atomic throttle

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:04:37.486991
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("email_token", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )

    with op.batch_alter_table("throttle", schema=None) as batch_op:
        batch_op.drop_column("blocked_until")


def downgrade() -> None:

    with op.batch_alter_table("throttle", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("blocked_until", infra.db.types.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("email_token", schema=None) as batch_op:
        batch_op.drop_column("password_hash")

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
