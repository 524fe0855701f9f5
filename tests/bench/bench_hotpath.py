"""Benchmark the hot paths of issue 12 against PostgreSQL, in one command:

    .venv/bin/python tests/bench/bench_hotpath.py [--workers 2] [--cases 10000] [--duration 8]
        [--connections 64,256] [--profile staff_read]

One run (loopback only; the database is created, then dropped, also on errors and Ctrl-C):
  1. a fresh database bench_<random>, migrated; a consulter, a consultant and a supervisor created through the
     container; --cases consultations seeded in SQL (generate_series: a category each, 70 % assigned, 3 %
     urgent, one message each), one of them the consulter's and assigned to the consultant;
  2. SQL statements per request for each route, counted in process (the app over ASGI, a cursor counter on
     its engine: session lookup included, BEGIN/ROLLBACK excluded);
  3. the real app (`api.main:app_factory`) under uvicorn --workers N and, per route, `wrk` at each
     --connections value (a warm-up, then --duration seconds): req/s, p50, p99, socket errors and non-2xx
     (a 503 from an exhausted pool is a non-2xx); optionally py-spy over one route (collapsed stacks);
  4. one table. The reference apps of bench_me.py (bare FastAPI, sync template style) are not rerun here.

Not a pytest module. Reuses bench_me.py's plumbing (servers, wrk, database).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parents[1]))

import bench_me as bm  # noqa: E402

DEADLINE_SECONDS = 900

WRK_LUA = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Accept"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCHRESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""

SEED = """
INSERT INTO consultation (id, owner_id, channel, relation, title, narrative, desired_outcomes, platforms,
  status, priority, urgent, urgency_flags, assignee_id, consent_terms_version, consented_at, created_at,
  updated_at, first_answer_due_at, version)
SELECT md5('c' || g)::uuid, '{owner}'::uuid,
       (ARRAY['web','web','web','line','chatbot'])[1 + g % 5], 'unknown',
       '掲示板の書き込み ' || g, '匿名掲示板に悪口を書き込まれています。削除したいです。', '["removal"]', '["x"]',
       (ARRAY['submitted','in_progress','answered','closed','closed','closed','closed','withdrawn'])[1 + (g * 7) % 8],
       CASE WHEN g % 33 = 0 THEN 'urgent' ELSE 'normal' END, g % 33 = 0, '[]',
       CASE WHEN g % 10 < 7 THEN '{assignee}'::uuid END, '2026-11', ts, ts, ts, ts + interval '5 days', 1
FROM (SELECT g, timestamptz '2025-01-01' + (g * interval '63 seconds') AS ts FROM generate_series(1, {n}) g) s;
INSERT INTO consultation_category (consultation_id, category_code, created_at)
SELECT md5('c' || g)::uuid, (ARRAY['RIGHTS.DEFAMATION','RIGHTS.INSULT','RIGHTS.PRIVACY_ID','OTHER.MISC',
  'RIGHTS.PORTRAIT','OTHER.SPAM','RIGHTS.IMPERSONATION'])[1 + (g * 13) % 7],
  timestamptz '2025-01-01' + (g * interval '63 seconds')
FROM generate_series(1, {n}) g;
INSERT INTO message (id, consultation_id, author_id, kind, body, created_at)
SELECT md5('m' || g)::uuid, md5('c' || g)::uuid, '{owner}'::uuid, 'consulter', '追加の情報です。',
       timestamptz '2025-01-01' + (g * interval '63 seconds')
