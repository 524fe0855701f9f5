"""The evidence bundle (issue 16 §4): what a consulter hands to a lawyer, the police or a court. The use case
is ConsultationService.evidence_bundle; the ZIP and its PDF report are written by infra/bundle.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

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


class SealedOriginals(Protocol):
    def original_sha256(self, evidence: object) -> str | None: ...

    def export_original(self, evidence: object) -> Original | None: ...


class NoSealedOriginals:
    """MERGE POINT for issue 16 §2 (branch h/evidence). On this branch the service keeps only the cleaned
    copy, so no original is known or exported. When sealed originals land, replace this class (wired in
    infra/container.py → ConsultationService(originals=…)) with one whose `original_sha256` returns the
    evidence item's `sha256` (the original as received) and whose `export_original` calls the domain's
    explicit export of the sealed blob; `copy_sha256` below then becomes the item's `copy_sha256`."""

    def original_sha256(self, evidence: object) -> str | None:
        return None

    def export_original(self, evidence: object) -> Original | None:
        return None


def copy_sha256(evidence: object) -> str | None:
    """The cleaned copy's SHA-256. On main it is EvidenceFile.sha256 (the stored bytes); with §2 it is the
    item's `copy_sha256` (MERGE POINT)."""
    file = getattr(evidence, "file", None)
    return getattr(file, "copy_sha256", None) or getattr(file, "sha256", None) if file is not None else None
