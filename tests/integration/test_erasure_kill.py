"""Killing `madoguchi worker` with SIGKILL in the middle of an erasure pass (issue 17 §2/§3), as an operator's
crash would: a real worker process against the test database and the evidence store on local disk.

What must hold: each person is erased completely (request completed, account anonymised, sessions ended, every
case's key destroyed and its texts emptied, its files queued for deletion) or not at all (request open, account
and cases as they were); no case is shredded while its owner's request is open; and the next pass finishes the
erasure and deletes every stored file of the shredded cases.

The kill lands mid-pass by construction, not by timing: on PostgreSQL the test holds the row lock of the last
case of the person in the middle of the queue, so the worker has erased the people before them, locked that
person's account and shredded their other cases in its open transaction, and waits there when it is killed; on
SQLite (one writer at a time, no row locks) the test takes the database's write lock in a gap between two of the
worker's transactions once the first person is erased, so the worker is killed waiting to start the next
person's (a kill inside a transaction is there SQLite's own atomic commit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, make_url, select, text, update

from infra.db.tables import AuthSessionRow, CaseKeyRow, ConsultationRow, RefreshTokenRow, UserRow
from infra.db.tables_erasure import ErasureRequestRow, PendingFileDeleteRow
from tests.api.consultation_helpers import open_consultation
from tests.api.test_erasure import URL, _stored_keys, _with_a_file, signs_in
from tests.api.test_retention import NARRATIVE
from tests.integration.test_worker_kill import wait_for

PEOPLE = 10
CASES = 3  # each person's first case has a stored evidence file (original and cleaned copy)


@dataclass
class Erasable:
    id: uuid.UUID
    email: str
    headers: dict[str, str]
    cases: list[uuid.UUID] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def start_worker(settings, *extra: str) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "MADOGUCHI_ENV": "test",
        "MADOGUCHI_DATABASE_URL": settings.database_url,
        "MADOGUCHI_SECRET_KEY": settings.secret_key.get_secret_value(),
        "MADOGUCHI_STORAGE_DIR": str(settings.storage_dir),
        "MADOGUCHI_MAIL_BACKEND": "smtp",
        "MADOGUCHI_SMTP_HOST": "127.0.0.1",
        "MADOGUCHI_SMTP_PORT": str(settings.smtp_port),
        "MADOGUCHI_WORKER_POLL_SECONDS": "0.1",
        "MADOGUCHI_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(  # noqa: S603 - our own console script
        [sys.executable, "-m", "infra.cli", "worker", *extra],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def hold_write_lock(path: str, got: threading.Event, release: threading.Event) -> None:
    """SQLite's one write lock, taken in a gap between two of the worker's transactions (asked for again and
    again without waiting: a waiting writer would lose every race to the worker) and held until `release`."""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:  # database is locked
                if time.monotonic() > deadline:
                    raise
        got.set()
        release.wait(60)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def completed(container) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return int(
            await db.scalar(
                select(func.count())
                .select_from(ErasureRequestRow)
                .where(ErasureRequestRow.completed_at.is_not(None))  # type: ignore[union-attr]
            )
            or 0
        )


async def state_of(container, person: Erasable) -> str:  # type: ignore[no-untyped-def]
    """ "erased" or "untouched"; anything in between fails the test here, saying what is half-done."""
    async with container.sessions() as db:
        request = (
            await db.execute(select(ErasureRequestRow).where(ErasureRequestRow.user_id == person.id))
        ).scalar_one()
        user = await db.get(UserRow, person.id)
        cases = {
            r.id: r
            for r in (
                await db.execute(select(ConsultationRow).where(ConsultationRow.owner_id == person.id))
            ).scalars()
        }
        keys = set(  # the cases whose key is not destroyed
            (
                await db.execute(
                    select(CaseKeyRow.consultation_id).where(
                        CaseKeyRow.consultation_id.in_(person.cases),  # type: ignore[attr-defined]
                        CaseKeyRow.wrapped.is_not(None),  # type: ignore[union-attr]
                    )
                )
            ).scalars()
        )
        sessions = list(
            (await db.execute(select(AuthSessionRow).where(AuthSessionRow.user_id == person.id))).scalars()
        )
        refresh = await db.scalar(
            select(func.count())
            .select_from(RefreshTokenRow)
            .where(RefreshTokenRow.session_id.in_([s.id for s in sessions]))  # type: ignore[attr-defined]
        )
        queued = set(
            (
                await db.execute(
                    select(PendingFileDeleteRow.storage_key).where(
                        PendingFileDeleteRow.storage_key.in_(person.files)  # type: ignore[attr-defined]
                    )
                )
            ).scalars()
        )
    assert user is not None and set(cases) == set(person.cases)
    on_disk = [k for k in person.files if await container.blobs.exists(k)]
    if request.completed_at is None:
        assert (user.email, user.is_active) == (person.email, True) and user.password_hash, "account touched"
        assert keys == set(person.cases), "a case shredded while its owner's request is open"
        assert all(c.narrative for c in cases.values()), "a text emptied while the request is open"
        assert sessions and all(s.revoked_at is None for s in sessions) and refresh, "sessions ended"
        assert not queued and on_disk == person.files, "files queued or deleted while the request is open"
        return "untouched"
    assert user.email.endswith("@erased.invalid") and (user.password_hash, user.is_active) == (None, False)
    assert keys == set(), "a case of an erased person kept its key"
    assert all(c.narrative == "" for c in cases.values()), "a text of an erased person left"
    assert all(s.revoked_at is not None for s in sessions) and not refresh, "a session of an erased person"
    # Deleted from the store, or still queued for it: never forgotten.
    assert set(on_disk) <= queued, "a file of a shredded case left in the store and not queued"
    return "erased"


async def test_sigkill_mid_erasure_leaves_nobody_half_erased_and_the_next_pass_finishes(
    client, people, container, settings
) -> None:  # type: ignore[no-untyped-def]
    postgres = container.engine.dialect.name == "postgresql"
    everyone: list[Erasable] = []
    for _ in range(PEOPLE):
        person = await people.create()
        first, _ = await _with_a_file(client, person)
        erasable = Erasable(person.id, person.email, person.headers, [uuid.UUID(first["id"])])
        erasable.files = await _stored_keys(container, first["id"])
        assert len(erasable.files) == 2  # the original and the cleaned copy
        for _ in range(CASES - 1):
            erasable.cases.append(
                uuid.UUID((await open_consultation(client, person, narrative=NARRATIVE))["id"])
            )
        asked = await client.post(URL, headers=person.headers)
        assert asked.status_code == 202, asked.text
        everyone.append(erasable)
    # The worker runs on the system clock: every grace period is over by it, in this order (one a second).
    now = datetime.now(UTC)
    async with container.sessions() as db:
        for n, person in enumerate(everyone):
            due = now - timedelta(seconds=PEOPLE + 1 - n)
            await db.execute(
                update(ErasureRequestRow)
                .where(ErasureRequestRow.user_id == person.id)  # type: ignore[arg-type]
                .values(requested_at=due - timedelta(days=14), due_at=due)
            )
        await db.commit()
    assert {await state_of(container, p) for p in everyone} == {"untouched"}

    middle = everyone[PEOPLE // 2]
    blocker = await container.engine.connect()
    await blocker.begin()
    got, release = threading.Event(), threading.Event()
    holder: asyncio.Future[None] | None = None
    try:
        if postgres:
            # The last case the worker reaches for the middle person (it takes them in id order).
            await blocker.execute(
                select(ConsultationRow.id).where(ConsultationRow.id == max(middle.cases)).with_for_update()  # type: ignore[arg-type]
            )
        worker = start_worker(settings)
        try:
            if postgres:

                async def waiting() -> bool:
                    waits = await container.engine.connect()
                    try:
                        blocked = await waits.scalar(
                            text(
                                "SELECT count(*) FROM pg_stat_activity"
                                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                            )
                        )
                    finally:
                        await waits.close()
                    return bool(blocked) and await completed(container) == PEOPLE // 2

                await wait_for(waiting, "the worker to wait for the middle person's last case")
            else:

                async def some() -> bool:
                    return await completed(container) >= 1

                await wait_for(some, "the first erasure")
                path = str(make_url(settings.database_url).database)
                holder = asyncio.ensure_future(asyncio.to_thread(hold_write_lock, path, got, release))
                await asyncio.to_thread(got.wait, 60)
                await asyncio.sleep(0.3)  # the worker's next write waits for it
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait)
        finally:
            if worker.poll() is None:
                worker.kill()
                await asyncio.to_thread(worker.wait)
    finally:
        release.set()
        if holder is not None:
            await holder
        await blocker.rollback()
        await blocker.close()

    states = [await state_of(container, p) for p in everyone]
    assert "erased" in states and "untouched" in states, states  # the kill landed mid-pass
    if postgres:
        assert states == ["erased"] * (PEOPLE // 2) + ["untouched"] * (PEOPLE - PEOPLE // 2)
    untouched = next(p for p, s in zip(everyone, states, strict=True) if s == "untouched")
    shown = await client.get(f"/v1/consultations/{untouched.cases[1]}", headers=untouched.headers)
    assert shown.status_code == 200 and NARRATIVE in shown.text  # still the person's, readable
    assert await signs_in(client, untouched.email)

    # The next pass (`madoguchi worker --once`) erases everyone left and deletes every file.
    again = start_worker(settings, "--once")
    assert await asyncio.to_thread(again.wait, 120) == 0
    assert [await state_of(container, p) for p in everyone] == ["erased"] * PEOPLE
    async with container.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(PendingFileDeleteRow)) == 0
    every_file = [k for p in everyone for k in p.files]
    assert every_file and not [k for k in every_file if await container.blobs.exists(k)]
    assert not [p for p in everyone if await signs_in(client, p.email)]
