"""the language a LINE user's conversation speaks

Revision ID: 0010_language
Revises: 0014_letters
Create Date: 2026-12-01

Issue 14 item 23: a LINE user switches the bot's replies to English (or another declared language) by typing
its name or with a quick-reply button; the choice is kept per LINE user. NULL is Japanese, the default, so
existing rows need no backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_language"
down_revision = "0014_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("line_user") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("line_user") as batch:
        batch.drop_column("language")
