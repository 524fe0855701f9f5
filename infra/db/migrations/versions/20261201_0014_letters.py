"""letters built from the evidence: the letter, its immutable versions and its reviews (issue 15 §3)

Revision ID: 0014_letters
Revises: 0015_custody
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0014_letters"
down_revision = "0015_custody"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, infra.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "letter",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("review_reasons", sa.JSON(), nullable=False),
        _ts("created_at", False),
        _ts("updated_at", False),
        _ts("submitted_at", True),
        _ts("finalised_at", True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["app_user.id"], name=op.f("fk_letter_author_id_app_user")),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_letter_consultation_id_consultation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letter")),
    )
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_letter_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letter_consultation_id"), ["consultation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letter_state"), ["state"], unique=False)

    op.create_table(
        "letter_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("letter_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        _ts("created_at", False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["app_user.id"], name=op.f("fk_letter_version_author_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["letter_id"], ["letter.id"], name=op.f("fk_letter_version_letter_id_letter")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letter_version")),
        sa.UniqueConstraint("letter_id", "number", name="uq_letter_version_letter_id_number"),
    )
    with op.batch_alter_table("letter_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_letter_version_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letter_version_letter_id"), ["letter_id"], unique=False)

    op.create_table(
        "letter_review",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("letter_id", sa.Uuid(), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Uuid(), nullable=False),
        sa.Column("reviewer_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("advice", sa.Text(), nullable=True),
        _ts("created_at", False),
        sa.ForeignKeyConstraint(["letter_id"], ["letter.id"], name=op.f("fk_letter_review_letter_id_letter")),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["app_user.id"], name=op.f("fk_letter_review_reviewer_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letter_review")),
    )
    with op.batch_alter_table("letter_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_letter_review_letter_id"), ["letter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letter_review_reviewer_id"), ["reviewer_id"], unique=False)


def downgrade() -> None:
    for table, columns in (
        ("letter_review", ["letter_id", "reviewer_id"]),
        ("letter_version", ["author_id", "letter_id"]),
        ("letter", ["author_id", "consultation_id", "state"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
