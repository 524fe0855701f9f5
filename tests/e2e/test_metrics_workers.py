"""Issue 19 items 4 and 6 under the real server: `madoguchi serve --workers 2` with the metrics port. One scrape
of the port (served by the supervising process) sums both workers' samples (prometheus-client multiprocess
mode), and every line the server writes on stderr, uvicorn's own included, is one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

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
