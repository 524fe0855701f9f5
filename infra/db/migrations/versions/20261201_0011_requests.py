"""requests and their history, the evidence they concern, stored clocks, clock facts, consultation links

Revision ID: 0011_requests
Revises: 0009_hotpath
Create Date: 2026-12-01

Issue 15 §1, §2 and §5: `consultation_request` (+ `request_event`, `request_evidence`), `case_clock`,
`consultation_fact`, and on `consultation` the time to act and the earlier consultation it follows; §4: on
`answer_version` the values its template was filled with.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0011_requests"
down_revision = "0009_hotpath"
branch_labels = None
depends_on = None

TS = infra.db.types.UTCDateTime(timezone=True)


def _str(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_to_act_at", TS, nullable=True))
        batch_op.add_column(sa.Column("follows_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_consultation_follows_id_consultation"), "consultation", ["follows_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_consultation_follows_id"), ["follows_id"], unique=False)

    with op.batch_alter_table("answer_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_values", sa.JSON(), nullable=True))

    op.create_table(
        "consultation_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("kind", _str(32), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("target_platform", _str(64), nullable=True),
        sa.Column("target_service", _str(64), nullable=True),
        sa.Column("target_name", _str(200), nullable=True),
        sa.Column("channel", _str(100), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("received_at", TS, nullable=True),
        sa.Column("inquiry", _str(16), nullable=True),
        sa.Column("private_sexual_image", sa.Boolean(), nullable=False),
        sa.Column("reference_number", _str(100), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("advice", sa.Text(), nullable=True),
        sa.Column("advice_by", sa.Uuid(), nullable=True),
        sa.Column("advice_at", TS, nullable=True),
        sa.Column("letter_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_consultation_request_consultation_id_consultation"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_consultation_request_created_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["advice_by"], ["app_user.id"], name=op.f("fk_consultation_request_advice_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_request")),
    )
    with op.batch_alter_table("consultation_request", schema=None) as batch_op:
        batch_op.create_index("ix_consultation_request_case", ["consultation_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_request_created_by"), ["created_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_request_advice_by"), ["advice_by"], unique=False)

    op.create_table(
        "request_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", _str(16), nullable=True),
        sa.Column("to_status", _str(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consultation_request.id"],
            name=op.f("fk_request_event_request_id_consultation_request"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["app_user.id"], name=op.f("fk_request_event_actor_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_event")),
    )
    with op.batch_alter_table("request_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_event_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_event_actor_id"), ["actor_id"], unique=False)

    op.create_table(
        "request_evidence",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("role", _str(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consultation_request.id"],
            name=op.f("fk_request_evidence_request_id_consultation_request"),
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"], ["evidence.id"], name=op.f("fk_request_evidence_evidence_id_evidence")
        ),
        sa.PrimaryKeyConstraint("request_id", "evidence_id", "role", name=op.f("pk_request_evidence")),
    )
    with op.batch_alter_table("request_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_evidence_evidence_id"), ["evidence_id"], unique=False)

    op.create_table(
        "case_clock",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("rule", _str(64), nullable=False),
        sa.Column("subject", _str(16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("variant", _str(32), nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("remind_at", TS, nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("overdue_notified_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_case_clock_consultation_id_consultation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_clock")),
        sa.UniqueConstraint("consultation_id", "rule", "subject", "subject_id", name="uq_case_clock_subject"),
    )
    with op.batch_alter_table("case_clock", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_clock_consultation_id"), ["consultation_id"], unique=False)
        batch_op.create_index("ix_case_clock_remind", ["settled", "remind_at"], unique=False)
        batch_op.create_index("ix_case_clock_due", ["settled", "due_at", "id"], unique=False)

    op.create_table(
        "consultation_fact",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("offender_known_on", sa.Date(), nullable=True),
        sa.Column("damage_known_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_consultation_fact_consultation_id_consultation"),
        ),
        sa.PrimaryKeyConstraint("consultation_id", name=op.f("pk_consultation_fact")),
    )


def downgrade() -> None:
    op.drop_table("consultation_fact")
    op.drop_table("case_clock")
    op.drop_table("request_evidence")
    op.drop_table("request_event")
    op.drop_table("consultation_request")
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_follows_id"))
        batch_op.drop_constraint(batch_op.f("fk_consultation_follows_id_consultation"), type_="foreignkey")
        batch_op.drop_column("follows_id")
        batch_op.drop_column("time_to_act_at")
    with op.batch_alter_table("answer_version", schema=None) as batch_op:
        batch_op.drop_column("template_values")
