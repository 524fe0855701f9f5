"""the consent ledger; the last fresh proof of identity on a session

Revision ID: 0019_consents
Revises: 0017_evidence_edits
Create Date: 2026-12-01

Issue 17 §4: `consent`, one appended record per consent given or withdrawn. The consents already given are
carried over: every consultation's terms version and sensitive-data consent (at its `consented_at`), and every
referral a consulter consented to (at that event). Issue 17 §3: `auth_session.reauthenticated_at`, the time
of the session's last step-up (none: its sign-in is the last proof).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db.types

revision = "0019_consents"
down_revision = "0017_evidence_edits"
branch_labels = None
depends_on = None

TS = infra.db.types.UTCDateTime(timezone=True)


def _str(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reauthenticated_at", TS, nullable=True))

    consent = op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", _str(32), nullable=False),
        sa.Column("action", _str(16), nullable=False),
        sa.Column("source", _str(16), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("terms_version", _str(32), nullable=True),
        sa.Column("consultation_id", sa.Uuid(), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("desk_code", _str(64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_consent_user_id_app_user")),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_consent_consultation_id_consultation")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_consent_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index("ix_consent_user_recorded", "consent", ["user_id", "recorded_at"], unique=False)
    op.create_index(op.f("ix_consent_consultation_id"), "consent", ["consultation_id"], unique=False)
    op.create_index(op.f("ix_consent_referral_id"), "consent", ["referral_id"], unique=False)

    bind = op.get_bind()
    rows: list[dict[str, object]] = []
    for cid, owner, version, at in bind.execute(
        sa.text("SELECT id, owner_id, consent_terms_version, consented_at FROM consultation")
    ):
        common = {"user_id": owner, "action": "granted", "source": "intake", "recorded_at": at}
        rows.append(
            {
                "id": uuid.uuid4(),
                "purpose": "terms",
                "terms_version": version,
                "consultation_id": cid,
                **common,
            }
        )
        rows.append(
            {
                "id": uuid.uuid4(),
                "purpose": "sensitive_data",
                "terms_version": None,
                "consultation_id": cid,
                **common,
            }
        )
    for rid, cid, desk, owner, at in bind.execute(
        sa.text(
            "SELECT r.id, r.consultation_id, r.desk_code, c.owner_id, e.at FROM referral_event e "
            "JOIN referral r ON r.id = e.referral_id JOIN consultation c ON c.id = r.consultation_id "
            "WHERE e.to_state = 'consented'"
        )
    ):
        rows.append(
            {
                "id": uuid.uuid4(),
                "user_id": owner,
                "purpose": "desk_sharing",
                "action": "granted",
                "source": "referral",
                "recorded_at": at,
                "terms_version": None,
                "consultation_id": cid,
                "referral_id": rid,
                "desk_code": desk,
            }
        )
    if rows:
        for row in rows:
            row.setdefault("referral_id", None)
            row.setdefault("desk_code", None)
        op.bulk_insert(consent, rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_consent_referral_id"), table_name="consent")
    op.drop_index(op.f("ix_consent_consultation_id"), table_name="consent")
    op.drop_index("ix_consent_user_recorded", table_name="consent")
    op.drop_table("consent")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_column("reauthenticated_at")
