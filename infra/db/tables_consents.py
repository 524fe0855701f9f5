"""The consent ledger (issue 17 §4): append-only; the repository has no update and no delete."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from infra.db.tables import ts

__all__ = ["ConsentRow"]


class ConsentRow(SQLModel, table=True):
    __tablename__ = "consent"
    # A person's ledger is read whole, oldest first (the consent page, every LINE notice, every referral made).
    __table_args__ = (Index("ix_consent_user_recorded", "user_id", "recorded_at"),)

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id")
    purpose: str = Field(max_length=32)
    action: str = Field(max_length=16)
    source: str = Field(max_length=16)
    recorded_at: datetime = ts(nullable=False)
    terms_version: str | None = Field(default=None, max_length=32)
    consultation_id: uuid.UUID | None = Field(default=None, foreign_key="consultation.id", index=True)
    referral_id: uuid.UUID | None = Field(default=None, foreign_key="referral.id", index=True)
    desk_code: str | None = Field(default=None, max_length=64)
