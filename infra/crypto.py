"""Envelope encryption (issue 17 §1): AES-256-GCM from the `cryptography` package.

- A sealed value is `MAGIC | nonce (12 bytes) | ciphertext+tag`, sealed with the case's data key and bound to
  associated data that names the case (and, for files, the storage key), so a ciphertext moved to another case
  or swapped with another file of the same case fails to open.
- Data keys are wrapped by a key-encryption key (KEK) held by a key service. `LocalKeyService` holds KEKs read
  from settings or a file (the development default derives one from the master secret); a cloud KMS or Vault
  adapter implements `domain.case_keys.KeyEncryptionKeys` instead. A KEK's id is a fingerprint of it, so rotation
  (`madoguchi rotate-keys`) re-wraps data keys under the new KEK while the old ones stay readable until then."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.case_keys import CaseKey, CaseKeyDestroyed

MAGIC = b"MDGE\x01"  # never the start of an image or PDF the cleaner keeps (PNG, JPEG, WebP, GIF, %PDF)
NONCE_BYTES = 12
KEY_BYTES = 32


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, *, context: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def is_sealed(data: bytes) -> bool:
    return data.startswith(MAGIC)


def unseal(key: bytes, sealed: bytes, *, context: bytes) -> bytes:
    """The plaintext; ValueError when the value is not sealed, was sealed for another context or was altered."""
    if not is_sealed(sealed):
        raise ValueError("not a sealed value")
    nonce = sealed[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[len(MAGIC) + NONCE_BYTES :], context)
    except InvalidTag as exc:
        raise ValueError("sealed value does not open with this key and context") from exc


def file_context(key: CaseKey, storage_key: str) -> bytes:
    return b"evidence-file\x00" + key.consultation_id.bytes + b"\x00" + storage_key.encode()


def wrap_context(consultation_id_bytes: bytes) -> bytes:
    return b"case-key\x00" + consultation_id_bytes


def kek_id(kek: bytes) -> str:
    return hashlib.sha256(b"madoguchi-kek\x00" + kek).hexdigest()[:16]


def derived_kek(master_secret: bytes) -> bytes:
    """The development default: a KEK derived from the master secret (production requires its own KEK)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"madoguchi kek v1").derive(
        master_secret
    )


def parse_keks(text: str) -> list[bytes]:
    """Base64 KEKs, one per line or comma-separated, the current one first; blank lines and # comments skipped."""
    keks = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            kek = base64.b64decode(line, validate=True)
        except ValueError as exc:
            raise ValueError("a key-encryption key is not valid base64") from exc
        if len(kek) != KEY_BYTES:
            raise ValueError(f"a key-encryption key must be {KEY_BYTES} bytes (base64 of 32 random bytes)")
        keks.append(kek)
    if not keks:
        raise ValueError("no key-encryption key given")
    return keks


def read_keks(value: str | None, path: Path | None) -> list[bytes] | None:
    if path is not None:
        return parse_keks(path.read_text())
    if value is not None:
        return parse_keks(value)
    return None


class LocalKeyService:
    """KEKs held in this process: the first wraps, every one unwraps (the previous ones until rotation ends)."""

    def __init__(self, keks: list[bytes]) -> None:
        if not keks:
            raise ValueError("no key-encryption key")
        self._keks = {kek_id(k): k for k in keks}
        self._current = kek_id(keks[0])

    @property
    def current_id(self) -> str:
        return self._current

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        return self._current, seal(self._keks[self._current], data_key, context=context)

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        return unseal(self._keks[kek_id], wrapped, context=context)

    def holds(self, kek_id: str) -> bool:
        return kek_id in self._keks


TEXT_PREFIX = "mdg1:"  # a sealed text column: this prefix, then the sealed bytes in URL-safe base64


def text_context(key: CaseKey, field: str, row_id: uuid.UUID) -> bytes:
    """A text is bound to its case, its column and its row: moved to another case, column or row, it fails."""
    return b"text\x00" + key.consultation_id.bytes + b"\x00" + field.encode() + b"\x00" + row_id.bytes


@overload
def seal_text(key: CaseKey, value: str, *, field: str, row_id: uuid.UUID) -> str: ...


@overload
def seal_text(key: CaseKey, value: None, *, field: str, row_id: uuid.UUID) -> None: ...


@overload
def seal_text(key: CaseKey, value: str | None, *, field: str, row_id: uuid.UUID) -> str | None: ...


def seal_text(key: CaseKey, value: str | None, *, field: str, row_id: uuid.UUID) -> str | None:
    if value is None:
        return None
    sealed = seal(key.material, value.encode(), context=text_context(key, field, row_id))
    return TEXT_PREFIX + base64.urlsafe_b64encode(sealed).decode()


def open_text(key: CaseKey, stored: str | None, *, field: str, row_id: uuid.UUID) -> str | None:
    """The text as written; a value stored before texts were encrypted is returned as it is."""
    if stored is None or not stored.startswith(TEXT_PREFIX):
        return stored
    sealed = base64.urlsafe_b64decode(stored[len(TEXT_PREFIX) :])
    return unseal(key.material, sealed, context=text_context(key, field, row_id)).decode()


def opened_text(key: CaseKey | None, stored: str | None, name: str, row_id: uuid.UUID) -> str | None:
    """A sealed text opened with its case's key; a text stored before encryption as it is."""
    if key is None:
        if stored is not None and stored.startswith(TEXT_PREFIX):
            raise CaseKeyDestroyed()
        return stored  # written before texts were encrypted
    return open_text(key, stored, field=name, row_id=row_id)


SEALED_JSON = "sealed"  # a sealed JSON column holds {"sealed": "mdg1:..."}: the value as JSON text, sealed


def seal_json(key: CaseKey, value: Any, *, field: str, row_id: uuid.UUID) -> dict[str, str]:
    """A JSON value sealed as one text, kept in its JSON column (no migration: the column stays JSON)."""
    return {SEALED_JSON: seal_text(key, json.dumps(value, ensure_ascii=False), field=field, row_id=row_id)}


def opened_json(key: CaseKey | None, stored: Any, name: str, row_id: uuid.UUID) -> Any:
    """A sealed JSON value opened with its case's key; a value stored before encryption as it is."""
    if isinstance(stored, dict) and set(stored) == {SEALED_JSON}:
        sealed = stored[SEALED_JSON]
        if isinstance(sealed, str) and sealed.startswith(TEXT_PREFIX):
            return json.loads(opened_text(key, sealed, name, row_id) or "null")
    return stored
