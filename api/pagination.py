"""Opaque keyset cursors: base64url JSON, so clients cannot depend on their shape."""

from __future__ import annotations

import base64
import binascii
import json
import uuid

from domain.errors import ValidationFailed


def encode_cursor(position: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("invalid_cursor", field="cursor") from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationFailed("invalid_cursor", field="cursor")
    return value


def cursor_uuid(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(decode_cursor(cursor)["id"])
    except (KeyError, ValueError) as exc:
        raise ValidationFailed("invalid_cursor", field="cursor") from exc
