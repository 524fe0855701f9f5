"""SQLModel tables (suffix Row). Request/response schemas live in api/schemas, never here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from infra.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)
metadata = SQLModel.metadata


def ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class UserRow(SQLModel, table=True):
    __tablename__ = "app_user"

    id: uuid.UUID = Field(primary_key=True)
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    role: str = Field(max_length=32, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=100)
    locale: str = Field(default="ja", max_length=8)
    email_verified_at: datetime | None = ts()
    is_active: bool = True
    totp_secret: str | None = Field(default=None, max_length=255)
    totp_enabled_at: datetime | None = ts()
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    expires_at: datetime | None = ts()
    tokens_valid_after: datetime | None = ts()
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)
    version: int = 1


class AuthSessionRow(SQLModel, table=True):
    __tablename__ = "auth_session"

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    client: str = Field(max_length=16)
    mfa: bool = False
    created_at: datetime = ts(nullable=False)
    expires_at: datetime = ts(nullable=False)
    revoked_at: datetime | None = ts()
    revoked_reason: str | None = Field(default=None, max_length=32)
    # The last fresh proof of identity (issue 17 §3, step-up); none yet: the sign-in (created_at) is the last.
    reauthenticated_at: datetime | None = ts()


class RefreshTokenRow(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="auth_session.id", index=True)
    digest: str = Field(max_length=64, unique=True)
    parent_id: uuid.UUID | None = Field(default=None)
    issued_at: datetime = ts(nullable=False)
    expires_at: datetime = ts(nullable=False)
    used_at: datetime | None = ts()


class EmailTokenRow(SQLModel, table=True):
    __tablename__ = "email_token"

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    purpose: str = Field(max_length=32)
    digest: str = Field(max_length=64, unique=True)
    expires_at: datetime = ts(nullable=False)
    used_at: datetime | None = ts()
    password_hash: str | None = Field(default=None, max_length=255)
    sealed_request: str | None = Field(default=None, max_length=1024)


class ServiceClientRow(SQLModel, table=True):
    __tablename__ = "service_client"

    client_id: str = Field(primary_key=True, max_length=64)
    secret_hash: str = Field(max_length=255)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    is_active: bool = True


class ThrottleRow(SQLModel, table=True):
    """Failure counters for sign-in throttling, shared by every API process through the database."""

    __tablename__ = "throttle"

    key: str = Field(primary_key=True, max_length=128)
    failures: int = 0
    window_started_at: datetime = ts(nullable=False)


class WorkQueueColumns(SQLModel):
    """The columns every work table shares (the outbox, the LINE inbox and deliveries): how often it failed,
    when it is due again, who holds it (a lease, infra/db/leases.py) and the last error's code. The one
    failure handler (leases.record_failure) and the one retry policy (domain/work_queue.py) work on these."""

    attempts: int = 0
    next_attempt_at: datetime = ts(nullable=False)
    locked_until: datetime | None = ts()
    last_error: str | None = Field(default=None, max_length=64)


OUTBOX_DUE = text("sent_at IS NULL AND failed_at IS NULL")


class OutboxRow(WorkQueueColumns, table=True):
    """Work that must survive a crash: written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        # The worker's claim reads only the rows still to send, oldest first: a partial index holds exactly
        # those, so a backlog of sent rows costs the claim nothing.
        Index("ix_outbox_due", "created_at", postgresql_where=OUTBOX_DUE, sqlite_where=OUTBOX_DUE),
    )

    id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(max_length=64)
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    dedupe_key: str | None = Field(default=None, max_length=128)
    created_at: datetime = ts(nullable=False)
    sent_at: datetime | None = ts()
    failed_at: datetime | None = ts()


OPEN_CASES = text("status IN ('answered', 'in_progress', 'submitted')")  # domain.consultations.OPEN_STATUSES


