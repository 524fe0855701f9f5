"""idempotency keys for every create: the operation, the answer given and the row made; expiry

Revision ID: 0009_workers
Revises: 0008
Create Date: 2026-12-01

The table held a consultation id per key; keys live a day at most, so it is recreated rather than migrated
(a retry of an intake made before the upgrade with the same key is simply a new intake).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0009_workers"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("idempotency_key")
    op.create_table(
        "idempotency_key",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal_id", "key", name=op.f("pk_idempotency_key")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_key_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("idempotency_key")
    op.create_table(
        "idempotency_key",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_idempotency_key_consultation_id_consultation"),
        ),
        sa.PrimaryKeyConstraint("principal_id", "key", name=op.f("pk_idempotency_key")),
    )
