"""the statistics read referrals by the month they were made

Revision ID: 0016_statistics
Revises: 0011_requests
Create Date: 2026-12-01

Issue 18: the referrals-by-desk table reads a fiscal year of referrals by `created_at` and groups them by
desk; without an index leading with `created_at` every call scanned every referral ever made. Consultations
already have their (created_at, id) queue index and the (owner_id, created_at, id) index the re-consultation
check probes.
"""

from __future__ import annotations

from alembic import op

revision = "0016_statistics"
down_revision = "0011_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_referral_statistics", "referral", ["created_at", "desk_code"])


def downgrade() -> None:
    op.drop_index("ix_referral_statistics", table_name="referral")
