"""consultations messages evidence

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 04:26:28.043975
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "consultation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=False),
        sa.Column("desired_outcomes", sa.JSON(), nullable=False),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("platform_other", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("tried", sa.Text(), nullable=True),
        sa.Column("victim_is_minor", sa.Boolean(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("priority", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("urgency_flags", sa.JSON(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("consent_terms_version", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("consented_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_answer_due_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_answered_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consulter_read_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["app_user.id"], name=op.f("fk_consultation_assignee_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name=op.f("fk_consultation_owner_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation")),
    )
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index("ix_consultation_owner_created", ["owner_id", "created_at"], unique=False)
        batch_op.create_index("ix_consultation_queue", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_urgent"), ["urgent"], unique=False)

    op.create_table(
        "consultation_category",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("category_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_consultation_category_consultation_id_consultation"),
        ),
        sa.PrimaryKeyConstraint("consultation_id", "category_code", name=op.f("pk_consultation_category")),
    )
    with op.batch_alter_table("consultation_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_category_category_code"), ["category_code"], unique=False
        )

    op.create_table(
        "consultation_transition",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["app_user.id"], name=op.f("fk_consultation_transition_actor_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_consultation_transition_consultation_id_consultation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_transition")),
    )
    with op.batch_alter_table("consultation_transition", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_transition_consultation_id"), ["consultation_id"], unique=False
        )

    op.create_table(
        "evidence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("posted_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("captured_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("poster_account", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("context_captured", sa.Boolean(), nullable=False),
        sa.Column("file_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("file_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("file_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_evidence_consultation_id_consultation")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_evidence_created_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_consultation_id"), ["consultation_id"], unique=False)

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
    op.create_table(
        "message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["app_user.id"], name=op.f("fk_message_author_id_app_user")),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_message_consultation_id_consultation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_thread", ["consultation_id", "created_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_thread")

    op.drop_table("message")
    op.drop_table("idempotency_key")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_consultation_id"))

    op.drop_table("evidence")
    with op.batch_alter_table("consultation_transition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_transition_consultation_id"))

    op.drop_table("consultation_transition")
    with op.batch_alter_table("consultation_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_category_category_code"))

    op.drop_table("consultation_category")
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_urgent"))
        batch_op.drop_index(batch_op.f("ix_consultation_status"))
        batch_op.drop_index("ix_consultation_queue")
        batch_op.drop_index("ix_consultation_owner_created")
        batch_op.drop_index(batch_op.f("ix_consultation_assignee_id"))

    op.drop_table("consultation")
