"""what staff and people wrote about a case's steps is stored sealed with the case's key: a request's target
name becomes unbounded

Revision ID: 0028_sealed_case_notes
Revises: 0027_email_change
Create Date: 2026-12-02

Issue 17 §1: the advice of letter and answer reviews, the notes of request status changes, a request's target
name, a referral's reason, the reason of an evidence item's upload slot and a legal hold's reason are sealed
like the case's other texts (infra/crypto.py). All but the target name are unbounded text columns already; the
target name's ciphertext (URL-safe base64, about 4/3 of the UTF-8 bytes plus 44) no longer fits 200
characters. The API still bounds what a person may type. Rows stored before are read as they are
(infra/crypto.py, TEXT_PREFIX) and emptied, sealed or not, when their case is shredded: no data migration, as
for 0022 and 0025.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_sealed_case_notes"
down_revision = "0027_email_change"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultation_request") as batch:
        batch.alter_column(
            "target_name", type_=sa.Text(), existing_type=sa.String(length=200), existing_nullable=True
        )


def downgrade() -> None:
    # Sealed values are longer than 200 characters: going back needs them opened first (not automated).
    with op.batch_alter_table("consultation_request") as batch:
        batch.alter_column(
            "target_name", type_=sa.String(length=200), existing_type=sa.Text(), existing_nullable=True
        )
