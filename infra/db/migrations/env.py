"""Alembic environment: async engine, our metadata, batch mode on SQLite (it cannot ALTER most things)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import infra.db.tables  # noqa: F401 - registers every table on the metadata
from infra.db.engine import async_url
from infra.db.tables import metadata

config = context.config


def database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("MADOGUCHI_DATABASE_URL")
    if not url:
        from infra.settings import Settings

        url = Settings.from_environment().database_url
    return async_url(url)


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # `madoguchi migrate` reports each revision as it is applied (infra/db/migrate.migrate_to).
        on_version_apply=config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async())
