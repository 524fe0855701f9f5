"""Migrations: upgrade to head and every downgrade on the suite's database kind, and the models agree with
what the migrations build (a forgotten autogenerate fails here)."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from infra.db.engine import make_engine
from infra.db.migrate import MIGRATIONS, downgrade, head_revision, upgrade
from infra.db.tables import metadata


def _inspect(url: str, fn):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_single_head() -> None:
    assert len(ScriptDirectory(str(MIGRATIONS)).get_heads()) == 1


def test_upgrade_downgrade_newest_and_models_match(fresh_database: str) -> None:
    upgrade(fresh_database)
    diff = _inspect(fresh_database, lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    assert diff == []
    tables = set(_inspect(fresh_database, lambda c: inspect(c).get_table_names()))
    assert set(metadata.tables) <= tables

    # Every downgrade works (the newest revision is a merge of feature branches, so "one step down" is
    # ambiguous): all the way to base, then up again.
    downgrade(fresh_database, "base")
    left = set(_inspect(fresh_database, lambda c: inspect(c).get_table_names())) - {"alembic_version"}
    assert left == set()
    upgrade(fresh_database)
    current = _inspect(fresh_database, lambda c: MigrationContext.configure(c).get_current_revision())
    assert current == head_revision()
