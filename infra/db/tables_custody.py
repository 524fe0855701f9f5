"""Tables of the chain of custody (domain/custody.py): links, one head per chain, reads waiting to be chained,
time-stamp tokens.

No foreign key to the consultation: the chain records deletions too, so it must outlive what it describes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from infra.db.tables import ts


class CustodyLinkRow(SQLModel, table=True):
    """One event. The primary key (consultation_id, seq) is the fork guard: two writers can never both
    store link n of one chain."""

    __tablename__ = "custody_link"

    consultation_id: uuid.UUID = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = ts(nullable=False)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    actor_role: str | None = Field(default=None, max_length=32)
    actor_id: uuid.UUID | None = Field(default=None)
    client: str | None = Field(default=None, max_length=16)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class CustodyHeadRow(SQLModel, table=True):
    """The chain's length and last hash, updated with every link under a row lock: it serialises writers
    and shows a cut tail."""

    __tablename__ = "custody_head"

    consultation_id: uuid.UUID = Field(primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)
    updated_at: datetime = ts(nullable=False)


class CustodyStampRow(SQLModel, table=True):
    """An RFC 3161 time-stamp token over a head statement (domain.custody.head_statement)."""

    __tablename__ = "custody_stamp"

    id: uuid.UUID = Field(primary_key=True)
    consultation_id: uuid.UUID = Field(index=True)
    seq: int
    hash: str = Field(max_length=64)
    token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    stamped_at: datetime = ts(nullable=False)
    tsa_url: str = Field(max_length=500)


__all__ = ["CustodyLinkRow", "CustodyHeadRow", "CustodyStampRow"]


class CustodyPendingRow(SQLModel, table=True):
    """A read waiting for its place in the chain (infra/db/custody.py): written in the read's own transaction
    without touching the head, and chained, in `id` order, by the next change of that consultation, by a
    chain read (the evidence bundle) or by the worker's next pass."""

    __tablename__ = "custody_pending"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    consultation_id: uuid.UUID = Field(index=True)
    at: datetime = ts(nullable=False)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    actor_role: str | None = Field(default=None, max_length=32)
    actor_id: uuid.UUID | None = Field(default=None)
    client: str | None = Field(default=None, max_length=16)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