class ConsultationRow(SQLModel, table=True):
    __tablename__ = "consultation"
    __table_args__ = (
        # The queue is read newest first by (created_at, id) keyset, with or without one equality filter
        # (the visibility rule's owner or assignee, a status, urgent): each has its ordered index, so a page
        # is an index range scan however deep it is and however many cases there are.
        Index("ix_consultation_queue", "created_at", "id"),
        Index("ix_consultation_owner_queue", "owner_id", "created_at", "id"),
        Index("ix_consultation_assignee_queue", "assignee_id", "created_at", "id"),
        Index("ix_consultation_status_queue", "status", "created_at", "id"),
        Index("ix_consultation_urgent_queue", "urgent", "created_at", "id"),
        # A period's breakdowns (status, channel, month) are one index-only range of this one.
        Index("ix_consultation_period", "created_at", "status", "channel"),
        # The supervisor's workload reads the open cases only, grouped by assignee, with what says whether a
        # first answer is overdue: this partial index holds exactly those rows and columns (an index-only scan
        # of the open cases, not a scan of every case ever received).
        Index(
            "ix_consultation_open_workload",
            "assignee_id",
            "first_answer_due_at",
            "first_answered_at",
            postgresql_where=OPEN_CASES,
            sqlite_where=OPEN_CASES,
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    owner_id: uuid.UUID = Field(foreign_key="app_user.id")
    channel: str = Field(max_length=16)
    relation: str = Field(max_length=32)
    # Sealed texts (issue 17: ciphertext in URL-safe base64, longer than what was written): no length cap here;
    # the API bounds what a person may write.
    title: str = Field(sa_column=Column(Text, nullable=False))
    narrative: str = Field(sa_column=Column(Text, nullable=False))
    desired_outcomes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    platforms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    platform_other: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    tried: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    victim_is_minor: bool | None = None
    status: str = Field(max_length=16)
    priority: str = Field(max_length=16)
    urgent: bool = Field(default=False)
    urgency_flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    assignee_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    consent_terms_version: str = Field(max_length=32)
    consented_at: datetime = ts(nullable=False)
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)
    first_answer_due_at: datetime = ts(nullable=False)
    first_answered_at: datetime | None = ts()
    closed_at: datetime | None = ts()
    consulter_read_at: datetime | None = ts()
    version: int = 1
    time_to_act_at: datetime | None = ts()
    follows_id: uuid.UUID | None = Field(default=None, foreign_key="consultation.id", index=True)


class ConsultationCategoryRow(SQLModel, table=True):
    __tablename__ = "consultation_category"
    # The breakdowns of a period (the supervisor's overview, the council's month) read one range of the period
    # index instead of joining every category row ever written to the period's cases; the queue filtered by
    # one category reads that category's cases newest first from the queue index (migration 0032).
    __table_args__ = (
        Index("ix_consultation_category_period", "created_at", "category_code"),
        Index("ix_consultation_category_queue", "category_code", "created_at", "consultation_id"),
    )

    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", primary_key=True)
    category_code: str = Field(max_length=64, primary_key=True)
    created_at: datetime = ts(nullable=False)  # the consultation's, copied: it never changes


class ConsultationTransitionRow(SQLModel, table=True):
    __tablename__ = "consultation_transition"

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    actor_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    at: datetime = ts(nullable=False)
    reason: str | None = Field(default=None, max_length=32)


class MessageRow(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_thread", "consultation_id", "created_at"),)

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id")
    author_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    kind: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = ts(nullable=False)


class EvidenceRow(SQLModel, table=True):
    __tablename__ = "evidence"

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = ts(nullable=False)
    url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    platform: str | None = Field(default=None, max_length=64)
    posted_at: datetime | None = ts()
    captured_at: datetime | None = ts()
    poster_account: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # sealed
    excerpt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    context_captured: bool = False
    file_key: str | None = Field(default=None, max_length=100)  # the cleaned copy
    file_type: str | None = Field(default=None, max_length=64)
    file_size: int | None = None
    # Issue 16 §2: SHA-256 of the ORIGINAL as received (None for files kept before 0012, whose only hash was
    # the copy's and is now copy_sha256); the sealed original's key, never served by any route.
    file_sha256: str | None = Field(default=None, max_length=64)
    file_copy_sha256: str | None = Field(default=None, max_length=64)
    file_original_key: str | None = Field(default=None, max_length=100)
    file_original_size: int | None = None
    file_sealed: bool = False
    # Issue 16 §1: hashes of the picture (device-computed, or the server's for an uploaded image).
    image_sha256: str | None = Field(default=None, max_length=64)
    image_pdq: str | None = Field(default=None, max_length=64)
    image_pdq_quality: int | None = None
    image_width: int | None = None
    image_height: int | None = None
    # A supervisor's one-upload permission in a hash-only case, with its reason.
    upload_slot_opened_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
    upload_slot_opened_at: datetime | None = ts()
    upload_slot_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Corrections are made against the version the person saw (If-Match), like every other edit.
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class IdempotencyRow(SQLModel, table=True):
    """An `Idempotency-Key` of one principal, written in the same transaction as the create it guards, and the
    answer that create gave (its status, Location and ETag, and body), so a retry gets exactly that answer.
    `resource_id` is the row the create made, for a retry whose first answer never got stored. Kept a day."""

    __tablename__ = "idempotency_key"

    principal_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    operation: str = Field(max_length=64)
    fingerprint: str = Field(max_length=64)
    resource_id: uuid.UUID | None = None
    status_code: int | None = None
    response_headers: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = ts(nullable=False)
    expires_at: datetime = ts(nullable=False, index=True)


class DeskVersionRow(SQLModel, table=True):
    """Every version of every desk; the current one is the highest version of its code."""

    __tablename__ = "desk_version"
    __table_args__ = (UniqueConstraint("code", "version", name="uq_desk_version_code_version"),)

    id: uuid.UUID = Field(primary_key=True)
    code: str = Field(max_length=64, index=True)
    version: int
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    changed_at: datetime = ts(nullable=False)
    changed_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
    note: str | None = Field(default=None, max_length=500)


class ReferralRow(SQLModel, table=True):
    __tablename__ = "referral"
    # The statistics read a fiscal year of referrals by month and desk (infra/db/statistics.py).
    __table_args__ = (Index("ix_referral_statistics", "created_at", "desk_code"),)

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    desk_code: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=16)
    created_by: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = ts(nullable=False)
    updated_at: datetime = ts(nullable=False)


class ReferralEventRow(SQLModel, table=True):
    __tablename__ = "referral_event"

    id: uuid.UUID = Field(primary_key=True)
    referral_id: uuid.UUID = Field(foreign_key="referral.id", index=True)
    actor_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    at: datetime = ts(nullable=False)


class CaseKeyRow(SQLModel, table=True):
    """A consultation's data key, wrapped by a key-encryption key (infra/crypto.py). `wrapped` is NULL once the
    case was shredded; the row stays so the shredding itself is on record."""

    __tablename__ = "case_key"

    consultation_id: uuid.UUID = Field(primary_key=True)  # no foreign key: the tombstone outlives the case
    kek_id: str = Field(max_length=32, index=True)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = ts(nullable=False)
    destroyed_at: datetime | None = ts()


class LegalHoldRow(SQLModel, table=True):
    """A supervisor's legal hold on a case (issue 17 §2): retention does not shred it while `lifted_at` is NULL.
    Lifted holds stay as the record of what was held, by whom and why; the reason is sealed with the case's key,
    and once a case whose hold was lifted is shredded, who and when stay and the reason is gone."""

    __tablename__ = "legal_hold"
    __table_args__ = (
        # At most one hold in force per case.
        Index(
            "uq_legal_hold_active",
            "consultation_id",
            unique=True,
            sqlite_where=text("lifted_at IS NULL"),
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(foreign_key="consultation.id", index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_by: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    placed_at: datetime = ts(nullable=False)
    lifted_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id", index=True)
    lifted_at: datetime | None = ts()


# Feature tables kept in their own modules; importing them here registers them on the one metadata.
from infra.db.tables_chatbot import *  # noqa: E402,F401,F403
from infra.db.tables_consents import *  # noqa: E402,F401,F403
from infra.db.tables_custody import *  # noqa: E402,F401,F403
from infra.db.tables_erasure import *  # noqa: E402,F401,F403
from infra.db.tables_exports import *  # noqa: E402,F401,F403
from infra.db.tables_letters import *  # noqa: E402,F401,F403
from infra.db.tables_line import *  # noqa: E402,F401,F403
from infra.db.tables_quality import *  # noqa: E402,F401,F403
from infra.db.tables_requests import *  # noqa: E402,F401,F403
from infra.db.tables_statistics import *  # noqa: E402,F401,F403
