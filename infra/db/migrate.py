"""Alembic driven from code, so `madoguchi migrate`, readiness and the tests share one configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


class UnknownRevision(ValueError):
    """The revision asked for is not one of ours (or is ambiguous)."""


@dataclass(frozen=True)
class Step:
    """One revision applied (upgrade) or reverted (downgrade)."""

    revision: str
    title: str
    upgrade: bool


def migrate_to(
    database_url: str, target: str = "head", on_step: Callable[[Step], None] | None = None
) -> list[Step]:
    """Move the database to `target` (a revision id, `head(s)` or `base`), up or down as needed, calling
    `on_step` as each revision is applied. Raises UnknownRevision for a revision that is not ours."""
    script = ScriptDirectory(str(MIGRATIONS))
    target = target.strip()
    if target == "head":
        target = "heads"  # one head on main; the lead chains branches, but never fail on two

    def lineage(revision: str) -> set[str]:
        """The revision and all its ancestors."""
        return {r.revision for r in script.iterate_revisions(revision, "base")}

    if target == "heads":
        keep = {r.revision for r in script.walk_revisions()}
    elif target == "base":
        keep = set()
    else:
        try:
            wanted = script.get_revision(target)
        except (RevisionError, CommandError) as exc:
            raise UnknownRevision(target) from exc
        if wanted is None:
            raise UnknownRevision(target)
        target = wanted.revision
        keep = lineage(target)
    applied: set[str] = set()
    for head in current_heads(database_url):
        applied |= lineage(head)
    # Alembic's upgrade never goes down and its downgrade only reverts descendants of the target, so a
    # revision applied on another branch (0006 when asked for 0005) would stay. Revert down to the newest
    # revision of the target's line below everything that must go, then upgrade to the target.
    extra = applied - keep
    pivot = None
    if extra:
        lineages = [lineage(x) for x in extra]
        line = [r.revision for r in script.iterate_revisions(target, "base")] if keep else []
        pivot = next((r for r in line if all(r in li for li in lineages)), "base")
    steps: list[Step] = []

    def record(*, step: Any, **_: Any) -> None:
        script_of = step.up_revision  # the revision applied, or reverted when going down
        doc = ((script_of.doc if script_of is not None else "") or "").strip()
        done = Step(step.up_revision_id, doc.splitlines()[0] if doc else "", step.is_upgrade)
        steps.append(done)
        if on_step is not None:
            on_step(done)

    config = alembic_config(database_url)
    config.attributes["on_version_apply"] = record
    if pivot is not None:
        command.downgrade(config, pivot)
    if target != "base":
        command.upgrade(config, target)
    return steps


def current_heads(database_url: str) -> tuple[str, ...]:
    """The revisions the database is at (empty when nothing is applied)."""
    return asyncio.run(_current_heads(database_url))


def known_revisions() -> list[str]:
    return sorted(r.revision for r in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


async def _current_heads(database_url: str) -> tuple[str, ...]:
    from infra.db.engine import async_url

    engine = create_async_engine(async_url(database_url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads())
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
