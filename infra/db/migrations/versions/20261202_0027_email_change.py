"""email change: the pending new address waits, sealed, with its single-use token

Revision ID: 0027_email_change
Revises: 0026_erasure_requests
Create Date: 2026-12-02

Issue 17 §3: a signed-in person changes their sign-in address. The confirmation link is mailed to the new
address and carries only the token; the address itself (and the session that asked) is kept sealed in the
token's row, so it travels in no URL and is readable from no copy of the database alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_email_change"
down_revision = "0026_erasure_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("email_token") as batch:
        batch.add_column(sa.Column("sealed_request", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_token") as batch:
        batch.drop_column("sealed_request")
