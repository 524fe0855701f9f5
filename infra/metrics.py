"""Prometheus metrics (README "Operations: metrics, traces, logs").

Labels carry only values from closed sets: HTTP methods, route templates (never the raw path), status codes,
problem codes from the catalogue, outbox kinds, queue names. Nothing here takes an id, an address or text.

Several uvicorn workers: `madoguchi serve` runs prometheus-client's multiprocess mode. It points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker starts, every worker writes its samples there
(memory-mapped files), and one scrape, on the metrics port served by the supervising process or at /metrics
on any worker, reads them all: counters and histograms are summed, gauges are combined as each says
(`livesum`: the sum over the live workers; `mostrecent`: the last value any process set). prometheus-client
reads the variable once, when it is first imported, so the command sets it before anything imports this
module.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from infra.metrics_setup import MULTIPROC_ENV

# Request latency: most answers take milliseconds; sign-ins hash a password (~0.1-0.5 s); past 5 s is an outage.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"  # no route matched (404s for unknown paths, probes of random URLs)

REQUEST_DURATION = Histogram(
    "madoguchi_http_request_duration_seconds",
    "Time to the end of the response, by route template and status (the _count is the request count)",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "madoguchi_db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "madoguchi_db_pool_waiting",
    "Requests waiting for a database connection (the pool is exhausted while this is above 0)",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "madoguchi_db_pool_size",
    "Connections the pool may hold (MADOGUCHI_DATABASE_POOL_SIZE per process)",
    multiprocess_mode="livesum",
)
DB_POOL_TIMEOUTS = Counter(
    "madoguchi_db_pool_timeouts_total",
    "Checkouts that waited longer than MADOGUCHI_DATABASE_TIMEOUT_SECONDS (each one a 503)",
)
QUEUE_DEPTH = Gauge(
    "madoguchi_queue_depth",
    "Rows still to process: outbox, line_inbox, line_delivery",
    ["queue"],
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_AGE = Gauge(
    "madoguchi_queue_oldest_age_seconds",
    "Age of the oldest row still to process (0 when the queue is empty)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
WORKER_LAG = Gauge(
    "madoguchi_worker_lag_seconds",
    "How long the most overdue row has been due and not yet processed (0 when nothing is overdue)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Gauge(
    "madoguchi_dead_letters",
    "Rows given up after their last attempt (outbox failed_at, LINE deliveries dead)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
QUEUE_MEASURED_AT = Gauge(
    "madoguchi_queue_measured_timestamp_seconds",
    "When the queue gauges were last measured (a stale value means no worker is running)",
    multiprocess_mode="max",
)
WORKER_DELIVERIES = Counter(
    "madoguchi_worker_deliveries_total",
    "Worker deliveries by outbox kind and outcome (delivered, retry, dead, done)",
    ["kind", "outcome"],
)
WORKER_PASS_DURATION = Histogram(
    "madoguchi_worker_pass_duration_seconds",
    "Time one worker pass took (outbox, LINE inbox and deliveries)",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
WORKER_LAST_PASS = Gauge(
    "madoguchi_worker_last_pass_timestamp_seconds",
    "When a worker pass last ended",
    multiprocess_mode="max",
)
SIGN_INS = Counter(
    "madoguchi_sign_in_total",
    "POST /v1/auth/token by grant and outcome (success, failure, throttled) and problem code",
    ["grant", "outcome", "code"],
)
RATE_LIMITED = Counter(
    "madoguchi_rate_limited_total",
    "Requests refused with 429, by problem code (too_many_attempts, rate_limited, ...)",
    ["code"],
)
CHATBOT_SESSIONS_STARTED = Counter(
    "madoguchi_chatbot_sessions_started_total", "Homepage chatbot sessions started"
)
CHATBOT_SESSIONS_ACTIVE = Gauge(
    "madoguchi_chatbot_sessions_active",
    "Chatbot sessions not yet expired",
    multiprocess_mode="mostrecent",
)

# Closed sets for labels whose values come from data: anything else is counted as "other".
GRANTS = frozenset({"password", "client_credentials", "refresh_token"})
QUEUES = ("outbox", "line_inbox", "line_delivery")
_known_kinds: set[str] = set()


def known_kinds(kinds: Iterable[str]) -> None:
    """The outbox kinds the worker has handlers for (set once at start): the only values of `kind`."""
    _known_kinds.update(kinds)


def kind_label(kind: str) -> str:
    return kind if kind in _known_kinds else "other"


def code_label(code: str | None) -> str:
    """Problem codes are snake_case identifiers from domain/knowledge/problems.yaml (a finite catalogue)."""
    if not code or len(code) > 48 or not all(ch.islower() or ch == "_" or ch.isdigit() for ch in code):
        return "other"
    return code


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's registry."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)
    return registry


def exposition() -> bytes:
    return generate_latest(scrape_registry())


def mark_process_dead(pid: int) -> None:
    """A worker that stops takes its `live*` gauges with it."""
    if multiprocess_dir() is not None:
        _multiprocess.mark_process_dead(pid)


def authorized(header: str | None, token: str | None) -> bool:
    if token is None:
        return True
    return hmac.compare_digest((header or "").encode(), f"Bearer {token}".encode())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged (wsgiref writes client addresses to stderr)."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_metrics(host: str, port: int, token: str | None) -> WSGIServer:
    """The metrics on their own port, in a daemon thread: GET /metrics (any path answers the same), with
    `Authorization: Bearer <MADOGUCHI_METRICS_TOKEN>` required when a token is set."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if not authorized(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")]
            )
            return [b"unauthorized\n"]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "GET")])
            return [b"method not allowed\n"]
        body = exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