FROM generate_series(1, {n}) g;
ANALYZE;
"""


async def prepare(db_url: str, cases: int) -> dict[str, object]:
    import asyncpg

    from domain.actors import Role
    from infra.container import build_container
    from infra.settings import Settings

    password = "Bench-" + secrets.token_urlsafe(18)
    settings = Settings(
        database_url=db_url, env="development", secret_key=bm.SECRET_KEY, worker_in_process=False
    )
    c = build_container(settings)
    people = {}
    try:
        for role in (Role.consulter, Role.consultant, Role.supervisor):
            email = f"bench-{role.value}-{secrets.token_hex(3)}@example.jp"
            user = await c.accounts.create_user_directly(email=email, role=role, password=password)
            people[role.value] = (user.id, email)
    finally:
        await c.close()
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        # Our own uuids and an int: formatted in, so the seed runs as one script.
        owner, assignee = people["consulter"][0], people["consultant"][0]
        await conn.execute(SEED.format(owner=owner, assignee=assignee, n=int(cases)))
        # the newest case: the consulter's, assigned to the consultant (the seeded ids are md5('c' || g))
        newest = await conn.fetchval("SELECT id FROM consultation ORDER BY created_at DESC, id DESC LIMIT 1")
        await conn.execute(
            "UPDATE consultation SET assignee_id = $1 WHERE id = $2", people["consultant"][0], newest
        )
        deep = await conn.fetchrow(
            "SELECT created_at, id FROM consultation ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
            int(cases * 0.7),
        )
    finally:
        await conn.close()
    return {"people": people, "password": password, "case": str(newest), "deep": deep}


def cursor_for(deep) -> str:  # type: ignore[no-untyped-def]
    from api.pagination import encode_cursor

    return encode_cursor({"c": deep["created_at"].isoformat(), "id": str(deep["id"])})


async def statements_per_route(
    db_url: str, tokens: dict[str, str], routes: dict[str, tuple[str, str]]
) -> dict[str, int]:
    import httpx
    from sqlalchemy import event

    from api.main import create_app
    from infra.container import build_container
    from infra.settings import Settings

    settings = Settings(
        database_url=db_url, env="development", secret_key=bm.SECRET_KEY, worker_in_process=False
    )
    c = build_container(settings)
    seen: list[str] = []
    event.listen(c.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    counts = {}
    try:
        app = create_app(container=c)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, (who, path) in routes.items():
                headers = {"Authorization": f"Bearer {tokens[who]}"}
                await client.get(path, headers=headers)  # warm caches
                seen.clear()
                response = await client.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
                counts[name] = len(seen)
    finally:
        await c.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", default="64,256")
    parser.add_argument("--pool-size", type=int, default=20, help="MADOGUCHI_DATABASE_POOL_SIZE per worker")
    parser.add_argument("--profile", default=None, help="route name to py-spy (collapsed stacks in /tmp)")
    parser.add_argument("--routes", default=None, help="comma-separated subset of the route names")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench_hotpath: needs `wrk` (apt-get install -y wrk)", file=sys.stderr)
        return 2

    def on_alarm(_signum: int, _frame: object) -> None:
        raise bm.Deadline(f"global deadline of {DEADLINE_SECONDS}s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.alarm(DEADLINE_SECONDS)
    started = time.monotonic()
    db_name = f"bench_{secrets.token_hex(6)}"
    admin_url = f"{args.pg.rstrip('/')}/postgres"
    db_url = f"{args.pg.rstrip('/')}/{db_name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench_hotpath_"))
    target: bm.Target | None = None
    created = False
    try:
        asyncio.run(bm.create_database(admin_url, db_name))
        created = True
        from infra.db.migrate import upgrade

        upgrade(db_url)
        ctx = asyncio.run(prepare(db_url, args.cases))
        print(f"{db_name}: {args.cases} consultations seeded ({time.monotonic() - started:.0f}s)")
        env = bm.clean_env(
            MADOGUCHI_DATABASE_URL=db_url,
            MADOGUCHI_ENV="development",
            MADOGUCHI_WORKER_IN_PROCESS="false",
            MADOGUCHI_SECRET_KEY=bm.SECRET_KEY,
            MADOGUCHI_DATABASE_POOL_SIZE=str(args.pool_size),
        )
        port = bm.free_port()
        target = bm.Target("real", port, bm.madoguchi_argv(port, args.workers), env)
        bm.start(target, tmp)
        bm.wait_ready(target, timeout=120)
        import httpx

        tokens = {}
        for role, (_, email) in ctx["people"].items():  # type: ignore[attr-defined]
            r = httpx.post(
                f"http://{bm.LOOPBACK}:{port}/v1/auth/token",
                data={"username": email, "password": ctx["password"]},
                timeout=10,
            )
            r.raise_for_status()
            tokens[role] = r.json()["access_token"]
        case = f"/v1/consultations/{ctx['case']}"
        deep = f"/v1/consultations?limit=50&cursor={cursor_for(ctx['deep'])}"
        routes = {
            "me": ("consulter", "/v1/me"),
            "consulter_read": ("consulter", case),
            "staff_read": ("consultant", case),
            "queue_first": ("supervisor", "/v1/consultations?limit=50"),
            "queue_deep": ("supervisor", deep),
            "queue_deep_status": ("supervisor", deep + "&status=submitted"),
            "queue_deep_category": ("supervisor", deep + "&category=RIGHTS.INSULT"),
            "queue_deep_urgent": ("supervisor", deep + "&urgent=true"),
        }
        if args.routes:
            routes = {k: v for k, v in routes.items() if k in args.routes.split(",")}
        counts = asyncio.run(statements_per_route(db_url, tokens, routes))
        rows = []
        for conns in [int(x) for x in args.connections.split(",")]:
            for name, (who, path) in routes.items():
                lua = tmp / f"{name}.lua"
                lua.write_text(WRK_LUA.format(token=tokens[who]))
                run = _wrk(port, path, lua, args.warmup, args.threads, conns)
                profiler = None
                if args.profile == name and conns == int(args.connections.split(",")[0]):
                    profiler = _py_spy(target, args.duration, tmp / f"{name}.txt")
                result = _wrk(port, path, lua, args.duration, args.threads, conns)
                if profiler is not None:
                    profiler.wait(timeout=args.duration + 20)
                    out = Path(tempfile.gettempdir()) / f"bench_hotpath_{name}.txt"
                    shutil.copy(tmp / f"{name}.txt", out)
                    print(f"py-spy collapsed stacks of {name}: {out}")
                del run
                rows.append((name, conns, result))
                print(
                    f"  {name:<20} c={conns:<4} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f}  "
                    f"p99 {result.p99_ms:7.2f}  errors {result.errors}  non-2xx {result.non2xx}"
                )
        print()
        print(
            f"madoguchi, uvicorn --workers {args.workers}, pool {args.pool_size}/worker, {args.cases} cases, "
            f"wrk -t{args.threads} -d{round(args.duration)}s, {os.cpu_count()} CPUs shared with PostgreSQL and wrk"
        )
        print(
            f"{'route':<22}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'non2xx':>8}{'SQL':>5}"
        )
        for name, conns, r in rows:
            print(
                f"{name:<22}{conns:>6}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{r.non2xx:>8}"
                f"{counts[name]:>5}"
            )
        print(f"total {time.monotonic() - started:.0f}s")
        return 0
    except bm.Deadline as exc:
        print(f"bench_hotpath: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    finally:
        signal.alarm(0)
        if target is not None:
            bm.stop(target)
        if created:
            asyncio.run(bm.drop_database(admin_url, db_name))
        shutil.rmtree(tmp, ignore_errors=True)


def _wrk(port: int, path: str, lua: Path, seconds: float, threads: int, connections: int) -> bm.LoadResult:
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s"]
    argv += ["--timeout", "5s", "-s", str(lua), f"http://{bm.LOOPBACK}:{port}{path}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)  # noqa: S603
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    return bm.parse_wrk(out.stdout)


def _py_spy(target: bm.Target, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    assert target.proc is not None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(target.proc.pid), "--subprocesses", "--duration"]
    argv += [str(max(1, round(seconds) - 1)), "--rate", "200", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(argv + ["--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
