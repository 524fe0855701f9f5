"""a request's reference number is stored sealed with the case's key: its 100-character column becomes unbounded

Revision ID: 0025_sealed_reference_numbers
Revises: 0024_personal_exports
Create Date: 2026-12-01

Issue 17 §1: the reference number (受付番号) a person types names their case at the platform, so it is sealed
like the request's notes; the ciphertext (URL-safe base64, about 4/3 of the UTF-8 bytes plus 44) no longer fits
100 characters. The API still bounds what a person may type. Rows stored before are read as they are
(infra/crypto.py, TEXT_PREFIX). Letter contents and template values stay in their JSON columns, sealed as
{"sealed": "mdg1:..."}: no column changes for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025_sealed_reference_numbers"
down_revision = "0024_personal_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultation_request") as batch:
        batch.alter_column(
            "reference_number", type_=sa.Text(), existing_type=sa.String(length=100), existing_nullable=True
        )


def downgrade() -> None:
    # Sealed values are longer than 100 characters: going back needs them opened first (not automated).
    with op.batch_alter_table("consultation_request") as batch:
        batch.alter_column(
            "reference_number", type_=sa.String(length=100), existing_type=sa.Text(), existing_nullable=True
        )
