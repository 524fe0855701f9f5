"""Tables of the letters a person builds from their evidence (issue 15 §3): the letter, its immutable
versions (every change kept) and its reviews."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra.db.tables import ts


class LetterRow(SQLModel, table=True):
    __tablename__ = "letter"

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    kind: str = Field(max_length=40)
    author_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    state: str = Field(max_length=16, index=True)
    review_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)
    submitted_at: datetime | None = ts()
    finalised_at: datetime | None = ts()
    version: int = 1


class LetterVersionRow(SQLModel, table=True):
    """Immutable: a change is a new row. `content` holds the recipient, the evidence as quoted, the choices,
    the person's own texts and the sender details they chose to give."""

    __tablename__ = "letter_version"
    __table_args__ = (UniqueConstraint("letter_id", "number", name="uq_letter_version_letter_id_number"),)

    id: uuid.UUID = Field(primary_key=True)
    letter_id: uuid.UUID = Field(foreign_key="letter.id", index=True)
    number: int
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    author_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = ts(nullable=False)


class LetterReviewRow(SQLModel, table=True):
    __tablename__ = "letter_review"

    id: uuid.UUID = Field(primary_key=True)
    letter_id: uuid.UUID = Field(foreign_key="letter.id", index=True)
    version_number: int
    reviewer_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    reviewer_role: str = Field(max_length=16)
    decision: str = Field(max_length=16)
    advice: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = ts(nullable=False)
