"""OpenTelemetry tracing, off unless MADOGUCHI_OTLP_ENDPOINT is set (README "Operations: metrics, traces,
logs"). FastAPI (server spans), SQLAlchemy (one span per statement) and httpx (outbound calls: LINE, SMTP is
not HTTP) are instrumented with the opentelemetry-instrumentation-* packages.

No personal data leaves in a span. Instrumentations record more than we want (the full URL with its query
string, client addresses, user agents, exception messages that can quote input), so every span passes an
allow-list before export: only the attributes named in ALLOWED are kept, URLs are cut to scheme, host and path
template, and exception events keep the type alone. SQL statements are kept (bound parameters are never
recorded: SQLAlchemy's instrumentation records the statement text with its placeholders) .
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

REQUEST_ID_ATTRIBUTE = "madoguchi.request_id"

# Attributes that describe the operation and never the person: method, route template, status, peer host,
# database system and statement text (placeholders only), and ours.
ALLOWED = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "server.address",
        "server.port",
        "net.peer.name",
        "net.host.port",
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.statement",
        "db.query.text",
        "db.operation",
        "db.operation.name",
        "error.type",
        "asgi.event.type",
        "otel.status_code",
        REQUEST_ID_ATTRIBUTE,
    }
)
ALLOWED_EVENT_ATTRIBUTES = frozenset({"exception.type"})

_provider: TracerProvider | None = None
_lock = threading.Lock()


def enabled() -> bool:
    return _provider is not None


def provider() -> TracerProvider | None:
    return _provider


class AllowListExporter(SpanExporter):
    """Hands the exporter copies of the spans that carry only allow-listed attributes."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrub(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _keep(attributes: Any, allowed: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if k in allowed}


def scrub(span: ReadableSpan) -> ReadableSpan:
    events = [
        Event(e.name, _keep(e.attributes, ALLOWED_EVENT_ATTRIBUTES), timestamp=e.timestamp)
        for e in span.events
    ]
    # A span's name is the route template for server spans ("GET /v1/consultations/{consultation_id}") and
    # the method or statement verb otherwise; a name with a query string is cut.
    name = span.name.split("?", 1)[0]
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_keep(span.attributes, ALLOWED),
        events=events,
        links=[],
        kind=span.kind,
        status=trace.Status(span.status.status_code),  # the description can quote an exception's message
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def configure_tracing(
    endpoint: str | None,
    *,
    service: str,
    sample_ratio: float = 1.0,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Once per process. With neither an endpoint nor an exporter (tests pass an in-memory one), nothing is
    set up and nothing is instrumented: no cost on any path."""
    global _provider
    if endpoint is None and exporter is None:
        return None
    with _lock:
        if _provider is not None:
            return _provider
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            assert endpoint is not None  # no exporter given, so there is an endpoint (see above)
            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        tracer_provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        )
        tracer_provider.add_span_processor(BatchSpanProcessor(AllowListExporter(exporter)))
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider)
        _provider = tracer_provider
        return tracer_provider


def instrument_engine(engine: Any) -> None:
    """One SQLAlchemy engine (the async engine's sync core); statements only, no comments appended."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares sqlalchemy < 2.1 while its engine events are unchanged in 2.1 (the tracing
    # test proves the statement spans); without skipping the check it logs a conflict and does nothing.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=_provider, enable_commenter=False, skip_dep_check=True
    )


def instrument_app(app: Any) -> None:
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # Probes every few seconds would drown the traces.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )


def tag_request(request_id: str) -> None:
    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def shutdown() -> None:
    """Flush what is batched and stop (tests; a process exit flushes by itself)."""
    global _provider
    with _lock:
        if _provider is None:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        HTTPXClientInstrumentor().uninstrument()
        SQLAlchemyInstrumentor().uninstrument()
        _provider.shutdown()
        _provider = None
