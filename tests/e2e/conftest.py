"""The real server process, started per test on a free loopback port against the suite's database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import free_port
from tests.log_guard import GUARD


@pytest.fixture
def server(database_url: str, smtp_server, container) -> Iterator[str]:  # type: ignore[no-untyped-def]
    yield from run_server(database_url, smtp_server[1], "https://madoguchi.example.jp")


@pytest.fixture
def local_server(database_url: str, smtp_server, container) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """As `./dev serve` runs it: no MADOGUCHI_PUBLIC_URL, so mailed links point at the server itself."""
    yield from run_server(database_url, smtp_server[1], None)


# Each started server's log lines, by process id (read as they come; see drain_stderr).
SERVER_LINES: dict[int, list[str]] = {}


def drain_stderr(process: subprocess.Popen[bytes]) -> list[str]:
    """Reads the server's log lines as they come (a full pipe would block the server), scanning each for
    personal data (tests/log_guard.py); returns the list they are collected in."""
    lines: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            GUARD.scan(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def run_server(database_url: str, smtp_port: int, public_url: str | None, **env: str) -> Iterator[str]:
    process, base = start_server(database_url, smtp_port, public_url, **env)
    try:
        wait_until_ready(process, base)
        yield base
    finally:
        stop_server(process)


def start_server(
    database_url: str, smtp_port: int, public_url: str | None, **extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`madoguchi serve` on a free loopback port; `extra` settings (MADOGUCHI_*) override the defaults here."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "MADOGUCHI_PUBLIC_URL"},
        "MADOGUCHI_ENV": "development",
        "MADOGUCHI_DATABASE_URL": database_url,
        "MADOGUCHI_SECRET_KEY": "e2e-secret-key-0123456789abcdef-0123456789",
        "MADOGUCHI_MAIL_BACKEND": "smtp",
        "MADOGUCHI_SMTP_HOST": "127.0.0.1",
        "MADOGUCHI_SMTP_PORT": str(smtp_port),
        "MADOGUCHI_WORKER_IN_PROCESS": "true",
        "MADOGUCHI_WORKER_POLL_SECONDS": "0.2",
        **extra,
    }
    if public_url is not None:
        env["MADOGUCHI_PUBLIC_URL"] = public_url
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    SERVER_LINES[process.pid] = drain_stderr(process)
    return process, f"http://127.0.0.1:{port}"


def wait_until_ready(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 90  # imports alone take 20 s on a loaded CI machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            time.sleep(0.5)  # let the reader collect the last lines
            raise AssertionError("\n".join(SERVER_LINES.get(process.pid, [])) or "server exited")
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)
