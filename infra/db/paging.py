"""Keyset paging on (time, id), the one way every growing list is read (api/pagination.py makes the cursor)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, tuple_

from domain.consultations import Cursor


def keyset(
    query: Any, at: Any, id_: Any, after: Cursor | None, limit: int | None, *, newest_first: bool = False
) -> Any:
    """`query` ordered by (at, id) and continued after the cursor's position. A row value, not
    `a < x OR (a = x AND b < y)`: PostgreSQL reads the row value as one index range (the OR form was a filter
    over every earlier row: 331 ms against 0.15 ms at 1 M cases), and SQLite ≥ 3.15 understands it too."""
    mark = None if after is None else (after.at, after.id)
    return _ordered(query, at, id_, mark, limit, newest_first)


AFTER_AT, AFTER_ID, LIMIT = "after_at", "after_id", "limit"


def keyset_bound(query: Any, at: Any, id_: Any, *, continued: bool, newest_first: bool = False) -> Any:
    """`keyset` for a statement built once: the cursor's position and the limit are the bound parameters
    `after_at`, `after_id` (when `continued`) and `limit`, given by `keyset_parameters`."""
    mark = (bindparam(AFTER_AT, type_=at.type), bindparam(AFTER_ID, type_=id_.type)) if continued else None
    return _ordered(query, at, id_, mark, bindparam(LIMIT, type_=Integer), newest_first)


def keyset_parameters(after: Cursor | None, limit: int) -> dict[str, Any]:
    found: dict[str, Any] = {LIMIT: limit}
    if after is not None:
        found |= {AFTER_AT: after.at, AFTER_ID: after.id}
    return found


def _ordered(
    query: Any, at: Any, id_: Any, mark: tuple[Any, Any] | None, limit: Any, newest_first: bool
) -> Any:
    if mark is not None:
        row, position = tuple_(at, id_), tuple_(*mark)
        query = query.where(row < position if newest_first else row > position)
    query = query.order_by(at.desc(), id_.desc()) if newest_first else query.order_by(at, id_)
    return query.limit(limit) if limit is not None else query
