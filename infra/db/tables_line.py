"""Tables of the LINE official account: the webhook inbox, LINE users, link nonces and outgoing deliveries.

Nothing here holds what a person wrote or their LINE profile: the inbox keeps a reduced event (free text is
turned into triage codes before it is stored), and a LINE user is only their opaque user id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from infra.db.tables import WorkQueueColumns, ts

__all__ = ["LineDeliveryRow", "LineInboxRow", "LineLinkNonceRow", "LineUserRow"]


INBOX_DUE = text("processed_at IS NULL")
DELIVERY_DUE = text("status = 'pending'")


class LineInboxRow(WorkQueueColumns, table=True):
    """One row per webhook event (LINE redelivers: the unique event id makes a second copy a no-op)."""

    __tablename__ = "line_inbox"
    __table_args__ = (
        UniqueConstraint("webhook_event_id", name="uq_line_inbox_webhook_event_id"),
        # Only the events still to process, in the order the worker claims them (see OutboxRow).
        Index(
            "ix_line_inbox_due", "event_at", "received_at", postgresql_where=INBOX_DUE, sqlite_where=INBOX_DUE
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    webhook_event_id: str = Field(sa_column=Column(String(64), nullable=False))
    event_type: str = Field(max_length=32)
    line_user_id: str | None = Field(default=None, max_length=64)
    # Single use and short-lived; cleared as soon as the event is processed.
    reply_token: str | None = Field(default=None, max_length=255)
    payload: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    event_at: datetime = ts(nullable=False)
    received_at: datetime = ts(nullable=False)
    redelivery: bool = False
    processed_at: datetime | None = ts()


class LineUserRow(SQLModel, table=True):
    """A LINE user who talked to the bot: the opaque user id only, never the profile."""

    __tablename__ = "line_user"

    id: uuid.UUID = Field(primary_key=True)
    line_user_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", unique=True)
    followed_at: datetime | None = ts()
    unfollowed_at: datetime | None = ts()
    linked_at: datetime | None = ts()
    # The language the bot speaks with this person (line_texts.yaml `languages`); NULL is Japanese.
    language: str | None = Field(default=None, max_length=8)
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)


class LineLinkNonceRow(SQLModel, table=True):
    """A single-use account-link nonce: only its SHA-256 digest is kept, deleted when consumed."""

    __tablename__ = "line_link_nonce"

    id: uuid.UUID = Field(primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = ts(nullable=False)
    expires_at: datetime = ts(nullable=False)


class LineDeliveryRow(WorkQueueColumns, table=True):
    """A message to send through the Messaging API, retried with backoff; `dead` rows are dead letters."""

    __tablename__ = "line_delivery"
    __table_args__ = (
        Index("ix_line_delivery_due", "created_at", postgresql_where=DELIVERY_DUE, sqlite_where=DELIVERY_DUE),
    )

    id: uuid.UUID = Field(primary_key=True)
    purpose: str = Field(max_length=32)
    mode: str = Field(max_length=8)  # reply | push
    status: str = Field(max_length=8)  # pending | sent | skipped | dead
    line_user_id: str = Field(max_length=64, index=True)
    # Set for notices meant for one account: sent only while that account is still linked.
    user_id: uuid.UUID | None = Field(default=None)
    reply_token: str | None = Field(default=None, max_length=255)
    event_at: datetime | None = ts()
    messages: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    retry_key: str = Field(max_length=36)
    replays: int = 0
    created_at: datetime = ts(nullable=False)
    sent_at: datetime | None = ts()
    failed_at: datetime | None = ts()
