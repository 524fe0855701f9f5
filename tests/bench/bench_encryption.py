"""What per-case encryption costs on the hot paths (issue 17 §1: the consulter's read and intake within 10 % of
unencrypted), in one command:

    .venv/bin/python tests/bench/bench_encryption.py [--reads 2000] [--intakes 300] [--db postgres|sqlite]

The real app runs in this process over ASGI (httpx, no sockets) on a fresh database (PostgreSQL by default,
created and dropped). Every AES-GCM operation of the process goes through `infra.crypto.seal` and
`infra.crypto.unseal` (texts, and the case key's unwrap with the KEK); both are timed for the whole run, so
the script prints, per route, the time a request took and the part of it spent encrypting and decrypting.
That part is what an unencrypted build would save on CPU (the base64 of a sealed text and the slightly
longer rows are not in it: a few microseconds). Intake runs with the per-consulter limit raised for the
run (`consultations_per_hour`), and says so.

Not a pytest module.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parents[1]))

import bench_me as bm  # noqa: E402

BUDGET = 0.10  # the bound: within 10 % of unencrypted


class CryptoTimer:
    """Wraps infra.crypto.seal and unseal (looked up as module globals by every caller but the evidence file
    store, which this benchmark does not exercise) and adds up the time spent inside them."""

    def __init__(self) -> None:
        import infra.crypto as crypto

        self.crypto = crypto
        self.spent = 0.0
        self.calls = 0
        self._originals = (crypto.seal, crypto.unseal)

    def _timed(self, fn: Callable[..., bytes]) -> Callable[..., bytes]:
        def timed(*args: Any, **kwargs: Any) -> bytes:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - began
                self.calls += 1

        return timed

    def __enter__(self) -> CryptoTimer:
        seal, unseal = self._originals
        self.crypto.seal = self._timed(seal)
        self.crypto.unseal = self._timed(unseal)
        return self

    def __exit__(self, *_: object) -> None:
        self.crypto.seal, self.crypto.unseal = self._originals

    def reset(self) -> None:
        self.spent, self.calls = 0.0, 0


async def measure(db_url: str, reads: int, intakes: int) -> list[tuple[str, int, float, float, float]]:
    import httpx

    from api.main import create_app
    from api.schemas.consultations import INTAKE_EXAMPLE
    from domain.actors import Role
    from infra.container import build_container
    from infra.logging import configure_logging
    from infra.settings import Settings

    settings = Settings(
        database_url=db_url,
        secret_key=bm.SECRET_KEY,
        worker_in_process=False,
        consultations_per_hour=intakes + 50,  # raised for the run (warm-up included)
    )
    container = build_container(settings)
    rows = []
    try:
        password = "Bench-" + secrets.token_urlsafe(18)
        email = f"bench-enc-{secrets.token_hex(3)}@example.jp"
        await container.accounts.create_user_directly(email=email, role=Role.consulter, password=password)
        app = create_app(container=container)
        configure_logging("WARNING")  # no request lines on the terminal
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            token = await client.post("/v1/auth/token", data={"username": email, "password": password})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            with CryptoTimer() as timer:
                first = await client.post("/v1/consultations", headers=headers, json=INTAKE_EXAMPLE)
                if first.status_code != 201:
                    raise RuntimeError(f"intake: {first.status_code} {first.text[:300]}")
                case = first.json()["id"]
                for name, count, call in (
                    (
                        "consulter's read",
                        reads,
                        lambda: client.get(f"/v1/consultations/{case}", headers=headers),
                    ),
                    (
                        "intake",
                        intakes,
                        lambda: client.post("/v1/consultations", headers=headers, json=INTAKE_EXAMPLE),
                    ),
                ):
                    for _ in range(min(20, count)):  # warm caches and the pool
                        await call()
                    timer.reset()
                    times = []
                    for _ in range(count):
                        began = time.perf_counter()
                        response = await call()
                        times.append(time.perf_counter() - began)
                        if response.status_code not in (200, 201):
                            raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
                    total = sum(times)
                    rows.append(
                        (
                            name,
                            count,
                            statistics.median(times) * 1000,
                            timer.spent / count * 1000,
                            timer.spent / total,
                        )
                    )
                    print(f"  {name}: {timer.calls / count:.1f} AES-GCM operations per request", flush=True)
    finally:
        await container.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--intakes", type=int, default=300)
    args = parser.parse_args()
    name = f"bench_{secrets.token_hex(6)}"
    admin = f"{args.pg.rstrip('/')}/postgres"
    if args.db == "postgres":
        asyncio.run(bm.create_database(admin, name))
        url = f"{args.pg.rstrip('/').replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    else:
        tmp = Path(tempfile.gettempdir()) / f"{name}.sqlite3"
        url = f"sqlite+aiosqlite:///{tmp}"
    try:
        print(f"per-consulter intake limit raised to {args.intakes + 50}/hour for this run", flush=True)
        from infra.db.migrate import upgrade

        upgrade(url)  # outside the event loop: alembic runs its own
        rows = asyncio.run(measure(url, args.reads, args.intakes))
    finally:
        if args.db == "postgres":
            asyncio.run(bm.drop_database(admin, name))
        else:
            tmp.unlink(missing_ok=True)
    print(
        f"\n| route | requests | p50 ms | AES-GCM ms per request | share of request time | within {BUDGET:.0%} |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    worst = 0.0
    for route, count, p50, crypto_ms, share in rows:
        worst = max(worst, share)
        print(
            f"| {route} | {count} | {p50:.2f} | {crypto_ms:.3f} | {share:.1%} | {'PASS' if share <= BUDGET else 'MISS'} |"
        )
    return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
