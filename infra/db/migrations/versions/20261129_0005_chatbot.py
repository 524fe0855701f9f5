"""chatbot sessions, transcripts and hand-off drafts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 05:23:35.063255
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chatbot_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("flows_version", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chatbot_session")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_chatbot_session_token_digest")),
    )
    with op.batch_alter_table("chatbot_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chatbot_session_last_seen_at"), ["last_seen_at"], unique=False)

    op.create_table(
        "chatbot_draft",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("desired_outcomes", sa.JSON(), nullable=False),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["claimed_by"], ["app_user.id"], name=op.f("fk_chatbot_draft_claimed_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["chatbot_session.id"], name=op.f("fk_chatbot_draft_session_id_chatbot_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chatbot_draft")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_chatbot_draft_token_digest")),
    )
    with op.batch_alter_table("chatbot_draft", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chatbot_draft_session_id"), ["session_id"], unique=False)

    op.create_table(
        "chatbot_turn",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["chatbot_session.id"], name=op.f("fk_chatbot_turn_session_id_chatbot_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chatbot_turn")),
        sa.UniqueConstraint("session_id", "seq", name="uq_chatbot_turn_session_id_seq"),
    )
    with op.batch_alter_table("chatbot_turn", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chatbot_turn_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chatbot_turn", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chatbot_turn_session_id"))
    op.drop_table("chatbot_turn")

    with op.batch_alter_table("chatbot_draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chatbot_draft_session_id"))
    op.drop_table("chatbot_draft")

    with op.batch_alter_table("chatbot_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chatbot_session_last_seen_at"))
    op.drop_table("chatbot_session")
