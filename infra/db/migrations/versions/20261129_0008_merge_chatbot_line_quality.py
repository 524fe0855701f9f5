"""merge the chatbot, LINE and quality-loop branches

Revision ID: 0008
Revises: 0005, 0006, 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

revision = "0008"
down_revision = ("0005", "0006", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
