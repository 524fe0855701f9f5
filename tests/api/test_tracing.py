"""Issue 19 item 5: OpenTelemetry spans for FastAPI, SQLAlchemy and httpx, without personal data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.main import create_app
from domain.actors import Role
from infra import tracing
from infra.container import build_container
from tests.api.consultation_helpers import intake
from tests.api.observability_workload import EMAIL, EVIDENCE_URL, NAME, NARRATIVE
from tests.conftest import People


def test_tracing_is_off_by_default(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.otlp_endpoint is None
    assert tracing.configure_tracing(None, service="madoguchi-api") is None
    assert not tracing.enabled()


@pytest.fixture
async def traced(
    settings, suite_clock, container
) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter, object]]:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(None, service="madoguchi-api", exporter=exporter)
    # A container of its own, traced; asking for the suite's one above makes the table cleanup run after.
    container = build_container(settings, suite_clock)
    app = create_app(container=container)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            yield http, exporter, container
    finally:
        tracing.shutdown()
        await container.close()


async def test_spans_of_a_request_carrying_personal_data_carry_none(traced) -> None:  # type: ignore[no-untyped-def]
    http, exporter, container = traced
    people = People(container, http)
    owner = await people.create(Role.consulter, email=EMAIL)
    body = intake(title=f"{NAME}の件", narrative=NARRATIVE)
    response = await http.post(
        "/v1/consultations",
        params={"email": EMAIL, "name": NAME},
        headers={**owner.headers, "X-Request-ID": "span-test-request-0001"},
        json=body,
    )
    assert response.status_code == 201, response.text
    cid = response.json()["id"]
    await http.post(f"/v1/consultations/{cid}/evidence", headers=owner.headers, json={"url": EVIDENCE_URL})
    await http.get(f"/v1/users/{EMAIL}", headers=owner.headers)
    async with httpx.AsyncClient() as outbound:  # httpx is instrumented: an outbound call gets its span
        try:
            await outbound.get(f"http://127.0.0.1:1/hook?email={EMAIL}", timeout=0.5)
        except httpx.HTTPError:
            pass
    tracing.provider().force_flush()  # type: ignore[union-attr]
    spans = exporter.get_finished_spans()

    planted = [EMAIL, NAME, NARRATIVE[:20], EVIDENCE_URL, "planted_poster_77", owner.access_token]
    for span in spans:
        text = repr(
            (
                span.name,
                dict(span.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in span.events],
                span.status.description,
            )
        )
        for value in planted:
            assert value not in text, (value, span.name, text[:400])

    server = [s for s in spans if s.kind.name == "SERVER"]
    create = next(s for s in server if (s.attributes or {}).get("http.route") == "/v1/consultations")
    assert create.attributes[tracing.REQUEST_ID_ATTRIBUTE] == "span-test-request-0001"  # type: ignore[index]
    assert create.name == "POST /v1/consultations"
    sql = [
        s for s in spans if "db.system" in (s.attributes or {}) or "db.system.name" in (s.attributes or {})
    ]
    assert sql, "SQLAlchemy is instrumented"
    statements = " ".join(str((s.attributes or {}).get("db.statement", "")) for s in sql)
    assert "INSERT INTO consultation" in statements or "INSERT INTO" in statements
    client_spans = [s for s in spans if s.kind.name == "CLIENT" and "db.system" not in (s.attributes or {})]
    assert client_spans, "httpx is instrumented"
    assert all(
        "url.full" not in (s.attributes or {}) and "http.url" not in (s.attributes or {}) for s in spans
    )


def test_the_allow_list_drops_what_instrumentations_record() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.AllowListExporter(exporter)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /v1/x?email=a@example.jp") as span:
        span.set_attribute("http.url", f"https://h/v1/x?email={EMAIL}")
        span.set_attribute("http.target", f"/v1/x?email={EMAIL}")
        span.set_attribute("url.query", f"email={EMAIL}")
        span.set_attribute("http.user_agent", "Mozilla")
        span.set_attribute("client.address", "203.0.113.9")
        span.set_attribute("db.statement.parameters", f"('{EMAIL}',)")
        span.set_attribute("http.route", "/v1/x")
        span.record_exception(ValueError(f"bad {EMAIL}"))
    (got,) = exporter.get_finished_spans()
    assert dict(got.attributes or {}) == {"http.route": "/v1/x"}
    assert got.name == "GET /v1/x"
    assert [dict(e.attributes or {}) for e in got.events] == [{"exception.type": "ValueError"}]
