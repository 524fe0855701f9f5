"""Plans and timings at the seeded size, on a database `run.py --seed-only` kept (issue 12 items 2 and 5).

    .venv/bin/python tests/bench/probe_size.py postgresql+asyncpg://postgres@127.0.0.1:5432/bench_xxx
        [--refresh] [--explain] [--repeat 5]

Through the real app in process (httpx over ASGI, the container run.py's servers get): the supervisor overview,
the council statistics of a closed month, the centre's statistics of fiscal years 2025 and 2026 (`--refresh`
first recounts their summaries with the worker's own StatisticsSummaries, as its pass does every few minutes),
and the staff queue's first and deep keyset page with and without each filter. Each call is made once to warm
the plans, then --repeat times; the best and the median are printed. `--explain` prints EXPLAIN (ANALYZE,
BUFFERS) of every statement the queue pages and the overview send (captured from the engine, run again with
their parameters on a plain connection). Not a pytest module.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, os.environ.get("PROBE_ROOT", str(BENCH.parents[1])))  # another checkout: its code

from bench_hotpath import cursor_for  # noqa: E402
from run import MONTH, _dsn, _settings  # noqa: E402

if os.environ.get("PROBE_ROOT"):  # run.py put this checkout first and imported some of its code: forget it
    sys.path.insert(0, os.environ["PROBE_ROOT"])
    for name in [m for m in sys.modules if m.split(".")[0] in ("api", "domain", "infra")]:
        del sys.modules[name]

PASSWORD = "Probe-supervisor-0123456789"


async def main(args: argparse.Namespace) -> None:  # noqa: C901, PLR0915 - one linear probe
    import asyncpg
    import httpx
    from sqlalchemy import event

    from api.main import create_app
    from domain.actors import Role
    from infra.container import build_container

    logging.disable(logging.INFO)
    c = build_container(_settings(args.db))
    raw = await asyncpg.connect(_dsn(args.db))
    try:
        email = "probe-supervisor@example.jp"
        if not await raw.fetchval("SELECT 1 FROM app_user WHERE email = $1", email):
            await c.accounts.create_user_directly(
                email=email, role=Role.supervisor, password=PASSWORD, display_name="probe"
            )
        token = (await c.accounts.login(email, PASSWORD, totp_code=None, address="10.8.0.1")).access_token
        consultant = await raw.fetchval("SELECT id FROM app_user WHERE email = 'bench-consultant@example.jp'")
        cases = await raw.fetchval("SELECT count(*) FROM consultation")
        deep = await raw.fetchrow(
            "SELECT created_at, id FROM consultation ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
            int(cases * 0.7),
        )
        import infra.db.quality

        print(f"{cases} consultations; code from {Path(infra.db.quality.__file__).parents[2]}", flush=True)
        if args.refresh:
            t = time.perf_counter()
            years = await c.worker.statistics.refresh()  # type: ignore[union-attr]
            print(f"worker's statistics recount: fiscal years {years} in {time.perf_counter() - t:.1f}s")
        seen: list[tuple[str, Any]] = []
        event.listen(c.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
        took: list[float] = []
        event.listen(
            c.engine.sync_engine, "before_cursor_execute", lambda *a: took.append(-time.perf_counter())
        )
        event.listen(
            c.engine.sync_engine,
            "after_cursor_execute",
            lambda *a: took.append(took.pop() + time.perf_counter()),
        )
        routes: dict[str, str] = {
            "supervision_overview": f"/v1/supervision/overview?from={MONTH[0]}&to={MONTH[1]}",
            "council_statistics": f"/v1/council/statistics?from={MONTH[0]}&to={MONTH[1]}",
            "statistics_fy2025": "/v1/statistics?fiscal_year=2025&granularity=month",
            "statistics_fy2026": "/v1/statistics?fiscal_year=2026&granularity=month",
        }
        first = "/v1/consultations?limit=50"
        deep_q = f"/v1/consultations?limit=50&cursor={cursor_for(deep)}"
        for label, q in (
            ("", ""),
            ("_status", "&status=submitted"),
            ("_category", "&category=RIGHTS.INSULT"),
            ("_urgent", "&urgent=true"),
            ("_assignee", f"&assignee={consultant}"),
        ):
            routes[f"queue_first{label}"] = first + q
            routes[f"queue_deep{label}"] = deep_q + q
        only = set(args.only.split(",")) if args.only else None
        transport = httpx.ASGITransport(app=create_app(container=c))
        async with httpx.AsyncClient(transport=transport, base_url="http://probe", timeout=300) as client:
            for name, path in routes.items():
                if only and name not in only:
                    continue
                headers = {"Authorization": f"Bearer {token}"}
                r = await client.get(path.replace("+", "%2B"), headers=headers)
                times = []
                for _ in range(args.repeat):
                    seen.clear()
                    took.clear()
                    t = time.perf_counter()
                    r = await client.get(path.replace("+", "%2B"), headers=headers)
                    times.append((time.perf_counter() - t) * 1000)
                size = len(r.json().get("items", [])) if name.startswith("queue") else ""
                print(
                    f"{name:<24} {r.status_code} best {min(times):8.1f} ms  median {statistics.median(times):8.1f} ms"
                    f"  {size}  last call: {len(took)} statements, {sum(took) * 1000:.1f} ms in them",
                    flush=True,
                )
                if args.explain:
                    for (sql, _), ms in zip(seen, took, strict=False):
                        print(f"    {ms * 1000:7.1f} ms  {' '.join(sql.split())[:110]}")
                if args.explain and (name.startswith("queue") or name == "supervision_overview"):
                    for sql, params in seen:
                        head = sql.lstrip().split(None, 1)[0].upper()
                        if head != "SELECT" or "consultation" not in sql:
                            continue
                        if name.startswith("queue") and "ORDER BY consultation.created_at DESC" not in sql:
                            continue
                        plan = await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
                        lines = [p[0] for p in plan]
                        print("    " + "\n    ".join(lines), flush=True)
    finally:
        await raw.close()
        await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("db")
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated route names")
    asyncio.run(main(parser.parse_args()))
