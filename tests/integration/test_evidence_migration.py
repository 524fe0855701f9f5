"""0012_evidence on a database that already holds evidence files: their recorded hash was the copy's, so it
moves to copy_sha256 and the original's becomes unknown (null); the downgrade puts it back."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, Table, text
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table

from infra.db.engine import make_engine
from infra.db.migrate import downgrade, upgrade
from infra.db.tables import metadata
from infra.db.types import UTCDateTime


def _run(url: str, statement: str, params: dict | None = None) -> list:  # type: ignore[type-arg]
    async def go() -> list:  # type: ignore[type-arg]
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params or {})
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _insert(url: str, table: str, values: dict[str, Any]) -> None:
    """A row as the schema of the time has it: the given values, and a plain value of the right type for
    every other NOT NULL column (so the test does not copy the whole old schema)."""

    def fill(sync_conn) -> None:  # type: ignore[no-untyped-def]
        reflected = Table(table, MetaData(), autoload_with=sync_conn)
        row = dict(values)
        for column in reflected.columns:
            if column.name in row or column.nullable or column.server_default is not None:
                continue
            source = metadata.tables[table].c.get(column.name, column)
            try:
                kind = datetime if isinstance(source.type, UTCDateTime) else source.type.python_type
            except NotImplementedError:
                kind = str
            row[column.name] = {
                bool: False,
                int: 1,
                datetime: datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
                uuid.UUID: uuid.uuid4(),
                list: [],
                dict: {},
            }.get(kind, uuid.uuid4().hex[: getattr(column.type, "length", None) or 8])
        # Bind with the models' types where they have the column (UUIDs, UTC timestamps, JSON lists).
        model = metadata.tables[table]
        target = sa_table(
            table,
            *[
                sa_column(c.name, model.c[c.name].type if c.name in model.c else c.type)
                for c in reflected.columns
                if c.name in row
            ],
        )
        sync_conn.execute(target.insert().values(**row))

    async def go() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(fill)
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_existing_files_keep_their_copy_hash_and_say_the_original_was_not_kept(fresh_database: str) -> None:
    url = fresh_database
    upgrade(url, "0009_hotpath")
    now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    user, case, with_file, without = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    copy_hash = hashlib.sha256(b"re-encoded copy").hexdigest()
    _insert(url, "app_user", {"id": user, "email": "old@example.jp", "role": "consulter", "locale": "ja"})
    _insert(url, "consultation", {"id": case, "owner_id": user, "title": "以前の相談", "created_at": now})
    for item, key in ((with_file, "0123abcd.png"), (without, None)):
        _insert(
            url,
            "evidence",
            {
                "id": item,
                "consultation_id": case,
                "created_by": user,
                "created_at": now,
                "file_key": key,
                "file_type": "image/png" if key else None,
                "file_size": 15 if key else None,
                "file_sha256": copy_hash if key else None,
            },
        )

    upgrade(url, "0012_evidence")
    rows = {
        str(r[0]).replace("-", ""): r[1:]
        for r in _run(
            url,
            "SELECT id, file_sha256, file_copy_sha256, file_original_key, file_sealed, image_pdq FROM evidence",
        )
    }
    assert rows[with_file.hex] == (None, copy_hash, None, False, None)
    assert rows[without.hex] == (None, None, None, False, None)

    downgrade(url, "0009_hotpath")
    back = {str(r[0]).replace("-", ""): r[1] for r in _run(url, "SELECT id, file_sha256 FROM evidence")}
    assert back[with_file.hex] == copy_hash and back[without.hex] is None
