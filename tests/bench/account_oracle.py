"""Does the answer time of an anonymous account route tell whether an address has an account?

Run:  python tests/bench/account_oracle.py [--requests 200] [--db sqlite|postgres] [--pg-admin-url URL]

Starts the real server (`madoguchi serve`, one process, production argon2 cost, no in-process worker) on a
loopback port against a fresh database holding verified accounts, then sends, one at a time over one
keep-alive connection, interleaved in a shuffled order, requests for known addresses and for unknown ones:

- reset:    POST /v1/auth/password-reset {email}
- register: POST /v1/auth/register {email, password}
- login:    POST /v1/auth/token (password grant, wrong password)

Every request names a different address, so no per-account or per-recipient limit is reached (the limits per
client address are raised for the run). For each route it prints the median answer time of both classes and
the accuracy of the attacker's single-request classifier of this kind: split at the median of all timings,
"known" on the side where the known median lies. 50 % means the timing says nothing; aim ≤ 55 %. Because
the side is chosen after the fact, pure noise scores a little above 50 % (about 53 % on average at 200
requests, 57 % at its 95th percentile); the p column says how often randomly relabelled timings do as well.
Not a pytest test (it takes about a minute and measures time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing the package

import httpx  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef-0123456789"
PASSWORD = "灯台の下で潮の満ち引きを数えた"
WRONG = "違うパスワードをためしてみる"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def make_accounts(url: str, count: int) -> list[str]:
    from domain.actors import Role
    from infra.container import build_container
    from infra.settings import Settings

    c = build_container(Settings(database_url=url, secret_key=SECRET))
    emails = [f"known-{i}-{uuid.uuid4().hex[:6]}@example.jp" for i in range(count)]
    try:
        for email in emails:
            await c.accounts.create_user_directly(email=email, role=Role.consulter, password=PASSWORD)
    finally:
        await c.close()
    return emails


def start_server(url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MADOGUCHI_ENV": "development",
        "MADOGUCHI_DATABASE_URL": url,
        "MADOGUCHI_SECRET_KEY": SECRET,
        "MADOGUCHI_MAIL_BACKEND": "file",
        "MADOGUCHI_MAIL_FILE_DIR": str(tmp / "mail"),
        "MADOGUCHI_WORKER_IN_PROCESS": "false",
        "MADOGUCHI_SIGNUP_PER_HOUR": "1000000",
        "MADOGUCHI_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000",
        "MADOGUCHI_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit((process.stderr.read() if process.stderr else b"").decode()[-2000:])
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("server did not become ready")


def request(http: httpx.Client, flow: str, email: str) -> httpx.Response:
    if flow == "reset":
        return http.post("/v1/auth/password-reset", json={"email": email})
    if flow == "register":
        return http.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    return http.post("/v1/auth/token", data={"username": email, "password": WRONG})


def accuracy(known: list[float], unknown: list[float]) -> float:
    """Median split: the best an attacker does with one request and a threshold learnt beforehand."""
    threshold = statistics.median(known + unknown)
    known_slower = statistics.median(known) > statistics.median(unknown)
    right = sum((t > threshold) == known_slower for t in known)
    right += sum((t > threshold) != known_slower for t in unknown)
    return right / (len(known) + len(unknown))


def p_value(known: list[float], unknown: list[float], rng: random.Random, rounds: int = 2000) -> float:
    """How often labels shuffled at random (no leak by construction) classify at least as well: the
    chance that the accuracy seen is noise. Below 0.05 the timing very likely tells something."""
    observed = accuracy(known, unknown)
    pooled = known + unknown
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        hits += accuracy(pooled[: len(known)], pooled[len(known) :]) >= observed
    return hits / rounds


def measure(http: httpx.Client, flow: str, known: list[str], count: int, rng: random.Random) -> dict:
    half = count // 2
    order = [("known", e) for e in known[:half]]
    order += [("unknown", f"nobody-{flow}-{i}-{uuid.uuid4().hex[:6]}@example.jp") for i in range(half)]
    rng.shuffle(order)
    for i in range(10):  # warm the connection, the code paths and the database's caches
        request(http, flow, f"warm-{flow}-{i}-{uuid.uuid4().hex[:6]}@example.jp")
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    answers: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
    for label, email in order:
        started = time.perf_counter()
        response = request(http, flow, email)
        times[label].append((time.perf_counter() - started) * 1000)
        body = {k: v for k, v in response.json().items() if k != "request_id"}
        answers[label].add((response.status_code, str(sorted(body.items()))))
    return {
        "flow": flow,
        "n": len(order),
        "known_ms": statistics.median(times["known"]),
        "unknown_ms": statistics.median(times["unknown"]),
        "accuracy": accuracy(times["known"], times["unknown"]),
        "p": p_value(times["known"], times["unknown"], rng),
        "same_answer": answers["known"] == answers["unknown"] and len(answers["known"]) == 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="per route, half known, half unknown")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    from infra.db.migrate import upgrade

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="madoguchi-oracle-") as tmp_name:
        tmp = Path(tmp_name)
        name = f"madoguchi_oracle_{uuid.uuid4().hex[:10]}"
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp / 'oracle.db'}"
        else:
            asyncio.run(pg_admin(args.pg_admin_url, f'CREATE DATABASE "{name}"'))
            url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            upgrade(url)
            known = asyncio.run(make_accounts(url, args.requests // 2 * 3))
            port = free_port()
            server = start_server(url, port, tmp)
            try:
                rows = []
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as http:
                    for i, flow in enumerate(("reset", "register", "login")):
                        share = known[i * (args.requests // 2) : (i + 1) * (args.requests // 2)]
                        rows.append(measure(http, flow, share, args.requests, rng))
            finally:
                server.terminate()
                server.wait(timeout=15)
        finally:
            if args.db == "postgres":
                asyncio.run(pg_admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"database: {args.db}; {args.requests} interleaved requests per route (half known addresses)")
    print(f"{'route':<10} {'known p50 ms':>13} {'unknown p50 ms':>15} {'accuracy':>9} {'p':>6}  same answer")
    for r in rows:
        print(
            f"{r['flow']:<10} {r['known_ms']:>13.2f} {r['unknown_ms']:>15.2f} {r['accuracy']:>8.1%} "
            f"{r['p']:>6.2f}  {'yes' if r['same_answer'] else 'NO'}"
        )
    print("accuracy: median split, one request; p: share of random relabellings doing as well (noise)")


if __name__ == "__main__":
    main()
