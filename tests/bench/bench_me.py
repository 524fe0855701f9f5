"""Benchmark authenticated `GET /v1/me`: the real app against the framework ceiling and "the common way".

Run (needs PostgreSQL and `wrk`, loopback only, < 3 minutes, cleans up after itself):

    .venv/bin/python tests/bench/bench_me.py [--workers N] [--duration 10] [--profile /tmp/me.txt]

One run:
  1. creates a fresh database bench_<random> on --pg (default postgresql://postgres@127.0.0.1:5432), migrates
     it and creates a verified consulter through the container's AccountService;
  2. starts three uvicorn servers on free loopback ports, all with the same flags (--workers N, no access log,
     uvloop/httptools when installed):
       real  `api.main:app_factory` (what `madoguchi serve` runs), token from POST /v1/auth/token
       bare  tests/bench/bare_app.py: constant JSON from an `async def` endpoint (framework ceiling)
       sync  tests/bench/sync_app.py: sync `def` + SQLModel Session + psycopg, as in the full-stack template
  3. per target: a warm-up, then `wrk` for --duration seconds (--threads, --connections) -> saturated req/s,
     p50, p99;
  4. the real app again at half its saturating rate with an open-loop fixed-rate loader (wrk2 or hey when on PATH,
     else an httpx.AsyncClient loop; latency counted from each request's scheduled start, so a stall is not
     hidden by coordinated omission); the bare app at the same rate shows the loader's own floor;
  5. prints the table and the targets (real >= 2 x sync, real >= 0.15 x bare, p99 < 50 ms at half load), then
     stops the servers and drops the database (also on errors, Ctrl-C or the global deadline).

Not a pytest module (no test functions; the name does not start with test_).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # run from anywhere; the project is normally installed editable anyway


SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"  # fixed, >= 32 bytes
DEADLINE_SECONDS = 175  # hard stop for the whole run (the brief: < 3 minutes)
LOOPBACK = "127.0.0.1"

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


class Deadline(Exception):
    pass


@dataclass
class Target:
    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int = 0
    non2xx: int = 0
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


# -- plumbing -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_")}
    env.update(extra)
    return env


def _where(port: int, workers: int) -> list[str]:
    return ["--host", LOOPBACK, "--port", str(port), "--workers", str(workers)]


def madoguchi_argv(port: int, workers: int) -> list[str]:
    """madoguchi served as in production (`madoguchi serve`: its HTTP protocol, event loop, metrics)."""
    return [str(Path(sys.executable).with_name("madoguchi")), "serve", *_where(port, workers)]


def uvicorn_argv(app: str, port: int, workers: int, *, app_dir: Path | None = None) -> list[str]:
    """A reference app under uvicorn, served as `madoguchi serve` serves madoguchi (its event loop, TCP_NODELAY,
    a listening socket per worker): tests/bench/serve_reference.py."""
    argv = [sys.executable, str(BENCH / "serve_reference.py"), app, *_where(port, workers)]
    if app_dir is not None:
        argv += ["--app-dir", str(app_dir)]
    return argv


def start(target: Target, logdir: Path) -> None:
    target.log = logdir / f"{target.name}.log"
    out = target.log.open("wb")
    target.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        target.argv, env=target.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    out.close()


def stop(target: Target) -> None:
    proc = target.proc
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created: uvicorn and its worker processes
        proc.wait(timeout=8)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass


def wait_ready(target: Target, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    url = f"http://{LOOPBACK}:{target.port}/healthz"
    while time.monotonic() < deadline:
        if target.proc is not None and target.proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = target.log.read_text(errors="replace")[-3000:] if target.log else ""
    raise RuntimeError(f"{target.name} did not become ready on port {target.port}:\n{tail}")


# -- database -----------------------------------------------------------------------------------------


async def create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_consulter(db_url: str, email: str, password: str) -> None:
    from domain.actors import Role
    from infra.container import build_container
    from infra.settings import Settings

    settings = Settings(
        database_url=db_url, env="development", secret_key=SECRET_KEY, worker_in_process=False
    )
    c = build_container(settings)
    try:
        await c.accounts.create_user_directly(
            email=email, role=Role.consulter, password=password, display_name="bench"
        )
    finally:
        await c.close()


# -- load ---------------------------------------------------------------------------------------------


def run_wrk(port: int, lua: Path, *, seconds: float, threads: int, connections: int) -> LoadResult:
    argv = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        f"http://{LOOPBACK}:{port}/v1/me",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 20, check=False)  # noqa: S603
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed (rc={out.returncode}):\n{out.stdout}\n{out.stderr}")
    return parse_wrk(out.stdout)


def parse_wrk(stdout: str, note: str = "") -> LoadResult:
    match = re.search(r"^BENCHRESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", stdout, re.M)
    if not match:
        raise RuntimeError(f"no result from the load generator:\n{stdout}")
    requests, duration_us, p50, p99, mx, errors, non2xx = (int(g) for g in match.groups())
    return LoadResult(
        rps=requests / (duration_us / 1e6),
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
        max_ms=mx / 1000,
        requests=requests,
        errors=errors,
        non2xx=non2xx,
        note=note,
    )


def run_wrk2(
    port: int, lua: Path, *, rate: float, seconds: float, threads: int, connections: int
) -> LoadResult:
    argv = [
        "wrk2",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "-R",
        str(max(1, round(rate))),
        "--timeout",
        "5s",
        "-s",
        str(lua),
        f"http://{LOOPBACK}:{port}/v1/me",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 20, check=False)  # noqa: S603
    if out.returncode != 0:
        raise RuntimeError(f"wrk2 failed (rc={out.returncode}):\n{out.stdout}\n{out.stderr}")
    return parse_wrk(out.stdout, note="wrk2")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def fixed_rate(
    port: int, token: str, *, rate: float, seconds: float, connections: int, max_in_flight: int = 512
) -> LoadResult:
    """Open loop: request i is due at t0 + i/rate whatever happened to the others. Latency runs from the due
    time (includes any wait for a free connection or a late loader), so a server stall shows in the tail."""
    import httpx

    url = f"http://{LOOPBACK}:{port}/v1/me"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    service: list[float] = []
    errors = non2xx = skipped = 0
    lag_max = 0.0
    in_flight = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(5.0, pool=5.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers, trust_env=False) as client:
        # open the connections before the clock starts
        await asyncio.gather(*(client.get(url) for _ in range(min(connections, 32))), return_exceptions=True)

        async def one(due: float) -> None:
            nonlocal errors, non2xx, in_flight
            in_flight += 1
            try:
                sent = time.perf_counter()
                response = await client.get(url)
                done = time.perf_counter()
                if response.status_code != 200:
                    non2xx += 1
                latencies.append(done - due)
                service.append(done - sent)
            except httpx.HTTPError:
                errors += 1
            finally:
                in_flight -= 1

        tasks: set[asyncio.Task[None]] = set()
        t0 = time.perf_counter() + 0.05
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_max = max(lag_max, -delay)
            if in_flight >= max_in_flight:
                skipped += 1  # overloaded: counted, not queued without bound
                continue
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        elapsed = time.perf_counter() - t0
    latencies.sort()
    service.sort()
    return LoadResult(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] * 1000 if latencies else math.nan),
        requests=len(latencies),
        errors=errors + skipped,
        non2xx=non2xx,
        note="httpx open loop",
        extra={
            "service_p99_ms": percentile(service, 99) * 1000,
            "loader_lag_max_ms": lag_max * 1000,
            "skipped": float(skipped),
        },
    )


def run_hey(port: int, token: str, *, rate: float, seconds: float, connections: int) -> LoadResult:
    """Fixed overall rate from hey (Debian package `hey`). One hey with many workers ticks them all at the
    same instant, which turns a steady rate into bursts; so run several single-worker hey processes, each
    capped at rate/k, started a fraction of the period apart so their requests interleave evenly. Their CSV
    output gives every request's latency, so the percentiles are exact."""
    k = max(1, min(connections, 8))
    per = rate / k
    argv = [
        "hey",
        "-z",
        f"{max(1, round(seconds))}s",
        "-c",
        "1",
        "-q",
        f"{per:.3f}",
        "-t",
        "5",
        "-o",
        "csv",
        "-H",
        f"Authorization: Bearer {token}",
        f"http://{LOOPBACK}:{port}/v1/me",
    ]
    procs = []
    for _ in range(k):
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # noqa: S603
        time.sleep(1 / per / k)
    latencies, non2xx = [], 0
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=seconds + 20)
        if proc.returncode != 0:
            raise RuntimeError(f"hey failed (rc={proc.returncode}):\n{stderr}")
        for line in stdout.splitlines()[1:]:
            fields = line.split(",")
            if len(fields) >= 7:
                latencies.append(float(fields[0]))
                non2xx += fields[6].strip() != "200"
    latencies.sort()
    return LoadResult(
        rps=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] * 1000 if latencies else math.nan),
        requests=len(latencies),
        errors=0,
        non2xx=non2xx,
        note=f"hey, {k} staggered single-worker loaders",
    )


