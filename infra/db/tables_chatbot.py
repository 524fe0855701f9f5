"""Tables of the homepage chatbot: anonymous sessions, their transcripts and hand-off drafts.

Tokens are stored only as keyed digests. Transcripts hold choice labels and bot messages, never free text
(a placeholder stands in for it). Everything here is purged after MADOGUCHI_CHATBOT_RETENTION_DAYS.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra.db.tables import ts

__all__ = ["ChatbotDraftRow", "ChatbotSessionRow", "ChatbotTurnRow"]


class ChatbotSessionRow(SQLModel, table=True):
    __tablename__ = "chatbot_session"

    id: uuid.UUID = Field(primary_key=True)
    token_digest: str = Field(max_length=64, unique=True)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    flows_version: str = Field(max_length=32)
    turns: int = 0
    version: int = 1
    created_at: datetime = ts(nullable=False)
    last_seen_at: datetime = ts(nullable=False, index=True)  # the retention purge scans this
    expires_at: datetime = ts(nullable=False)


class ChatbotTurnRow(SQLModel, table=True):
    __tablename__ = "chatbot_turn"
    # One seq per session: two concurrent turns on one session cannot both land.
    __table_args__ = (UniqueConstraint("session_id", "seq", name="uq_chatbot_turn_session_id_seq"),)

    id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="chatbot_session.id", index=True)
    seq: int
    role: str = Field(max_length=8)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts(nullable=False)


class ChatbotDraftRow(SQLModel, table=True):
    __tablename__ = "chatbot_draft"

    id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="chatbot_session.id", index=True)
    token_digest: str = Field(max_length=64, unique=True)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    desired_outcomes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    platforms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts(nullable=False)
    expires_at: datetime = ts(nullable=False)
    claimed_at: datetime | None = ts()
    claimed_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
