"""Chain of custody: every event on a consultation's record, one hash-linked chain per consultation.

A link is serialised canonically and hashed with the previous link's hash, so editing, deleting, inserting or
reordering a stored link breaks the chain at that point, and a truncated tail shows against the chain's head
record (and, once stamped, against an RFC 3161 time-stamp token held outside the database).

Canonical serialisation of a link (format 1), byte for byte:
    UTF-8 of the JSON object with exactly these keys, sorted, no insignificant whitespace
    (separators "," and ":"), non-ASCII characters written as themselves (no \\u escapes):
      "v": 1
      "consultation_id": lowercase hyphenated UUID
      "seq": integer, 1 for the first link, then +1 without gaps
      "at": UTC time "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always six fraction digits)
      "action": e.g. "evidence.downloaded"
      "object_type", "object_id": strings
      "actor_role": role or null; "actor_id": opaque user id (UUID) or null; "client": the front door
        (web, staff, line, chatbot, service) or null
      "detail": object of strings, integers, booleans or null (no floats: their text is not canonical)
    hash(link n) = SHA-256( bytes.fromhex(hash(link n-1)) || canonical(link n) ), lowercase hex;
    hash(link 0) is 32 zero bytes.

The head statement a time-stamping authority signs (its message imprint is its SHA-256):
    canonical JSON {"v":1,"consultation_id":…,"seq":…,"hash":…} of the head at stamping time.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

FORMAT = 1
GENESIS = "00" * 32


class Action:
    """The events on the chain. Consultation events that the audit already names keep their names."""

    consultation_created = "consultation.created"
    consultation_read = "consultation.read"
    consultation_changed = "consultation.changed"
    message_posted = "message.posted"
    evidence_created = "evidence.created"
    evidence_file_received = "evidence.file_received"
    evidence_viewed = "evidence.viewed"
    evidence_downloaded = "evidence.downloaded"
    evidence_exported = "evidence.exported"
    evidence_original_exported = "evidence.original_exported"
    evidence_upload_slot_opened = "evidence.upload_slot_opened"
    evidence_corrected = "evidence.corrected"
    evidence_deleted = "evidence.deleted"


READS = frozenset(
    {
        Action.consultation_read,
        "consultation.read_for_review",
        Action.evidence_viewed,
        Action.evidence_downloaded,
        Action.evidence_original_exported,
    }
)
"""Events that look at a record without changing it. Their links wait in their own transaction, without the
chain's head, and are chained in order by the next change of that consultation, a chain read or the worker's
next pass: reads of one case then never wait on each other (issue 12). A change is chained at its commit."""


Scalar = str | int | bool | None


@dataclass(frozen=True, slots=True)
class Link:
    consultation_id: uuid.UUID
    seq: int
    at: datetime
    action: str
    object_type: str
    object_id: str
    actor_role: str | None
    actor_id: uuid.UUID | None
    client: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


def utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def check_detail(detail: dict[str, Any]) -> dict[str, Any]:
    for key, value in detail.items():
        if not isinstance(key, str):
            raise ValueError("detail keys are strings")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, float) or not isinstance(item, (str, int, bool, type(None))):
                raise ValueError(f"detail {key!r}: only strings, integers, booleans and null")
    return detail


def canonical(link: Link) -> bytes:
    return canonical_json(
        {
            "v": FORMAT,
            "consultation_id": str(link.consultation_id),
            "seq": link.seq,
            "at": utc_text(link.at),
            "action": link.action,
            "object_type": link.object_type,
            "object_id": link.object_id,
            "actor_role": link.actor_role,
            "actor_id": str(link.actor_id) if link.actor_id else None,
            "client": link.client,
            "detail": check_detail(dict(link.detail)),
        }
    )


def link_hash(prev_hash: str, link: Link) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(link)).hexdigest()


def head_statement(consultation_id: uuid.UUID, seq: int, head_hash: str) -> bytes:
    """What a time-stamp token is over: the chain's identity, length and last hash."""
    return canonical_json(
        {"v": FORMAT, "consultation_id": str(consultation_id), "seq": seq, "hash": head_hash}
    )


@dataclass(frozen=True, slots=True)
class Head:
    consultation_id: uuid.UUID
    seq: int
    hash: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Stamp:
    """An RFC 3161 token over `head_statement(consultation_id, seq, hash)`."""

    consultation_id: uuid.UUID
    seq: int
    hash: str
    token: bytes  # DER TimeStampToken (CMS ContentInfo)
    stamped_at: datetime  # genTime from the token
    tsa_url: str


class CustodyReader(Protocol):
    """A chain as stored (links are appended through AuditLog.record, never directly)."""

    async def links(self, consultation_id: uuid.UUID) -> list[Link]: ...

    async def head(self, consultation_id: uuid.UUID) -> Head | None: ...

    async def stamps(self, consultation_id: uuid.UUID) -> list[Stamp]: ...


@dataclass(frozen=True, slots=True)
class Break:
    """The first place a chain does not hold."""

    consultation_id: uuid.UUID
    seq: int
    reason: str  # hash_mismatch | prev_hash_mismatch | missing_link | unexpected_seq | head_mismatch | …

    def __str__(self) -> str:
        return f"consultation {self.consultation_id} link {self.seq}: {self.reason}"


def verify_chain(
    consultation_id: uuid.UUID,
    links: Sequence[Link],
    head: Head | None,
    stamps: Iterable[Stamp] = (),
) -> Break | None:
    """Check one chain as stored (links ordered by seq) against its head record and its stamps.
    Stamps' signatures are checked by the caller (infra/timestamping.py); here, that each stamped
    (seq, hash) is still in the chain, so a rewound head and a truncated tail show."""
    prev = GENESIS
    expected = 1
    for link in links:
        if link.consultation_id != consultation_id:
            return Break(consultation_id, link.seq, "foreign_link")
        if link.seq > expected:
            return Break(consultation_id, expected, "missing_link")
        if link.seq < expected:
            return Break(consultation_id, link.seq, "duplicate_seq")
        if link.prev_hash != prev:
            return Break(consultation_id, link.seq, "prev_hash_mismatch")
        try:
            computed = link_hash(prev, link)
        except ValueError:
            return Break(consultation_id, link.seq, "unreadable_link")
        if computed != link.hash:
            return Break(consultation_id, link.seq, "hash_mismatch")
        prev = link.hash
        expected += 1
    last = expected - 1
    by_seq = {link.seq: link.hash for link in links}
    if head is None:
        if links:
            return Break(consultation_id, last, "head_missing")
    elif head.seq > last:
        # The head says more links were written than are stored: the tail was cut.
        return Break(consultation_id, last + 1, "truncated")
    elif head.seq < last:
        return Break(consultation_id, head.seq + 1, "beyond_head")
    elif head.hash != prev:
        return Break(consultation_id, head.seq, "head_mismatch")
    for stamp in stamps:
        if by_seq.get(stamp.seq) != stamp.hash:
            return Break(consultation_id, stamp.seq, "stamped_link_missing")
    return None
