"""Tables of the centre's quality loop: answer drafts and their reviews, the versioned manual and answer
templates, council samples, findings and proposals, and the trail of staff actions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra.db.tables import ts


class AnswerDraftRow(SQLModel, table=True):
    __tablename__ = "answer_draft"

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    author_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    state: str = Field(max_length=16, index=True)
    review_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)
    submitted_at: datetime | None = ts()
    published_at: datetime | None = ts()
    message_id: uuid.UUID | None = Field(default=None, foreign_key="message.id", index=True)
    version: int = 1


class AnswerVersionRow(SQLModel, table=True):
    """Immutable: a new text is a new row."""

    __tablename__ = "answer_version"
    __table_args__ = (UniqueConstraint("draft_id", "number", name="uq_answer_version_draft_id_number"),)

    id: uuid.UUID = Field(primary_key=True)
    draft_id: uuid.UUID = Field(foreign_key="answer_draft.id", index=True)
    number: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    author_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = ts(nullable=False)
    manual_refs: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    template_code: str | None = Field(default=None, max_length=64)
    template_version: int | None = None
    template_values: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class AnswerReviewRow(SQLModel, table=True):
    __tablename__ = "answer_review"

    id: uuid.UUID = Field(primary_key=True)
    draft_id: uuid.UUID = Field(foreign_key="answer_draft.id", index=True)
    version_number: int
    reviewer_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    decision: str = Field(max_length=16)
    advice: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = ts(nullable=False)


class ManualSectionRow(SQLModel, table=True):
    """Every version of every manual section and answer template (kind), newest = current."""

    __tablename__ = "manual_entry"
    __table_args__ = (UniqueConstraint("kind", "code", "version", name="uq_manual_entry_kind_code_version"),)

    id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(max_length=16)  # section | template
    code: str = Field(max_length=64, index=True)
    version: int
    title_ja: str = Field(max_length=200)
    title_en: str = Field(max_length=200)
    body_ja: str = Field(sa_column=Column(Text, nullable=False))
    sections: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts(nullable=False)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
    note: str | None = Field(default=None, max_length=500)


class CouncilSampleRow(SQLModel, table=True):
    __tablename__ = "council_sample"

    id: uuid.UUID = Field(primary_key=True)
    period_from: datetime = ts(nullable=False)
    period_to: datetime = ts(nullable=False)
    method: str = Field(max_length=16)
    size: int
    created_by: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = ts(nullable=False)


class CouncilSampleItemRow(SQLModel, table=True):
    __tablename__ = "council_sample_item"

    sample_id: uuid.UUID = Field(foreign_key="council_sample.id", primary_key=True)
    pseudonym: str = Field(max_length=16, primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)


class CouncilFindingRow(SQLModel, table=True):
    __tablename__ = "council_finding"

    id: uuid.UUID = Field(primary_key=True)
    sample_id: uuid.UUID = Field(foreign_key="council_sample.id", index=True)
    pseudonym: str = Field(max_length=16)
    member_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    accuracy: int
    timeliness: int
    tone: int
    referral_fit: int
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = ts(nullable=False)


class ManualProposalRow(SQLModel, table=True):
    __tablename__ = "manual_proposal"

    id: uuid.UUID = Field(primary_key=True)
    section_code: str = Field(max_length=64)
    based_on_version: int
    proposed_body: str = Field(sa_column=Column(Text, nullable=False))
    rationale: str = Field(sa_column=Column(Text, nullable=False))
    member_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    state: str = Field(max_length=16)
    created_at: datetime = ts(nullable=False)
    decided_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
    decided_at: datetime | None = ts()
    resulting_version: int | None = None


class AuditEventRow(SQLModel, table=True):
    """Who did what to which object, when. Ids and codes only: no case text, no personal data."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_object", "object_type", "object_id"),)

    id: uuid.UUID = Field(primary_key=True)
    at: datetime = ts(nullable=False, index=True)
    actor_id: uuid.UUID | None = Field(default=None)
    actor_role: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
