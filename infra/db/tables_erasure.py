"""The erasure request a person makes for their own account (issue 17 §3)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, String, text
from sqlmodel import Field, SQLModel

from infra.db.tables import ts


class ErasureRequestRow(SQLModel, table=True):
    __tablename__ = "erasure_request"
    __table_args__ = (
        # At most one open request per person.
        Index(
            "uq_erasure_request_open",
            "user_id",
            unique=True,
            sqlite_where=text("cancelled_at IS NULL AND completed_at IS NULL"),
            postgresql_where=text("cancelled_at IS NULL AND completed_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    requested_at: datetime = ts(nullable=False)
    due_at: datetime = ts(nullable=False)
    cancelled_at: datetime | None = ts()
    completed_at: datetime | None = ts()
    cases_kept: int = 0  # consultations a legal hold kept at completion (kept until lifted, then retention)


class PendingFileDeleteRow(SQLModel, table=True):
    """A stored file of a shredded case, still to delete from the blob store: written in the shredding
    transaction, removed once the store confirms; a store that refused is asked again on later passes. The key
    is a random storage name (it says nothing of the case); the file is sealed with the destroyed key anyway."""

    __tablename__ = "pending_file_delete"

    storage_key: str = Field(sa_column=Column(String(255), primary_key=True))
    queued_at: datetime = ts(nullable=False, index=True)
    attempts: int = 0
