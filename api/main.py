"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api import contract, devpages, errors
from api.deps import RoleGuard, known_query_only
from api.idempotency import IdempotencyMiddleware, IdempotentReplay, replay_handler
from api.middleware import EdgeMiddleware
from api.routes import (
    auth,
    chatbot,
    consents,
    consultations,
    erasure,
    exports,
    guidance,
    health,
    letters,
    line,
    me,
    quality,
    reference,
    requests,
    retention,
    statistics,
    users,
)
from api.schemas.common import Problem
from domain.policy import roles_of
from infra import metrics, tracing
from infra.container import Container, build_container
from infra.logging import configure_logging
from infra.settings import Settings

DESCRIPTION = """
**madoguchi** (窓口) — the one API behind the consultation centre's my-page, LINE bot, homepage chatbot and staff
tools.

* Authentication: OAuth2 bearer tokens from `POST /v1/auth/token` (password grant for people,
  `client_credentials` for service clients). Access tokens live at most 15 minutes; refresh tokens rotate.
* Every error is `application/problem+json` (RFC 9457) with a stable `code` and a `request_id`; titles follow
  `Accept-Language` (Japanese by default, English on request).
* Objects the caller may not see answer 404, exactly like objects that do not exist.
"""


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or (container.settings if container else Settings.from_environment())
    configure_logging(settings.log_level)
    # Before the container: its engine is instrumented when tracing is on.
    tracing.configure_tracing(
        settings.otlp_endpoint, service="madoguchi-api", sample_ratio=settings.trace_sample_ratio
    )
    owned = container is None
    c = container or build_container(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        if settings.run_worker_in_process:
            task = asyncio.create_task(c.worker.run_forever(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if owned:
                await c.close()
            metrics.mark_process_dead(os.getpid())

    docs = settings.docs_enabled and not settings.is_production
    app = FastAPI(
        title="madoguchi API",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
        dependencies=[Depends(known_query_only)],
    )
    app.state.container = c
    app.state.settings = settings
    errors.install(app)
    app.add_exception_handler(IdempotentReplay, replay_handler)
    # Most requested first: FastAPI tries the routes one by one, about 20 Python calls each before the match
    # (/healthz, last of 140, made 5,100 calls a request against 2,600 for GET /v1/me). Every front end polls
    # /v1/me, every LINE message is a webhook call, then come a case's reads and the queue. No route can take
    # another's requests, whatever the order (tests/api/test_route_order.py).
    for router in (
        me.router,
        line.router,
        consultations.router,
        requests.router,
        quality.router,
        letters.router,
        auth.router,
        chatbot.router,
        consents.router,
        exports.router,
        erasure.router,
        guidance.router,
        requests.clocks_router,
        statistics.router,
        retention.router,
        reference.router,
        users.router,
        health.router,
    ):
        app.include_router(router)
    if not settings.is_production:
        app.router.routes.extend(devpages.routes())  # mailed links work against a local server
    if settings.metrics_token is not None and settings.metrics_port is None:
        app.router.routes.append(metrics_route(settings.metrics_token.get_secret_value()))
    _check_operation_ids(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
    app.add_middleware(IdempotencyMiddleware)  # innermost of ours: it sees the answer the routes give
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=sorted({m for r in api_routes(app) for m in r.methods} - {"HEAD", "OPTIONS"}),
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "X-Request-ID",
                "Accept-Language",
                "X-Chatbot-Token",
            ],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(
        EdgeMiddleware,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        hsts=settings.is_production,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        access_log=settings.access_log,
    )
    tracing.instrument_app(app)
    return app


def metrics_route(token: str) -> Route:
    """GET /metrics on the API's port, for a deployment that scrapes through it: only with the bearer token
    (MADOGUCHI_METRICS_TOKEN), and not part of the API's contract. Any worker answers for all of them."""

    async def scrape(request: Request) -> Response:
        if not metrics.authorized(request.headers.get("authorization"), token):
            return PlainTextResponse("unauthorized\n", 401, headers={"WWW-Authenticate": "Bearer"})
        body = await run_in_threadpool(metrics.exposition)
        return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"], include_in_schema=False)


def _check_operation_ids(app: FastAPI) -> None:
    """Front ends generate clients from operation ids: every route names one, and none repeats."""
    seen: set[str] = set()
    for route in api_routes(app):
        if not route.operation_id or route.operation_id in seen:
            raise RuntimeError(f"route {route.path} needs a unique operation_id")
        seen.add(route.operation_id)


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route with its full path (FastAPI >= 0.16x keeps included routers nested)."""
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents errors as application/json and 422 as HTTPValidationError; we answer problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=[{"url": "/"}],
    )
    roles = _route_roles(app)
    for item in schema["paths"].values():
        for operation in item.values():
            _optional_body_as_ref(operation)
            _optional_parameters_without_null(operation)
            if operation["operationId"] in roles:
                operation["x-roles"] = roles[operation["operationId"]]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    _key_patterns_as_property_names(components)
    app.openapi_schema = contract.document(schema)
    return schema


def _route_roles(app: FastAPI) -> dict[str, list[str]]:
    """Per operation id, the roles its guard admits (api.deps.require): the spec's `x-roles`."""
    out: dict[str, list[str]] = {}

    def guards(dependant: Any) -> list[RoleGuard]:
        found = [d.call for d in dependant.dependencies if isinstance(d.call, RoleGuard)]
        for sub in dependant.dependencies:
            found += guards(sub)
        return found

    for route in api_routes(app):
        found = guards(route.dependant)
        if found:
            allowed = frozenset.intersection(*(g.roles for g in found))
            out[route.operation_id] = roles_of(allowed)
    return out


def _optional_body_as_ref(operation: dict[str, Any]) -> None:
    """An optional body (`X | None = None`) comes out as anyOf [X, null]; OpenAPI says optional with
    `required: false`, and generated clients then take X or no body at all."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        variants = media.get("schema", {}).get("anyOf", [])
        refs = [v for v in variants if "$ref" in v]
        if len(variants) == 2 and len(refs) == 1 and {"type": "null"} in variants:
            media["schema"] = refs[0]


def _optional_parameters_without_null(operation: dict[str, Any]) -> None:
    """An optional parameter (`x: T | None = None`) comes out as anyOf [T, null], but a query parameter or a
    header is either sent as a string or not sent: null cannot be sent. Said as T with `required: false`, and
    clients and fuzzers no longer send a header such as `Idempotency-Key` with a "null" that T refuses."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        variants = schema.get("anyOf", [])
        if parameter.get("required") or len(variants) != 2 or {"type": "null"} not in variants:
            continue
        (kept,) = (v for v in variants if v != {"type": "null"})
        parameter["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept}


def _key_patterns_as_property_names(node: Any) -> None:
    """A map whose keys are codes (`dict[Code, T]`) refuses a key that is not a code, but pydantic says so as
    `patternProperties` {pattern: T}, which lets any other key through with any value: clients and fuzzers
    would send what is refused. Said as `propertyNames` with the pattern and `additionalProperties` T."""
    if isinstance(node, list):
        for item in node:
            _key_patterns_as_property_names(item)
        return
    if not isinstance(node, dict):
        return
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
        ((pattern, values),) = patterns.items()
        del node["patternProperties"]
        node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
        node["additionalProperties"] = values
    for value in node.values():
        _key_patterns_as_property_names(value)


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory` (settings from the environment).

    What the app builds at start (routes, schemas, validators, reference data: some 370 k objects) lives as
    long as the process, yet every full pass of the cyclic garbage collector walked it: a 300 ms pause every
    few hundred requests, the p99 of a queue page at 4 connections. `gc.freeze()` moves those objects out of
    the collector's generations (reference counting still frees them), so later passes walk only what
    requests create."""
    app = create_app()
    gc.collect()  # what start-up left as garbage goes now, not into the frozen generation
    gc.freeze()
    return app
