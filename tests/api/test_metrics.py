"""Issue 19 item 4: Prometheus metrics, never public, labelled only from closed sets."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.main import api_routes, create_app
from infra import metrics
from infra.db.engine import make_engine
from infra.db.tables import OutboxRow
from infra.db.tables_line import LineDeliveryRow
from tests.api.observability_workload import run_workload
from tests.conftest import free_port

STATUS = re.compile(r"^[1-5][0-9][0-9]$")
# A route template: lower-case literal segments and {parameters}; other tests add routes of their own to the
# process's apps (/boom), so the check is the shape, and no segment can hold an id, an address or a name.
TEMPLATE = re.compile(r"^(/(v[0-9]+|[a-z][a-z_.-]*|\{[a-z_]+\}))+/?$|^/$")
CODE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# prometheus-client's own process and platform collectors.
LIBRARY_LABELS = {"generation", "implementation", "major", "minor", "patchlevel", "version"}


def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items()))


async def test_every_label_value_of_a_scrape_is_from_an_allow_list(client, people, container, app) -> None:
    planted = await run_workload(client, people, container)
    templates = {r.path for r in api_routes(app)} | {r.path for r in app.routes if hasattr(r, "path")}
    allowed: dict[str, object] = {
        "method": metrics.HTTP_METHODS | {"OTHER"},
        "route": templates | {metrics.UNMATCHED_ROUTE},
        "status": STATUS,
        "queue": set(metrics.QUEUES),
        "kind": set(container.worker.handlers) | {"line.message", "other"},
        "outcome": {"success", "failure", "throttled", "delivered", "done", "retry", "dead"},
        "grant": metrics.GRANTS,
        "code": CODE,
        "le": re.compile(r"^([0-9.]+|\+Inf)$"),
    }
    seen_routes = set()
    for name, samples in scrape().items():
        for labels, _ in samples:
            for label, got in labels.items():
                if label in LIBRARY_LABELS and not name.startswith("madoguchi_"):
                    continue
                rule = allowed.get(label)
                assert rule is not None, f"{name} has a label {label!r} outside the allow-list"
                ok = rule.match(got) if isinstance(rule, re.Pattern) else got in rule  # type: ignore[operator]
                if label == "route" and not ok:
                    ok = TEMPLATE.match(got) is not None
                assert ok or (label == "code" and got == ""), f"{name}{{{label}={got!r}}} is not allowed"
                assert not any(p in got for p in planted.values), f"{name} carries a planted value"
                if label == "route":
                    seen_routes.add(got)
    # The workload's ids went into paths; the labels hold the templates.
    assert "/v1/consultations/{consultation_id}" in seen_routes
    assert "/v1/consultations/{consultation_id}/evidence" in seen_routes
    assert metrics.UNMATCHED_ROUTE in seen_routes


async def test_requests_sign_ins_throttles_and_chatbot_sessions_are_counted(
    client, people, container
) -> None:
    before = scrape()
    await run_workload(client, people, container)
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    name = "madoguchi_http_request_duration_seconds_count"
    assert delta(name, method="GET", route="/v1/consultations/{consultation_id}", status="200") == 2
    assert delta(name, method="GET", route="/v1/consultations/{consultation_id}", status="404") == 1
    assert delta(name, method="POST", route="/v1/consultations", status="201") == 1
    assert delta(name, route=metrics.UNMATCHED_ROUTE, status="404") >= 1
    failures = container.settings.login_max_failures
    assert delta("madoguchi_sign_in_total", grant="password", outcome="success") == 3
    assert (
        delta("madoguchi_sign_in_total", grant="password", outcome="failure", code="invalid_credentials")
        == failures
    )
    assert (
        delta("madoguchi_sign_in_total", grant="password", outcome="throttled", code="too_many_attempts") == 1
    )
    assert delta("madoguchi_rate_limited_total", code="too_many_attempts") == 1
    assert delta("madoguchi_chatbot_sessions_started_total") == 1
    assert delta("madoguchi_worker_deliveries_total", outcome="delivered") >= 1
    # Every connection went back to the pool.
    assert value(after, "madoguchi_db_pool_connections_in_use") == value(
        before, "madoguchi_db_pool_connections_in_use"
    )


async def test_queue_depth_age_lag_and_dead_letters(container, clock) -> None:
    now = clock.now()
    async with container.sessions() as db:
        db.add(
            OutboxRow(
                id=uuid.uuid4(),
                kind="line.answer_published",
                payload={},
                created_at=now - timedelta(minutes=10),
                next_attempt_at=now - timedelta(minutes=4),
            )
        )
        db.add(
            OutboxRow(
                id=uuid.uuid4(),
                kind="line.answer_published",
                created_at=now - timedelta(minutes=1),
                next_attempt_at=now + timedelta(minutes=5),
            )
        )
        db.add(
            OutboxRow(
                id=uuid.uuid4(),
                kind="line.answer_published",
                created_at=now - timedelta(days=1),
                next_attempt_at=now,
                attempts=8,
                failed_at=now,
            )
        )
        db.add(
            LineDeliveryRow(
                id=uuid.uuid4(),
                purpose="notice",
                mode="push",
                status="dead",
                line_user_id="U" + "0" * 32,
                retry_key=str(uuid.uuid4()),
                created_at=now,
                next_attempt_at=now,
                failed_at=now,
            )
        )
        await db.commit()
    await container.worker.measure_queues_due(now, force=True)
    got = scrape()
    assert value(got, "madoguchi_queue_depth", queue="outbox") == 2
    assert value(got, "madoguchi_queue_oldest_age_seconds", queue="outbox") == 600
    assert value(got, "madoguchi_worker_lag_seconds", queue="outbox") == 240
    assert value(got, "madoguchi_dead_letters", queue="outbox") == 1
    assert value(got, "madoguchi_dead_letters", queue="line_delivery") == 1
    assert value(got, "madoguchi_queue_depth", queue="line_inbox") == 0
    assert value(got, "madoguchi_worker_lag_seconds", queue="line_inbox") == 0


async def test_the_pool_counts_connections_in_use_and_callers_waiting(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1, timeout=5)  # SQLite files and PostgreSQL: the same pool
    base_in_use = metrics.DB_POOL_IN_USE._value.get()  # noqa: SLF001 - this process's gauge
    base_waiting = metrics.DB_POOL_WAITING._value.get()  # noqa: SLF001
    try:
        held = await engine.connect()
        assert metrics.DB_POOL_IN_USE._value.get() == base_in_use + 1  # noqa: SLF001
        second = asyncio.create_task(engine.connect().start())
        for _ in range(100):
            if metrics.DB_POOL_WAITING._value.get() == base_waiting + 1:  # noqa: SLF001
                break
            await asyncio.sleep(0.01)
        assert metrics.DB_POOL_WAITING._value.get() == base_waiting + 1  # noqa: SLF001
        await held.close()
        other = await asyncio.wait_for(second, 5)
        assert metrics.DB_POOL_WAITING._value.get() == base_waiting  # noqa: SLF001
        await other.close()
        assert metrics.DB_POOL_IN_USE._value.get() == base_in_use  # noqa: SLF001
    finally:
        await engine.dispose()


async def test_metrics_on_the_api_port_need_the_token(container) -> None:
    token = "metrics-token-" + "t" * 24
    settings = container.settings.model_copy(update={"metrics_token": SecretStr(token)})
    app = create_app(container=dataclasses.replace(container, settings=settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (
            await http.get("/metrics", headers={"Authorization": "Bearer wrong-" + "x" * 24})
        ).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "madoguchi_http_request_duration_seconds" in ok.text
    assert "/metrics" not in app.openapi()["paths"]


async def test_without_a_token_there_is_no_metrics_route_on_the_api_port(client) -> None:
    assert (await client.get("/metrics")).status_code == 404


def test_the_metrics_port_serves_the_scrape_and_checks_its_token() -> None:
    port = free_port()
    server = metrics.serve_metrics("127.0.0.1", port, "port-token-" + "p" * 24)
    try:
        base = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(base).status_code == 401
        ok = httpx.get(base, headers={"Authorization": "Bearer port-token-" + "p" * 24})
        assert ok.status_code == 200 and "madoguchi_db_pool_size" in ok.text
        assert httpx.post(base, headers={"Authorization": "Bearer port-token-" + "p" * 24}).status_code == 405
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("code", ["invalid_credentials", "too_many_attempts"])
def test_codes_pass_the_label_filter_and_text_does_not(code: str) -> None:
    assert metrics.code_label(code) == code
    assert metrics.code_label("yamada@example.jp") == "other"
    assert metrics.code_label("山田") == "other"
    assert metrics.kind_label("never-registered-kind") == "other"
