"""How long each statistics call takes over many consultations (issue 18: ≤ 300 ms over 1 M).

    .venv/bin/python tests/bench/bench_statistics.py [--cases 1000000] [--db postgres|sqlite]
        [--pg-admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--repeat 5]

One run: a fresh database (PostgreSQL: bench_stats_<random>, dropped afterwards, also on errors; SQLite: a
temporary file), migrated; --cases consultations seeded in batches over three fiscal years (the one measured
holds a third), with categories, platforms, urgency flags, referrals and repeat consulters as in
tests/statistics_data.py; ANALYZE; then the worker's recount of the summary tables (infra/db/statistics_summary.py,
timed: what a refresh costs when every year changed, and a refresh when nothing did); then, per call the API
makes (each table alone, the time to first answer, and everything at once as GET /v1/statistics does), the
median and worst of --repeat runs through the real service (reading the summaries; table building and
suppression included), and whether it meets 300 ms. `--raw` skips the summaries: the SQL over the raw rows.

Not a pytest module, and not for a shared machine at 1 M (seeding alone takes minutes): a smoke run is
`--cases 20000 --db sqlite`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from domain.actors import Actor, Client, Role  # noqa: E402
from domain.statistics import DIMENSION_CODES, TIMING_CODE  # noqa: E402

BUDGET_MS = 300.0
FY = 2025


async def run(db_url: str, cases: int, repeat: int, raw: bool = False) -> int:
    from infra.container import build_container
    from infra.db.migrate import upgrade
    from infra.settings import Settings
    from tests.statistics_data import random_cases, seed

    await asyncio.to_thread(upgrade, db_url)
    container = build_container(Settings(database_url=db_url))
    try:
        rng = random.Random(18)
        started = time.perf_counter()
        per_year = cases // 3
        for fy in (FY - 1, FY, FY + 1):
            # Seeded in slices so memory stays flat; owners repeat within a slice (re-consultations).
            for k in range(0, per_year, 50_000):
                await seed(container, random_cases(min(50_000, per_year - k), fy, rng))
        async with container.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        print(f"seeded {cases} consultations in {time.perf_counter() - started:.0f} s", flush=True)
        if not raw:
            from infra.db.statistics_summary import StatisticsSummaries

            summaries = StatisticsSummaries(container.sessions, container.knowledge, container.clock)
            t0 = time.perf_counter()
            years = await summaries.refresh()
            print(f"summaries recounted ({years}) in {time.perf_counter() - t0:.1f} s", flush=True)
            t0 = time.perf_counter()
            assert await summaries.refresh() == []
            print(f"refresh with nothing changed (fingerprints only): {time.perf_counter() - t0:.2f} s")

        import uuid

        actor = Actor(Client.staff, user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.supervisor)
        assert container.statistics is not None
        calls: list[tuple[str, dict[str, object]]] = [
            (code, {"only": code}) for code in (*DIMENSION_CODES, TIMING_CODE)
        ]
        calls.append(("all tables (GET /v1/statistics)", {}))
        calls.append(("all tables, suppressed", {"suppress": True}))
        await container.statistics.statistics(actor, FY, "month")  # warm-up: connections, caches
        worst_ok = True
        print(f"{'call':36} {'median ms':>10} {'max ms':>10}  ≤ {BUDGET_MS:.0f} ms")
        for name, kwargs in calls:
            timings = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                await container.statistics.statistics(actor, FY, "month", **kwargs)  # type: ignore[arg-type]
                timings.append((time.perf_counter() - t0) * 1000)
            median = statistics.median(timings)
            ok = median <= BUDGET_MS
            worst_ok &= ok
            print(f"{name:36} {median:10.1f} {max(timings):10.1f}  {'yes' if ok else 'NO'}", flush=True)
        return 0 if worst_ok else 1
    finally:
        await container.close()


async def pg_admin(admin_url: str, sql: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(sql)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--raw", action="store_true", help="measure the SQL over the raw rows instead")
    args = parser.parse_args()
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(run(f"sqlite+aiosqlite:///{tmp}/bench.db", args.cases, args.repeat, args.raw))
    name = f"bench_stats_{secrets.token_hex(4)}"
    base = args.pg_admin_url.rsplit("/", 1)[0]
    asyncio.run(pg_admin(args.pg_admin_url, f"CREATE DATABASE {name}"))
    try:
        return asyncio.run(run(f"{base}/{name}", args.cases, args.repeat, args.raw))
    finally:
        asyncio.run(pg_admin(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


if __name__ == "__main__":
    raise SystemExit(main())
