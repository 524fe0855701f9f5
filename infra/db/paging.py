"""Keyset paging on (time, id), the one way every growing list is read (api/pagination.py makes the cursor)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import tuple_

from domain.consultations import Cursor


def keyset(
    query: Any, at: Any, id_: Any, after: Cursor | None, limit: int | None, *, newest_first: bool = False
) -> Any:
    """`query` ordered by (at, id) and continued after the cursor's position. A row value, not
    `a < x OR (a = x AND b < y)`: PostgreSQL reads the row value as one index range (the OR form was a filter
    over every earlier row: 331 ms against 0.15 ms at 1 M cases), and SQLite ≥ 3.15 understands it too."""
    if after is not None:
        row, mark = tuple_(at, id_), tuple_(after.at, after.id)
        query = query.where(row < mark if newest_first else row > mark)
    query = query.order_by(at.desc(), id_.desc()) if newest_first else query.order_by(at, id_)
    return query.limit(limit) if limit is not None else query
