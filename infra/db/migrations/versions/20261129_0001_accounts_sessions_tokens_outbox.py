"""accounts sessions tokens outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-29 04:15:39.218512
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "app_user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("email_verified_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("totp_enabled_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tokens_valid_after", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_role"), ["role"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_pending", ["sent_at", "next_attempt_at"], unique=False)

    op.create_table(
        "service_client",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("secret_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_service_client")),
    )
    op.create_table(
        "throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle")),
    )
    op.create_table(
        "auth_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("mfa", sa.Boolean(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_auth_session_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_session")),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "email_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_email_token_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_email_token_digest")),
    )
    with op.batch_alter_table("email_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["auth_session.id"], name=op.f("fk_refresh_token_session_id_auth_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_refresh_token_digest")),
    )
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_token_session_id"), ["session_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_token_session_id"))

    op.drop_table("refresh_token")
    with op.batch_alter_table("email_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_token_user_id"))

    op.drop_table("email_token")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_user_id"))

    op.drop_table("auth_session")
    op.drop_table("throttle")
    op.drop_table("service_client")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")

    op.drop_table("outbox")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_role"))

    op.drop_table("app_user")
