"""evidence items are corrected under a version (If-Match)

Revision ID: 0017_evidence_edits
Revises: 0012_evidence
Create Date: 2026-12-01

Issue 16 §3: correcting an evidence item (a wrong URL, a posting time fixed) is an event on the chain of custody,
and like every other edit it is made against the version the person saw. Existing items start at version 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_evidence_edits"
down_revision = "0012_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("version")
