"""indexes for what is queried: looked-up foreign keys, the queue's keyset per filter, due work rows

Revision ID: 0009_hotpath
Revises: 0009_workers
Create Date: 2026-12-01

Issue 12: 18 of 38 foreign keys (17 once 0009_workers dropped idempotency_key.consultation_id) had no index leading with them (a delete or lookup by user or case scanned
the table); the queue's filters had single-column indexes that left PostgreSQL sorting or filtering the
whole match for a keyset page; the worker's claims read (sent_at, next_attempt_at) where only the unsent rows
matter. PostgreSQL builds the indexes with CREATE INDEX (inside the migration's transaction): run it in a
quiet moment on a large database, or build them CONCURRENTLY by hand first with the same names.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_hotpath"
down_revision = "0009_workers"
branch_labels = None
depends_on = None

FOREIGN_KEYS = [
    ("answer_draft", "author_id"),
    ("answer_draft", "message_id"),
    ("answer_review", "reviewer_id"),
    ("answer_version", "author_id"),
    ("chatbot_draft", "claimed_by"),
    ("consultation_transition", "actor_id"),
    ("council_finding", "member_id"),
    ("council_sample", "created_by"),
    ("council_sample_item", "consultation_id"),
    ("desk_version", "changed_by"),
    ("evidence", "created_by"),
    ("manual_entry", "created_by"),
    ("manual_proposal", "decided_by"),
    ("manual_proposal", "member_id"),
    ("message", "author_id"),
    ("referral", "created_by"),
    ("referral_event", "actor_id"),
]
QUEUE = [
    ("ix_consultation_owner_queue", "owner_id"),
    ("ix_consultation_assignee_queue", "assignee_id"),
    ("ix_consultation_status_queue", "status"),
    ("ix_consultation_urgent_queue", "urgent"),
]
OUTBOX_DUE = "sent_at IS NULL AND failed_at IS NULL"
INBOX_DUE = "processed_at IS NULL"
DELIVERY_DUE = "status = 'pending'"


def _partial(name: str, table: str, columns: list[str], where: str) -> None:
    clause = sa.text(where)
    op.create_index(name, table, columns, postgresql_where=clause, sqlite_where=clause)


def upgrade() -> None:
    for table, column in FOREIGN_KEYS:
        op.create_index(f"ix_{table}_{column}", table, [column])
    for name, column in QUEUE:
        op.create_index(name, "consultation", [column, "created_at", "id"])
    op.drop_index("ix_consultation_owner_created", table_name="consultation")
    op.drop_index("ix_consultation_assignee_id", table_name="consultation")
    op.drop_index("ix_consultation_status", table_name="consultation")
    op.drop_index("ix_consultation_urgent", table_name="consultation")
    _partial("ix_outbox_due", "outbox", ["created_at"], OUTBOX_DUE)
    op.drop_index("ix_outbox_pending", table_name="outbox")
    _partial("ix_line_inbox_due", "line_inbox", ["event_at", "received_at"], INBOX_DUE)
    op.drop_index("ix_line_inbox_pending", table_name="line_inbox")
    _partial("ix_line_delivery_due", "line_delivery", ["created_at"], DELIVERY_DUE)
    op.drop_index("ix_line_delivery_pending", table_name="line_delivery")


def downgrade() -> None:
    op.create_index("ix_line_delivery_pending", "line_delivery", ["status", "next_attempt_at"])
    op.drop_index("ix_line_delivery_due", table_name="line_delivery")
    op.create_index("ix_line_inbox_pending", "line_inbox", ["processed_at", "event_at"])
    op.drop_index("ix_line_inbox_due", table_name="line_inbox")
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "next_attempt_at"])
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_consultation_urgent", "consultation", ["urgent"])
    op.create_index("ix_consultation_status", "consultation", ["status"])
    op.create_index("ix_consultation_assignee_id", "consultation", ["assignee_id"])
    op.create_index("ix_consultation_owner_created", "consultation", ["owner_id", "created_at"])
    for name, _ in QUEUE:
        op.drop_index(name, table_name="consultation")
    for table, column in FOREIGN_KEYS:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
