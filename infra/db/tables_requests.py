"""Tables of the self-help toolkit: requests sent about a consultation, their status history, the evidence they
concern (and the replies received), the clocks computed for a consultation, and the facts clocks start from."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, Date, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra.db.tables import ts

__all__ = [
    "CaseClockRow",
    "ConsultationFactRow",
    "RequestEventRow",
    "RequestEvidenceRow",
    "RequestRow",
]


class RequestRow(SQLModel, table=True):
    __tablename__ = "consultation_request"
    __table_args__ = (Index("ix_consultation_request_case", "consultation_id", "created_at"),)

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id")
    created_by: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    target_platform: str | None = Field(default=None, max_length=64)
    target_service: str | None = Field(default=None, max_length=64)
    target_name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # sealed
    channel: str | None = Field(default=None, max_length=100)
    sent_at: datetime | None = ts()
    received_at: datetime | None = ts()
    inquiry: str | None = Field(default=None, max_length=16)
    private_sexual_image: bool = False
    reference_number: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # sealed
    notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    advice: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    advice_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
    advice_at: datetime | None = ts()
    # The letter built for this request (issue 15 §3) lives in its own resource; the id is kept without a
    # foreign key until that table lands.
    letter_id: uuid.UUID | None = None
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)
    version: int = 1


class RequestEventRow(SQLModel, table=True):
    __tablename__ = "request_event"

    id: uuid.UUID = Field(primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="consultation_request.id", index=True)
    actor_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    at: datetime = ts(nullable=False)
    recorded_at: datetime = ts(nullable=False)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class RequestEvidenceRow(SQLModel, table=True):
    """An evidence item a request concerns (`concerns`), or the reply the person received (`reply`)."""

    __tablename__ = "request_evidence"

    request_id: uuid.UUID = Field(foreign_key="consultation_request.id", primary_key=True)
    evidence_id: uuid.UUID = Field(foreign_key="evidence.id", primary_key=True, index=True)
    role: str = Field(max_length=16, primary_key=True)
    position: int = 0


class CaseClockRow(SQLModel, table=True):
    """A clock computed from the rules for a consultation's request, evidence item or the consultation
    itself. Recomputed whenever what it depends on changes; a clock whose end did not move keeps its
    reminder marks, which is what makes a reminder go out once."""

    __tablename__ = "case_clock"
    __table_args__ = (
        UniqueConstraint("consultation_id", "rule", "subject", "subject_id", name="uq_case_clock_subject"),
        Index("ix_case_clock_remind", "settled", "remind_at"),
        Index("ix_case_clock_due", "settled", "due_at", "id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    rule: str = Field(max_length=64)
    subject: str = Field(max_length=16)
    subject_id: uuid.UUID
    variant: str | None = Field(default=None, max_length=32)
    starts_at: datetime = ts(nullable=False)
    due_at: datetime = ts(nullable=False)
    remind_at: datetime = ts(nullable=False)
    settled: bool = False
    reminded_at: datetime | None = ts()
    overdue_notified_at: datetime | None = ts()


class ConsultationFactRow(SQLModel, table=True):
    """Dates the person gives that clocks start from: when they learnt who the offender is, and of the
    damage."""

    __tablename__ = "consultation_fact"

    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", primary_key=True)
    offender_known_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    damage_known_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
