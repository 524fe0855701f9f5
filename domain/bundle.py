"""The evidence bundle (issue 16 §4): what a consulter hands to a lawyer, the police or a court. The use case
is ConsultationService.evidence_bundle; the ZIP and its PDF report are written by infra/bundle.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from domain.custody import Head, Link, Stamp


@dataclass(frozen=True, slots=True)
class Original:
    """A file exactly as it was received (before metadata was stripped)."""

    data: bytes
    content_type: str
    sha256: str


@dataclass(frozen=True, slots=True)
class BundleItem:
    number: int
    evidence: object  # domain.consultations.Evidence (kept loose: that module imports this one)
    copy: bytes | None  # the cleaned copy staff see, as stored
    copy_sha256: str | None
    original_sha256: str | None  # SHA-256 of the original as received, when the service knows it
    original: Original | None = None  # only when the consulter asked for originals and one is kept


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    consultation_id: uuid.UUID
    exported_at: datetime
    exported_by_role: str
    exported_by: uuid.UUID
    originals_requested: bool
    items: list[BundleItem]
    links: list[Link]  # the whole chain, the export's own link last
    head: Head
    stamp: Stamp | None  # the newest time-stamp token over an earlier (or this) head, if any
    notes: list[str] = field(default_factory=list)