def half_load(
    port: int, token: str, lua: Path, *, rate: float, seconds: float, threads: int, connections: int
) -> LoadResult:
    if shutil.which("wrk2"):
        return run_wrk2(port, lua, rate=rate, seconds=seconds, threads=threads, connections=connections)
    if shutil.which("hey"):
        return run_hey(port, token, rate=rate, seconds=seconds, connections=connections)
    try:
        import uvloop

        return uvloop.run(fixed_rate(port, token, rate=rate, seconds=seconds, connections=connections))
    except ImportError:
        return asyncio.run(fixed_rate(port, token, rate=rate, seconds=seconds, connections=connections))


# -- the run ------------------------------------------------------------------------------------------


def check_same_body(real: dict[str, object], sync: dict[str, object]) -> None:
    keys = ("id", "email", "display_name", "locale", "role", "email_verified", "totp_enabled")
    diff = {k: (real.get(k), sync.get(k)) for k in keys if real.get(k) != sync.get(k)}
    if diff:
        raise RuntimeError(f"sync app answers differently from the real app: {diff}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL, no database name (bench_* is created, then dropped)",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes per server")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per target")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--half-connections", type=int, default=32, help="connections for the fixed-rate run")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the real app during its saturated run; collapsed stacks to this file",
    )
    args = parser.parse_args()

    if not shutil.which("wrk"):
        print(
            "bench_me: `wrk` is not installed. Install it (Debian/Ubuntu: "
            "apt-get update && apt-get install -y wrk) and run again.",
            file=sys.stderr,
        )
        return 2
    if args.profile and not shutil.which("py-spy") and not (Path(sys.executable).parent / "py-spy").exists():
        print("bench_me: --profile needs py-spy (pip install py-spy).", file=sys.stderr)
        return 2
    for host in re.findall(r"@([^:/]+)", args.pg) or [LOOPBACK]:
        if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
            print(f"bench_me: only loopback PostgreSQL is allowed, not {host}", file=sys.stderr)
            return 2

    def on_alarm(_signum: int, _frame: object) -> None:
        raise Deadline(f"global deadline of {DEADLINE_SECONDS}s reached")

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(DEADLINE_SECONDS)

    started = time.monotonic()
    db_name = f"bench_{secrets.token_hex(6)}"
    admin_url = f"{args.pg.rstrip('/')}/postgres"
    db_url = f"{args.pg.rstrip('/')}/{db_name}"
    email = f"bench-{secrets.token_hex(4)}@example.jp"
    password = "Bench-" + secrets.token_urlsafe(18)
    targets: list[Target] = []
    db_created = False
    tmp = Path(tempfile.mkdtemp(prefix="bench_me_"))
    try:
        asyncio.run(create_database(admin_url, db_name))
        db_created = True
        from infra.db.migrate import upgrade

        upgrade(db_url)
        asyncio.run(create_consulter(db_url, email, password))
        print(f"database {db_name} migrated, consulter created ({time.monotonic() - started:.1f}s)")

        app_env = clean_env(
            MADOGUCHI_DATABASE_URL=db_url,
            MADOGUCHI_ENV="development",
            MADOGUCHI_WORKER_IN_PROCESS="false",
            MADOGUCHI_SECRET_KEY=SECRET_KEY,
        )
        ports = {name: free_port() for name in ("real", "bare", "sync")}
        targets = [
            Target(
                "real",
                ports["real"],
                madoguchi_argv(ports["real"], args.workers),
                app_env,
            ),
            Target(
                "bare",
                ports["bare"],
                uvicorn_argv("bare_app:app", ports["bare"], args.workers, app_dir=BENCH),
                clean_env(),
            ),
            Target(
                "sync",
                ports["sync"],
                uvicorn_argv("sync_app:app", ports["sync"], args.workers, app_dir=BENCH),
                app_env,
            ),
        ]
        for t in targets:
            start(t, tmp)
        for t in targets:
            wait_ready(t)

        import httpx

        base = f"http://{LOOPBACK}:{ports['real']}"
        form = {"username": email, "password": password}
        answer = httpx.post(f"{base}/v1/auth/token", data=form, timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"token request failed: {answer.status_code} {answer.text}")
        token = answer.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        bodies = {}
        for t in targets:
            r = httpx.get(f"http://{LOOPBACK}:{t.port}/v1/me", headers=auth, timeout=10)
            if r.status_code != 200:
                raise RuntimeError(f"{t.name} GET /v1/me answered {r.status_code}: {r.text[:300]}")
            bodies[t.name] = r.json()
        check_same_body(bodies["real"], bodies["sync"])
        print(f"servers up, token obtained, bodies checked ({time.monotonic() - started:.1f}s)")

        lua = tmp / "auth.lua"
        lua.write_text(WRK_LUA.format(token=token))
        load = {"threads": args.threads, "connections": args.connections}
        half_conn = {"threads": args.threads, "connections": args.half_connections}
        results: dict[str, LoadResult] = {}
        rate = 0.0
        half_real = floor = None
        for t in targets:  # real first: its saturating rate sets the fixed rate for the half-load runs
            run_wrk(t.port, lua, seconds=args.warmup, **load)
            profiler = None
            if args.profile and t.name == "real":
                assert t.proc is not None
                spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                profiler = subprocess.Popen(  # noqa: S603
                    [
                        spy,
                        "record",
                        "--pid",
                        str(t.proc.pid),
                        "--subprocesses",
                        "--duration",
                        str(max(1, round(args.duration) - 1)),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        str(args.profile),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                results[t.name] = run_wrk(t.port, lua, seconds=args.duration, **load)
            finally:
                if profiler is not None:
                    try:
                        profiler.wait(timeout=args.duration + 15)
                    except subprocess.TimeoutExpired:
                        profiler.kill()
            r = results[t.name]
            if r.requests < args.duration * 10:
                raise RuntimeError(
                    f"{t.name} stalled under load ({r.requests} responses in "
                    f"{args.duration:.0f}s); see its log {t.log}"
                )
            print(
                f"  {t.name:4} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
                f"  (errors {r.errors}, non-2xx {r.non2xx})"
            )
            if t.name == "real":
                rate = r.rps / 2
                half_real = half_load(t.port, token, lua, rate=rate, seconds=args.duration, **half_conn)
            elif t.name == "bare":
                floor = half_load(t.port, token, lua, rate=rate, seconds=min(args.duration, 5), **half_conn)
            stop(t)  # one server at a time: frees its CPU and its database connections for the next

        real, bare, sync = results["real"], results["bare"], results["sync"]
        assert half_real is not None and floor is not None
        print()
        print(
            f"GET /v1/me, uvicorn --workers {args.workers}, wrk -t{args.threads} -c{args.connections} "
            f"-d{round(args.duration)}s; {os.cpu_count()} CPUs shared by the servers, PostgreSQL and "
            "the load generator"
        )
        print(f"{'target':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for name, label in (
            ("real", "real (api.main)"),
            ("sync", "sync (template style)"),
            ("bare", "bare (framework ceiling)"),
        ):
            r = results[name]
            print(f"{label:<28}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors + r.non2xx:>8}")
        half_rows = (
            (f"real @ {rate:.0f} req/s (half)", half_real),
            (f"bare @ {rate:.0f} (loader floor)", floor),
        )
        for label, r in half_rows:
            print(
                f"{label:<28}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors + r.non2xx:>8}"
                f"   [{r.note}"
                + (
                    f", service p99 {r.extra['service_p99_ms']:.2f} ms, loader lag max "
                    f"{r.extra['loader_lag_max_ms']:.1f} ms"
                    if r.extra
                    else ""
                )
                + "]"
            )
        ratio_sync = real.rps / sync.rps
        ratio_bare = real.rps / bare.rps
        print()
        checks = [
            (f"real/sync = {ratio_sync:.2f}", "≥ 2", ratio_sync >= 2),
            (f"real/bare = {ratio_bare:.2f}", "≥ 0.15", ratio_bare >= 0.15),
            (f"real p99 at half load = {half_real.p99_ms:.1f} ms", "< 50 ms", half_real.p99_ms < 50),
        ]
        for text, goal, ok in checks:
            print(f"{'PASS' if ok else 'MISS'}  {text}  (target {goal})")
        print(f"total {time.monotonic() - started:.0f}s")
        return 0 if all(ok for *_, ok in checks) else 1
    except Deadline as exc:
        print(f"bench_me: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("bench_me: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        for t in targets:
            stop(t)
        if db_created:
            try:
                asyncio.run(drop_database(admin_url, db_name))
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning up
                print(f"bench_me: could not drop {db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
