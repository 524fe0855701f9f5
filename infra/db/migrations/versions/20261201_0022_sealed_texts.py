"""what people wrote is stored sealed with the case's key: the capped text columns become unbounded

Revision ID: 0022_sealed_texts
Revises: 0021_case_keys
Create Date: 2026-12-01

Issue 17 §1: titles, narratives, messages and evidence texts are stored as ciphertext (URL-safe base64, about
4/3 of the UTF-8 bytes plus 44), which no longer fits the 200-character columns. The API still bounds what a
person may write. Rows stored before are read as they are (infra/crypto.py, TEXT_PREFIX).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_sealed_texts"
down_revision = "0021_case_keys"
branch_labels = None
depends_on = None

WIDENED = (
    ("consultation", "title", False),
    ("consultation", "platform_other", True),
    ("evidence", "poster_account", True),
)


def upgrade() -> None:
    for table, column, nullable in WIDENED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.Text(), existing_type=sa.String(length=200), existing_nullable=nullable
            )


def downgrade() -> None:
    # Sealed values are longer than 200 characters: going back needs the texts opened first (not automated).
    for table, column, nullable in WIDENED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.String(length=200), existing_type=sa.Text(), existing_nullable=nullable
            )
