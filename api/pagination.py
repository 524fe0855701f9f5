"""Opaque keyset cursors: base64url JSON, so clients cannot depend on their shape."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Protocol, TypeVar

from fastapi import Query

from api.schemas.common import Page
from api.schemas.text import SingleLine
from domain.consultations import Cursor
from domain.errors import ValidationFailed

# The query parameters of every keyset-paged list.
CursorParam = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page"), SingleLine()
]
LimitParam = Annotated[int, Query(ge=1, le=100, description="Items per page")]


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


def position(cursor: str | None) -> Cursor | None:
    """The (time, id) position a cursor stands for; None for the first page."""
    if not cursor:
        return None
    value = decode_cursor(cursor)
    try:
        return Cursor(datetime.fromisoformat(value["c"]), uuid.UUID(value["id"]))
    except (KeyError, ValueError) as exc:
        raise ValidationFailed("invalid_cursor", field="cursor") from exc


class Positioned(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


T = TypeVar("T", bound=Positioned)
Item = TypeVar("Item")
Out = TypeVar("Out")


def page_of(found: Sequence[T], limit: int, shape: Callable[[T], Out]) -> Page[Out]:
    """One page of a list ordered by (created_at, id); see page_by."""
    return page_by(found, limit, shape, lambda x: (x.created_at, x.id))


def page_by(
    found: Sequence[Item],
    limit: int,
    shape: Callable[[Item], Out],
    key: Callable[[Item], tuple[datetime, uuid.UUID]],
) -> Page[Out]:
    """One page from `limit + 1` rows fetched: the extra row only says whether another page follows. The
    cursor is the last item's `key`, the (time, id) the repository ordered the list by (infra/db/paging.py)."""
    items = found[:limit]
    next_cursor = None
    if len(found) > limit:
        at, id_ = key(items[-1])
        next_cursor = encode_cursor({"c": at.isoformat(), "id": str(id_)})
    return Page(items=[shape(x) for x in items], next_cursor=next_cursor)
