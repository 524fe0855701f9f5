"""The counter stores behind rate limits and throttles: the database and Redis keep the same counts by the same
rule, atomically; a Redis that goes away turns into 503 counter_store_unavailable and service comes back by
itself when it returns. The outage is real: a redis-server of this test's own on another loopback port,
stopped and started again (the shared one on 6379 is never touched)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from domain.actors import Role
from domain.errors import Unavailable
from infra.throttle import RedisThrottle, throttle_factory
from tests.conftest import ON_BOTH_COUNTER_STORES, PASSWORD, assert_problem, free_port


@pytest.fixture
def throttle(container):  # type: ignore[no-untyped-def]
    """A throttle on the store of this run (database or Redis), as the container makes them."""
    make = throttle_factory(container.sessions, container.redis, prefix=container.settings.redis_prefix)
    return make(
        limits={"acct": 3, "*": 5}, window=timedelta(minutes=15), windows={"acct": timedelta(hours=1)}
    )


@ON_BOTH_COUNTER_STORES
async def test_counts_limits_and_windows_are_the_same_on_both_stores(throttle, counters, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    counted = [await throttle.count(["addr:192.0.2.1"], now=now) for _ in range(6)]
    assert [c[0].attempts for c in counted] == [1, 2, 3, 4, 5, 6]
    assert counted[4][0].wait == 0 and counted[5][0].wait == 15 * 60  # sixth over the limit of five
    assert (await throttle.count(["acct:x"], now=now))[0].limit == 3  # limits by key prefix

    # Half-way through the window the count goes on and the wait shrinks; after it, the count starts anew.
    later = now + timedelta(minutes=7, seconds=30)
    assert await throttle.attempt(["addr:192.0.2.1"], now=later) == 7 * 60 + 30
    fresh = await throttle.count(["addr:192.0.2.1"], now=now + timedelta(minutes=15))
    assert fresh[0].attempts == 1 and fresh[0].resets_in == 15 * 60
    # A key with a window of its own (an hour) is still counting after fifteen minutes.
    assert (await throttle.count(["acct:x"], now=now + timedelta(minutes=15)))[0].attempts == 2

    # Forgiving takes one back, never below zero; clearing forgets.
    await throttle.forgive(["addr:192.0.2.1", "addr:nobody"])
    await throttle.forgive(["addr:192.0.2.1"])
    assert (await throttle.count(["addr:192.0.2.1"], now=now + timedelta(minutes=16)))[0].attempts == 1
    await throttle.clear(["acct:x"])
    assert (await throttle.count(["acct:x"], now=now + timedelta(minutes=16)))[0].attempts == 1


@ON_BOTH_COUNTER_STORES
async def test_clear_prefix_forgets_only_keys_under_it_even_with_glob_characters(throttle, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    keys = ["mail:[a]*b?@example.jp", "mail:[a]*b?@example.jp:reset", "mail:za*b@example.jp", "mail:other"]
    for key in keys:
        await throttle.count([key], now=now)
    await throttle.clear_prefix("mail:[a]*b?")
    after = await throttle.count(keys, now=now)
    assert [c.attempts for c in after] == [1, 1, 2, 2]


@ON_BOTH_COUNTER_STORES
async def test_parallel_attempts_each_get_their_own_count(throttle, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    results = await asyncio.gather(*(throttle.count(["pair:racing"], now=now) for _ in range(40)))
    assert sorted(r[0].attempts for r in results) == list(range(1, 41))


async def test_redis_keys_carry_the_configured_prefix_and_expire(redis_container, clock) -> None:  # type: ignore[no-untyped-def]
    throttle = redis_container.accounts.throttle
    assert isinstance(throttle, RedisThrottle)
    await throttle.count(["addr:198.51.100.7"], now=clock.now())
    key = redis_container.settings.redis_prefix + "addr:198.51.100.7"
    assert await redis_container.redis.hget(key, "n") == b"1"
    # Housekeeping only: gone from Redis when its window (15 minutes) is over.
    assert 0 < await redis_container.redis.pttl(key) <= 15 * 60 * 1000
    await throttle.clear(["addr:198.51.100.7"])


# -- Redis goes away and comes back ---------------------------------------------------------------


class OwnRedis:
    """A redis-server of this test's own: no persistence, loopback only, on a port of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="madoguchi-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (apt-get install redis-server; .ci/run installs it)"
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
async def outage_client(settings, suite_clock) -> AsyncIterator[tuple[OwnRedis, httpx.AsyncClient, object]]:  # type: ignore[no-untyped-def]
    from api.main import create_app
    from infra.container import build_container
    from tests.contract_recorder import ResponseRecorder

    with own_redis() as server:
        c = build_container(
            settings.model_copy(
                update={
                    "redis_url": SecretStr(server.url),
                    "redis_prefix": "outage:",
                    "redis_timeout_seconds": 0.5,
                }
            ),
            suite_clock,
        )
        transport = httpx.ASGITransport(
            app=ResponseRecorder(create_app(container=c)), raise_app_exceptions=False
        )
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield server, http, c
        finally:
            await c.close()


async def test_without_redis_throttled_operations_answer_503_and_recover_by_themselves(
    outage_client, container
) -> None:  # type: ignore[no-untyped-def]
    server, http, c = outage_client
    email = "outage@example.jp"
    await c.accounts.create_user_directly(email=email, role=Role.consulter, password=PASSWORD)
    sign_in = {"username": email, "password": PASSWORD}
    assert (await http.post("/v1/auth/token", data=sign_in)).status_code == 200
    guidance = {"text": "SNSで私の写真が無断で投稿されています。削除してほしいです。"}

    server.stop()
    started = time.monotonic()
    refused = await http.post("/v1/auth/token", data=sign_in)
    body = assert_problem(refused, 503, "counter_store_unavailable")
    assert (
        refused.headers["Retry-After"] == "5" and "6379" not in refused.text and "redis" not in refused.text
    )
    assert body["title"]
    assert time.monotonic() - started < 5  # a quick refusal, not a hang
    triage = await http.post("/v1/triage", json=guidance)
    assert_problem(triage, 503, "counter_store_unavailable")
    # What needs no counter still answers.
    assert (await http.get("/healthz")).status_code == 200

    server.start()  # same port, empty: the client reconnects on its own
    for _ in range(50):
        again = await http.post("/v1/auth/token", data=sign_in)
        if again.status_code != 503:
            break
        await asyncio.sleep(0.1)
    assert again.status_code == 200, again.text
    assert (await http.post("/v1/triage", json=guidance)).status_code == 200


async def test_an_unreachable_redis_is_a_503_not_an_open_door(settings, suite_clock, clock) -> None:  # type: ignore[no-untyped-def]
    from infra.throttle import connect_redis

    client = connect_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.5)
    throttle = RedisThrottle(client, prefix="nowhere:", limits={"*": 1}, window=timedelta(minutes=1))
    try:
        for call in (
            throttle.count(["addr:x"], now=clock.now()),
            throttle.forgive(["addr:x"]),
            throttle.clear(["addr:x"]),
            throttle.clear_prefix("addr:"),
        ):
            with pytest.raises(Unavailable) as refused:
                await call
            assert refused.value.code == "counter_store_unavailable" and refused.value.retry_after == 5
    finally:
        await client.aclose()
