"""quality loop

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-29 05:22:38.288784
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_event_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "council_sample",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("period_from", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_to", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_council_sample_created_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_sample")),
    )
    op.create_table(
        "manual_entry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title_ja", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("title_en", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body_ja", sa.Text(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_manual_entry_created_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manual_entry")),
        sa.UniqueConstraint("kind", "code", "version", name="uq_manual_entry_kind_code_version"),
    )
    with op.batch_alter_table("manual_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_manual_entry_code"), ["code"], unique=False)

    op.create_table(
        "manual_proposal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("section_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("based_on_version", sa.Integer(), nullable=False),
        sa.Column("proposed_body", sa.Text(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resulting_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["app_user.id"], name=op.f("fk_manual_proposal_decided_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["app_user.id"], name=op.f("fk_manual_proposal_member_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manual_proposal")),
    )
    op.create_table(
        "council_finding",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sample_id", sa.Uuid(), nullable=False),
        sa.Column("pseudonym", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("accuracy", sa.Integer(), nullable=False),
        sa.Column("timeliness", sa.Integer(), nullable=False),
        sa.Column("tone", sa.Integer(), nullable=False),
        sa.Column("referral_fit", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["app_user.id"], name=op.f("fk_council_finding_member_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["council_sample.id"], name=op.f("fk_council_finding_sample_id_council_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_finding")),
    )
    with op.batch_alter_table("council_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_council_finding_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "council_sample_item",
        sa.Column("sample_id", sa.Uuid(), nullable=False),
        sa.Column("pseudonym", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_council_sample_item_consultation_id_consultation"),
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["council_sample.id"], name=op.f("fk_council_sample_item_sample_id_council_sample")
        ),
        sa.PrimaryKeyConstraint("sample_id", "pseudonym", name=op.f("pk_council_sample_item")),
    )
    op.create_table(
        "answer_draft",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("review_reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["app_user.id"], name=op.f("fk_answer_draft_author_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_answer_draft_consultation_id_consultation"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_answer_draft_message_id_message")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_draft")),
    )
    with op.batch_alter_table("answer_draft", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_answer_draft_consultation_id"), ["consultation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_answer_draft_state"), ["state"], unique=False)

    op.create_table(
        "answer_review",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("draft_id", sa.Uuid(), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Uuid(), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("advice", sa.Text(), nullable=True),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"], ["answer_draft.id"], name=op.f("fk_answer_review_draft_id_answer_draft")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["app_user.id"], name=op.f("fk_answer_review_reviewer_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_review")),
    )
    with op.batch_alter_table("answer_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_answer_review_draft_id"), ["draft_id"], unique=False)

    op.create_table(
        "answer_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("draft_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("manual_refs", sa.JSON(), nullable=False),
        sa.Column("template_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["app_user.id"], name=op.f("fk_answer_version_author_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["draft_id"], ["answer_draft.id"], name=op.f("fk_answer_version_draft_id_answer_draft")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_version")),
        sa.UniqueConstraint("draft_id", "number", name="uq_answer_version_draft_id_number"),
    )
    with op.batch_alter_table("answer_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_answer_version_draft_id"), ["draft_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("answer_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answer_version_draft_id"))

    op.drop_table("answer_version")
    with op.batch_alter_table("answer_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answer_review_draft_id"))

    op.drop_table("answer_review")
    with op.batch_alter_table("answer_draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answer_draft_state"))
        batch_op.drop_index(batch_op.f("ix_answer_draft_consultation_id"))

    op.drop_table("answer_draft")
    op.drop_table("council_sample_item")
    with op.batch_alter_table("council_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_council_finding_sample_id"))

    op.drop_table("council_finding")
    op.drop_table("manual_proposal")
    with op.batch_alter_table("manual_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_manual_entry_code"))

    op.drop_table("manual_entry")
    op.drop_table("council_sample")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_object")
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
