"""Issue 19 items 4 and 6 under the real server: `madoguchi serve --workers 2` with the metrics port. One scrape
of the port (served by the supervising process) sums both workers' samples (prometheus-client multiprocess
mode), and every line the server writes on stderr, uvicorn's own included, is one JSON object. And issue 12:
each worker listens on a socket of its own (infra/listener.py), so connections opened together are spread
over the workers instead of all going to the one that woke first."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.e2e.conftest import drain_stderr

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token-0123456789abcdef"


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    return samples


def tcp_sockets(port: int, supervisor: int) -> dict[str, list[int]]:
    """The server's TCP sockets on `port` by state ("LISTEN", "ESTABLISHED"): the pid of the process that holds
    each, read from /proc (the supervisor and the processes it started)."""
    states = {"0A": "LISTEN", "01": "ESTABLISHED"}
    inodes: dict[str, str] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] in states:
            inodes[fields[9]] = states[fields[3]]
    pids, found = [supervisor], {"LISTEN": [], "ESTABLISHED": []}
    for pid in pids:
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            pids += [int(child) for child in children.read_text().split()]
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found[inodes[target[8:-1]]].append(pid)
    return found


def test_two_workers_one_scrape_and_json_lines_only(database_url: str, smtp_server, container) -> None:  # type: ignore[no-untyped-def]
    port, metrics_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MADOGUCHI_", "PROMETHEUS_"))},
        "MADOGUCHI_ENV": "development",
        "MADOGUCHI_DATABASE_URL": database_url,
        "MADOGUCHI_DATABASE_POOL_SIZE": "3",
        "MADOGUCHI_SECRET_KEY": "e2e-secret-key-0123456789abcdef-0123456789",
        "MADOGUCHI_MAIL_BACKEND": "smtp",
        "MADOGUCHI_SMTP_HOST": "127.0.0.1",
        "MADOGUCHI_SMTP_PORT": str(smtp_server[1]),
        "MADOGUCHI_WORKER_IN_PROCESS": "false",
        "MADOGUCHI_METRICS_PORT": str(metrics_port),
        "MADOGUCHI_METRICS_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines = drain_stderr(process)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # two workers import side by side: slow on a loaded machine
        ready = 0
        while time.monotonic() < deadline and ready < 2:
            assert process.poll() is None, "\n".join(lines)
            time.sleep(0.5)
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code != 200:
                    continue
                # Both workers started: each has created its pool (3 connections each, summed by the scrape).
                ready = int(sum(v for _, v in scrape(metrics_port).get("madoguchi_db_pool_size", [])) / 3)
            except httpx.TransportError:
                pass
        assert ready == 2, "\n".join(lines)

        # A listening socket per worker, none in the supervisor (it would be handed connections it never
        # accepts); 16 connections opened together reach both workers (all on one: odds of 2 in 65,536).
        until = time.monotonic() + 30  # a worker listens just after its startup, which the scrape above saw
        while len(listening := tcp_sockets(port, process.pid)["LISTEN"]) < 2 and time.monotonic() < until:
            time.sleep(0.1)
        assert len(listening) == len(set(listening)) == 2 and process.pid not in listening, listening
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            time.sleep(0.5)  # accepted by then (accept is the workers' first step)
            assert set(tcp_sockets(port, process.pid)["ESTABLISHED"]) == set(listening)
        finally:
            for connection in held:
                connection.close()
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").status_code == 401

        for _ in range(24):  # a new connection each: the kernel spreads them over the two workers
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200, (
                "\n".join(lines)
            )
        assert httpx.get(f"{base}/v1/consultations/3f2a6d7e-0000-4000-8000-000000000000").status_code == 401
        samples = scrape(metrics_port)
        counts = {
            (labels["route"], labels["status"]): v
            for labels, v in samples["madoguchi_http_request_duration_seconds_count"]
        }
        assert counts[("/healthz", "200")] == 24
        assert counts[("/v1/consultations/{consultation_id}", "401")] == 1
        assert sum(v for _, v in samples["madoguchi_db_pool_size"]) == 6
        assert httpx.get(f"{base}/metrics").status_code == 404  # never on the public port when a port is set
    finally:
        process.terminate()
        process.wait(timeout=20)
    time.sleep(0.3)
    assert lines
    parsed = [json.loads(line) for line in lines]  # every line is JSON, or this raises
    loggers = {p.get("logger") for p in parsed}
    assert "uvicorn.error" in loggers and "madoguchi.request" in loggers
    requests = [p for p in parsed if p.get("event") == "request"]
    assert len({p["request_id"] for p in requests}) == len(requests) >= 25
