"""`Idempotency-Key` on every create: a front end may retry any POST that creates after a 503 or a lost answer.

    @router.post(..., dependencies=[idempotent("messages_create", "message", replay_message)])

- A fresh key: the request runs; the create's unit of work writes the key in its own transaction
  (infra/idempotency.py), and the middleware below stores the answer (status, Location, ETag, body) before
  it is sent.
- The same key and the same request again (same method, path and JSON body): the stored answer, unchanged —
  201, not 200, the same body, the same headers. If the first answer was never stored (the create committed,
  then the database went away before the answer was written), the answer is rebuilt from the row the create
  made by the operation's `replay` function.
- The same key with another request: 422 `idempotency_key_reused`. The same key while its first request is still
  running (or with nothing to answer from): 409 `idempotency_key_in_use`.

Keys belong to the signed-in person (another person's identical key is another key) and live a day.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import ContainerDep, CurrentActor
from domain.actors import Actor
from domain.errors import Conflict, ValidationFailed
from infra import idempotency
from infra.container import Container

log = logging.getLogger("madoguchi.idempotency")

HEADER = "Idempotency-Key"
KEPT_HEADERS = ("location", "etag")
DESCRIPTION = (
    "Makes a retry safe: send a fresh unique value (a UUID) with each new create, and the same value when you "
    "retry it (after a 503, a timeout or a lost answer). A retry with the same key and the same request gets "
    "the first answer again, unchanged (status, Location, ETag and body); the same key with another request is "
    "422 `idempotency_key_reused`; while the first request is still running, 409 `idempotency_key_in_use`. "
    "Keys are per person and kept for 24 hours."
)

# Rebuilds a create's answer from the row it made: (body, headers).
Replay = Callable[[Actor, Container, uuid.UUID, Request], Awaitable[tuple[Any, dict[str, str]]]]


class IdempotentReplay(Exception):  # noqa: N818 - not an error: the answer to a retry
    def __init__(self, response: Response) -> None:
        self.response = response


async def replay_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    return exc.response


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Same request = same method, path and JSON value (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def idempotent(operation: str, table: str | None, replay: Replay | None = None) -> Any:
    """The dependency a create route declares; `table` names the table the create makes its row in."""

    async def guard(
        request: Request,
        actor: CurrentActor,
        container: ContainerDep,
        key: Annotated[
            str | None, Header(alias=HEADER, min_length=8, max_length=200, description=DESCRIPTION)
        ] = None,
    ) -> None:
        scope = idempotency.current()
        if key is None or scope is None or actor.user_id is None:
            return
        signature = fingerprint(request.method, request.url.path, await request.body())
        known = await idempotency.find(container.sessions, actor.user_id, key, container.clock.now())
        if known is None:
            scope.arm(actor.user_id, key, operation, signature, table)
            return
        if known.fingerprint != signature or known.operation != operation:
            raise ValidationFailed("idempotency_key_reused", field=HEADER)
        body = idempotency.opened_answer(container.settings.signing_key, known)
        if known.status_code is not None and body is not None:
            raise IdempotentReplay(
                Response(
                    content=body.encode(),
                    status_code=known.status_code,
                    headers=dict(known.response_headers or {}),
                    media_type="application/json",
                )
            )
        if known.resource_id is not None and replay is not None:
            body, headers = await replay(actor, container, known.resource_id, request)
            raise IdempotentReplay(JSONResponse(jsonable_encoder(body), status_code=201, headers=headers))
        raise Conflict("idempotency_key_in_use")

    return Depends(guard)


class IdempotencyMiddleware:
    """Opens the request scope for POSTs that carry a key, and stores a create's 2xx answer before sending it
    (so a retry racing the first answer gets the same answer, never a second create)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _has_key(scope):
            await self.app(scope, receive, send)
            return
        with idempotency.request_scope() as request_scope:
            held: list[Message] = []

            async def capture(message: Message) -> None:
                if not request_scope.recorded:
                    await send(message)
                    return
                held.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    await self._store(scope, request_scope, held)
                    for m in held:
                        await send(m)
                    held.clear()

            await self.app(scope, receive, capture)

    @staticmethod
    async def _store(scope: Scope, request_scope: idempotency.IdempotencyScope, held: list[Message]) -> None:
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        if start is None or not 200 <= int(start["status"]) < 300:
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in start.get("headers", [])
            if k.decode("latin-1").lower() in KEPT_HEADERS
        }
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        container = scope["app"].state.container
        try:
            await idempotency.store_answer(
                container.sessions,
                request_scope,
                int(start["status"]),
                headers,
                body.decode("utf-8"),
                master_secret=container.settings.signing_key,
            )
        except Exception as exc:  # noqa: BLE001 - the create stands; a retry rebuilds the answer from its row
            log.warning("idempotent answer not stored: %s", type(exc).__name__)


def _has_key(scope: Scope) -> bool:
    return any(k.lower() == b"idempotency-key" for k, _ in scope.get("headers", []))
