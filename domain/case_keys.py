"""Each consultation's own data key (issue 17 §1). What the centre stores about a case (its files today) is
encrypted with the case's key; the key itself is kept only wrapped by a key-encryption key that lives outside
the database. Destroying a case's key makes everything encrypted with it unreadable wherever copies remain
(backups, object-storage versions): crypto-shredding.

The domain sees keys as opaque values; how they are wrapped and how bytes are sealed is infra's business."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from domain.errors import NotFound


@dataclass(frozen=True, slots=True)
class CaseKey:
    consultation_id: uuid.UUID
    material: bytes = field(repr=False)  # 32 bytes; never logged, never leaves the process


FILE_DIGEST_CONTEXT = b"madoguchi/trail-file-digest/v1"


def file_digest(key: CaseKey, sha256: str | None) -> str | None:
    """A file's SHA-256 as the trail (audit detail, chain of custody) keeps it: HMAC-SHA-256 under a key derived
    from the case's data key. While the case lives, whoever holds the file and the case key can check it against
    the trail; once the case is shredded the digest names no file, where the bare SHA-256 of an intimate image
    would identify it for good (the chain cannot forget a value: its links are hashed)."""
    if sha256 is None:
        return None
    derived = hmac.new(key.material, FILE_DIGEST_CONTEXT, hashlib.sha256).digest()
    return hmac.new(derived, sha256.lower().encode(), hashlib.sha256).hexdigest()


class CaseKeyDestroyed(NotFound):
    """The case was shredded: nothing encrypted with its key can be read again. Callers answer as for
    something that does not exist."""

    def __init__(self) -> None:
        super().__init__("file_not_found")


class CaseKeys(Protocol):
    """The unit of work's keys repository."""

    async def for_consultation(self, consultation_id: uuid.UUID) -> CaseKey:
        """The case's key, made (and stored wrapped) on first use; raises CaseKeyDestroyed after shredding."""

    async def destroy(self, consultation_id: uuid.UUID) -> bool:
        """Forget the case's key for good; True when there was one to destroy."""


class KeyEncryptionKeys(Protocol):
    """The key service: wraps and unwraps data keys with a key-encryption key (KEK). A local implementation
    reads the KEK from a file or setting; a cloud KMS or Vault adapter implements the same members."""

    @property
    def current_id(self) -> str:
        """The id of the KEK new wraps use (stored beside each wrapped key)."""

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        """(kek_id, wrapped) under the current KEK; `context` is bound as associated data."""

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        """The data key; raises KeyError for a KEK it does not hold, ValueError for a wrap that fails."""

    def holds(self, kek_id: str) -> bool:
        """Whether `unwrap` can use this KEK (checked at readiness and before rotation, so a KEK removed too
        early is reported by its id instead of failing reads one by one)."""
