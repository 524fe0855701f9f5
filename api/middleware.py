"""One pure-ASGI middleware for what every response needs: request id, security headers, body limit,
content-type check, a problem+json 500 that still carries the request id, and, when the answer is done, its
request line and latency sample (README "Operations: metrics, traces, logs")."""

from __future__ import annotations

import re
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, on_unexpected, problem
from infra import metrics, tracing
from infra.logging import log

request_log = log("madoguchi.request")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_upload: int,
        hsts: bool,
        max_header_bytes: int = 16_384,
        max_headers: int = 100,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.max_body = max_body
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        # File uploads (PUT …/file) get their own, larger limit plus room for the multipart framing.
        self.max_upload = max_upload + 65_536
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope["headers"]
        # The server bounds the head as it arrives (api/server.py); this holds the same line under any server.
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(k) + len(v) + 4 for k, v in raw_headers)
        too_large = len(raw_headers) > self.max_headers or head > self.max_header_bytes
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}  # ASGI: lower-case
        incoming = headers.get("x-request-id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if tracing.enabled():
            tracing.tag_request(request_id)
        path: str = scope["path"]
        extra = [
            (b"x-request-id", request_id.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if not path.startswith(DOCS_PATHS):
            extra.append((b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))
        if self.hsts:
            extra.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        started = False
        status = 500
        began = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                raw = list(message.get("headers", []))
                if not any(k.lower() == b"cache-control" for k, _ in raw):
                    raw.append((b"cache-control", b"no-store"))
                own_csp = any(k.lower() == b"content-security-policy" for k, _ in raw)  # api/devpages.py
                message["headers"] = raw + [
                    h for h in extra if not (own_csp and h[0] == b"content-security-policy")
                ]
            await send(message)

        async def reject(status: int) -> None:
            response = problem(Request(scope), status)
            await response(scope, receive, send_with_headers)

        try:
            if too_large:
                await reject(431)
                return

            limit = self.max_upload if scope["method"] == "PUT" and path.endswith("/file") else self.max_body
            if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                length = headers.get("content-length")
                if length is not None and (not length.isdigit() or int(length) > limit):
                    await reject(413 if length.isdigit() else 400)
                    return
                has_body = (length not in (None, "0")) or "transfer-encoding" in headers
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if has_body and not (
                    ctype in BODY_TYPES or (ctype.startswith("application/") and ctype.endswith("+json"))
                ):
                    await reject(415)
                    return

            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge()
                return message

            try:
                await self.app(scope, limited_receive, send_with_headers)
            except Exception as exc:  # noqa: BLE001 - the last line of defence renders a generic problem
                if started:
                    raise
                response = await on_unexpected(Request(scope), exc)
                await response(scope, receive, send_with_headers)
        finally:
            self._done(scope, request_id, status, time.perf_counter() - began)

    def _done(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        """The request line and the latency sample: labels are the route template (never the path, which
        carries ids), the method from a closed set, and the status."""
        route = scope.get("route")
        template = getattr(route, "path", None) or metrics.UNMATCHED_ROUTE
        method = scope["method"] if scope["method"] in metrics.HTTP_METHODS else "OTHER"
        metrics.REQUEST_DURATION.labels(method, template, str(status)).observe(seconds)
        if self.access_log:
            request_log.info(
                "request",
                request_id=request_id,
                method=method,
                route=template,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                role=scope["state"].get("actor_role", "anonymous"),
            )
