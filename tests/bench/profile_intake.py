"""Intake (`POST /v1/consultations`) in one process, against PostgreSQL: requests/s and the SQL it sends.

    .venv/bin/python tests/bench/profile_intake.py [--requests 400] [--consulters 16] [--concurrency 8]
        [--database URL]
    .venv/bin/py-spy record -r 200 -f raw -o /tmp/intake.txt -- .venv/bin/python tests/bench/profile_intake.py

One run (loopback only; the database bench_<random> is created, migrated, then dropped, also on errors):
  1. --consulters consulters created through the AccountService and signed in (real tokens, so the session
     lookup is counted); the per-consulter limit raised (consultations_per_hour) so the run is not refused;
  2. one intake per consulter to warm the caches, then the statements of one intake listed (SQLAlchemy's
     `before_cursor_execute` on the engine, plus what it does not see: statements on the raw asyncpg
     connection and the transaction's BEGIN / COMMIT / ROLLBACK, as tests/bench/run.py counts them);
  3. --requests intakes through httpx.ASGITransport, --concurrency at a time, tokens rotated: requests/s in
     this one process (no HTTP server, no network; the app, its event loop and PostgreSQL only).

With --database, an existing migrated database instead (one `run.py --seed-only` kept, to see what intake
costs at that size; it is left in place, with the run's consulters and cases added). The WAL written per
intake is printed too: a new row's random UUID lands on a random page of each of its indexes, and the first
change of a page after a checkpoint writes the whole page to the WAL.

Not a pytest module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parents[1]))

import bench_me as bm  # noqa: E402

from infra.db.engine import async_url  # noqa: E402


def _settings(db_url: str) -> Any:
    from infra.settings import Settings

    return Settings(
        database_url=db_url,
        env="development",
        secret_key=bm.SECRET_KEY,
        worker_in_process=False,
        consultations_per_hour=1_000_000,
        password_hash_memory_kib=8192,
        password_hash_iterations=1,
    )


def _count_raw(seen: list[str]) -> None:
    import asyncpg.connection
    import asyncpg.transaction

    def counting(cls: Any, method: str, label: str) -> None:
        original = getattr(cls, method)

        async def wrapper(self: Any, *a: Any, **k: Any) -> Any:
            seen.append(f"{label} {a[0] if a and isinstance(a[0], str) else ''}".strip())
            return await original(self, *a, **k)

        setattr(cls, method, wrapper)

    for method in ("fetchrow", "fetch", "fetchval"):
        counting(asyncpg.connection.Connection, method, f"raw {method}")
    for method in ("start", "commit", "rollback"):
        counting(asyncpg.transaction.Transaction, method, method.upper())


async def run(db_url: str, args: argparse.Namespace) -> None:
    import httpx
    from sqlalchemy import event

    from api.main import create_app
    from api.schemas.consultations import INTAKE_EXAMPLE
    from domain.actors import Role
    from infra.container import build_container

    logging.disable(logging.INFO)
    c = build_container(_settings(db_url))
    password = "Bench-" + secrets.token_urlsafe(18)
    tokens = []
    for i in range(args.consulters):
        email = f"intake-{i}-{secrets.token_hex(3)}@example.jp"
        await c.accounts.create_user_directly(email=email, role=Role.consulter, password=password)
        pair = await c.accounts.login(email, password, totp_code=None, address=f"10.8.0.{i + 1}")
        tokens.append(pair.access_token)
    seen: list[str] = []
    counting = False

    def on_execute(*a: Any) -> None:
        if counting:
            seen.append(a[2])

    event.listen(c.engine.sync_engine, "before_cursor_execute", on_execute)
    _count_raw(seen)
    body = json.dumps(INTAKE_EXAMPLE, ensure_ascii=False).encode()
    try:
        transport = httpx.ASGITransport(app=create_app(container=c))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:

            async def one(i: int) -> None:
                headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
                headers["Content-Type"] = "application/json"
                r = await client.post("/v1/consultations", headers=headers, content=body)
                if r.status_code != 201:
                    raise RuntimeError(f"{r.status_code} {r.text[:300]}")

            for i in range(len(tokens)):
                await one(i)
            seen.clear()
            counting = True
            await one(0)
            counting = False
            print(f"statements of one intake: {len(seen)}")
            for s in seen:
                print("  " + " ".join(s.split())[:160])
            seen.clear()

            sem = asyncio.Semaphore(args.concurrency)

            async def limited(i: int) -> None:
                async with sem:
                    await one(i)

            wal = await _wal_position(c.engine)
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(limited(i) for i in range(args.requests)))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            wal_bytes = await _wal_position(c.engine, since=wal)
            print(
                f"{args.requests} intakes, {args.concurrency} at a time, {args.consulters} consulters: "
                f"{args.requests / elapsed:.0f} req/s in one process ({elapsed * 1000 / args.requests:.2f} ms "
                f"each; this process's CPU {cpu * 1000 / args.requests:.2f} ms an intake, PostgreSQL's not counted); "
                f"WAL {wal_bytes / args.requests / 1024:.1f} KiB an intake"
            )
    finally:
        await c.close()


async def _wal_position(engine: Any, since: int | None = None) -> int:
    """The server's WAL position now (bytes), or the bytes written since `since`."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        now = (
            await conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"))
        ).scalar_one()
    return int(now) if since is None else int(now) - since


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--consulters", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", default=None, help="an existing migrated database (kept)")
    args = parser.parse_args()
    if args.database:
        asyncio.run(run(async_url(args.database), args))
        return 0
    db_name = f"bench_{secrets.token_hex(6)}"
    admin_url = f"{args.pg.rstrip('/')}/postgres"
    db_url = async_url(f"{args.pg.rstrip('/')}/{db_name}")
    asyncio.run(bm.create_database(admin_url, db_name))
    try:
        from infra.db.migrate import upgrade

        upgrade(db_url)
        asyncio.run(run(db_url, args))
    finally:
        asyncio.run(bm.drop_database(admin_url, db_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
