"""The staff queue and the consultation reads in one process, against PostgreSQL: this process's CPU per request.

    .venv/bin/python tests/bench/profile_reads.py [--cases 2000] [--requests 300] [--routes queue_first,...]
        [--keep-db NAME]      # reuse (or create and keep) a seeded database: before/after runs on the same data
        [--statements]        # then each route's SQL statements per request, as tests/bench/run.py counts them
        [--calls]             # then each route's Python function calls per request (cProfile's count)
    .venv/bin/py-spy record -r 200 -f raw -o /tmp/reads.txt -- .venv/bin/python tests/bench/profile_reads.py

The data is tests/bench/run.py's (its people, its seed with case keys and sealed texts, its route paths); the
requests go one after another through httpx.ASGITransport (no HTTP server, no network), so the figure is the
app's own CPU per request (time.process_time of this process; PostgreSQL's not counted) and its wall time.
On a shared machine the CPU figure drifts far less than a wrk req/s, yet on this VM it still drifts by a
third between runs; `--calls` counts the function calls a request makes (the same count every run, client
side included: compare routes or commits, not absolute figures), which tells a change that removes work from
noise. Not a pytest module.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parents[1]))

import bench_me as bm  # noqa: E402
import run as full  # noqa: E402


async def prepare(db_url: str, cases: int) -> dict[str, Any]:
    people = await full.create_people(db_url, 20, 10)
    ctx = await full.seed(db_url, cases, people)
    ctx["deep"] = dict(ctx["deep"])  # a plain dict: the state is kept with --keep-db
    return {"people": people, "ctx": ctx}


async def measure(db_url: str, state: dict[str, Any], args: argparse.Namespace) -> None:
    import httpx

    from api.main import create_app
    from infra.container import build_container

    people, ctx = state["people"], state["ctx"]
    emails = ["bench-consulter@example.jp", "bench-consultant@example.jp", "bench-supervisor@example.jp"]
    tokens = dict(
        zip(
            ("consulter", "consultant", "supervisor"),
            await full.sign_in(db_url, emails, people["password"]),
            strict=True,
        )
    )
    gets = full.routes(ctx, people)
    if args.routes:
        gets = {k: v for k, v in gets.items() if k in args.routes.split(",")}
    logging.disable(logging.INFO)
    c = build_container(full._settings(db_url))
    try:
        transport = httpx.ASGITransport(app=create_app(container=c))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
            for name, (who, path) in gets.items():
                headers = {"Authorization": f"Bearer {tokens[who]}"}
                for _ in range(20):  # warm caches
                    r = await client.get(path, headers=headers)
                    if r.status_code != 200:
                        raise RuntimeError(f"{name}: {r.status_code} {r.text[:300]}")
                started, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.requests):
                    await client.get(path, headers=headers)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                items = len(r.json().get("items", [])) if "items" in r.json() else 1
                print(
                    f"  {name:<22} CPU {cpu * 1000 / args.requests:6.2f} ms/request   wall "
                    f"{wall * 1000 / args.requests:6.2f} ms   ({items} items, {len(r.content)} bytes)",
                    flush=True,
                )
                if args.calls:
                    profile = cProfile.Profile()
                    profile.enable()
                    for _ in range(args.requests):
                        await client.get(path, headers=headers)
                    profile.disable()
                    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]  # not in typeshed
                    print(f"  {name:<22} {calls / args.requests:.0f} function calls per request", flush=True)
    finally:
        await c.close()
    if args.statements:  # after the timings: the count wraps asyncpg's methods for the rest of the process
        calls = {
            name: ("GET", path, {"Authorization": f"Bearer {tokens[who]}"}, None)
            for name, (who, path) in gets.items()
        }
        for name, count in (await full.statements(db_url, {}, calls)).items():
            print(
                f"  {name:<22} {count} SQL statements per request (BEGIN/COMMIT and the session lookup counted)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--routes", default=None, help="comma-separated subset of the route names")
    parser.add_argument("--keep-db", default=None, help="a database name to reuse, or to create and keep")
    parser.add_argument("--statements", action="store_true", help="also count each route's SQL statements")
    parser.add_argument("--calls", action="store_true", help="also count each route's function calls")
    args = parser.parse_args()
    admin_url = f"{args.pg.rstrip('/')}/postgres"
    name = args.keep_db or f"bench_{secrets.token_hex(6)}"
    db_url = f"{args.pg.rstrip('/')}/{name}"
    state_file = Path(tempfile.gettempdir()) / f"{name}.state.pickle"
    created = False
    try:
        if args.keep_db and state_file.exists():
            import pickle

            state = pickle.loads(state_file.read_bytes())  # noqa: S301 - our own file
        else:
            asyncio.run(bm.create_database(admin_url, name))
            created = not args.keep_db
            from infra.db.migrate import upgrade

            upgrade(db_url)
            state = asyncio.run(prepare(db_url, args.cases))
            if args.keep_db:
                import pickle

                state_file.write_bytes(pickle.dumps(state))
        asyncio.run(measure(db_url, state, args))
        return 0
    finally:
        if created:
            asyncio.run(bm.drop_database(admin_url, name))


if __name__ == "__main__":
    sys.exit(main())
