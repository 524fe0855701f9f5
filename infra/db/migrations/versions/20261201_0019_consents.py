"""the consent ledger; the last fresh proof of identity on a session

Revision ID: 0019_consents
Revises: 0023_legal_holds
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
down_revision = "0023_legal_holds"
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

    # Typed selects: on SQLite a raw text query would hand back UUIDs and timestamps as strings.
    bind = op.get_bind()
    consultation = sa.table(
        "consultation",
        sa.column("id", sa.Uuid()),
        sa.column("owner_id", sa.Uuid()),
        sa.column("consent_terms_version", sa.String()),
        sa.column("consented_at", TS),
    )
    referral = sa.table(
        "referral",
        sa.column("id", sa.Uuid()),
        sa.column("consultation_id", sa.Uuid()),
        sa.column("desk_code", sa.String()),
    )
    event = sa.table(
        "referral_event",
        sa.column("referral_id", sa.Uuid()),
        sa.column("to_state", sa.String()),
        sa.column("at", TS),
    )
    rows: list[dict[str, object]] = []
    c = consultation.c
    for cid, owner, version, at in bind.execute(
        sa.select(c.id, c.owner_id, c.consent_terms_version, c.consented_at)
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
    consented = (
        sa.select(referral.c.id, referral.c.consultation_id, referral.c.desk_code, c.owner_id, event.c.at)
        .select_from(
            event.join(referral, referral.c.id == event.c.referral_id).join(
                consultation, c.id == referral.c.consultation_id
            )
        )
        .where(event.c.to_state == "consented")
    )
    for rid, cid, desk, owner, at in bind.execute(consented):
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
