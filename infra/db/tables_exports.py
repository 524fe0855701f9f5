"""Personal exports (issue 17 §3): one row per export a person asked for, worked by the worker like the other
work tables (WorkQueueColumns, infra/db/leases.py). The sealed ZIP lives in the blob store under a random
name; the row keeps that name and the export's own data key wrapped by the key-encryption key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, LargeBinary
from sqlmodel import Field

from infra.db.tables import WorkQueueColumns, ts

__all__ = ["PersonalExportRow"]


class PersonalExportRow(WorkQueueColumns, table=True):
    __tablename__ = "personal_export"
    __table_args__ = (
        Index("ix_personal_export_user_state", "user_id", "state"),
        Index("ix_personal_export_state_due", "state", "next_attempt_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id")
    state: str = Field(max_length=16)
    requested_at: datetime = ts(nullable=False)
    ready_at: datetime | None = ts()
    expires_at: datetime | None = ts()
    downloaded_at: datetime | None = ts()
    blob_key: str | None = Field(default=None, max_length=200)
    kek_id: str | None = Field(default=None, max_length=64)
    wrapped_key: bytes | None = Field(default=None, sa_type=LargeBinary)
    size: int | None = None
