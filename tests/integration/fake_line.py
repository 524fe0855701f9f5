"""A stand-in for the LINE Messaging API on a loopback port (no network): records every call, answers like
LINE does, and can be told to fail. line-bot-sdk's async client speaks aiohttp, so a real server is the
honest fake (no transport to inject).

    async with FakeLine.running() as fake:
        settings = …(line_api_base_url=fake.url, line_data_api_base_url=fake.url)
        fake.fail("push", 500, times=1)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ACCESS_TOKEN = "fake-channel-access-token"


@dataclass
class Call:
    kind: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0

    @property
    def texts(self) -> list[str]:
        return [m.get("text", "") for m in (self.body or {}).get("messages", [])]


@dataclass
class FakeLine:
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    # kind -> statuses to answer next (consumed one per call); "always" keeps failing until cleared.
    failures: dict[str, list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    # kind -> how many of the next successful calls answer 200 with a body no JSON parser reads
    garbled: dict[str, int] = field(default_factory=dict)
    delay_seconds: float = 0.0  # before answering each message call (a slow LINE, for kill tests)
    accepted_retry_keys: set[str] = field(default_factory=set)
    used_reply_tokens: set[str] = field(default_factory=set)
    link_tokens: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, kind: str, status: int, *, times: int = 1) -> None:
        self.failures.setdefault(kind, []).extend([status] * times)

    def fail_always(self, kind: str, status: int) -> None:
        self.always[kind] = status

    def garble(self, kind: str, *, times: int = 1) -> None:
        """Accept the next `times` calls of `kind` (they count as sent) but answer 200 with an unparseable body,
        as the Messaging API once did."""
        self.garbled[kind] = self.garbled.get(kind, 0) + times

    def recover(self) -> None:
        self.failures.clear()
        self.always.clear()
        self.garbled.clear()
        self.delay_seconds = 0.0

    def reset(self) -> None:
        self.recover()
        self.calls.clear()
        self.accepted_retry_keys.clear()
        self.used_reply_tokens.clear()
        self.link_tokens.clear()

    def of(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]

    def sent(self) -> list[Call]:
        """Messages LINE accepted (answered 200)."""
        return [c for c in self.calls if c.kind in ("reply", "push") and c.status == 200]

    # -- the server --------------------------------------------------------------------------------

    def _failure(self, kind: str) -> int | None:
        if kind in self.always:
            return self.always[kind]
        queued = self.failures.get(kind)
        return queued.pop(0) if queued else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        raw = await request.read()
        kind = _kind(request.method, path)
        try:
            body: Any = json.loads(raw) if raw and request.content_type == "application/json" else raw
        except ValueError:
            body = raw
        headers = {k.lower(): v for k, v in request.headers.items()}
        call = Call(kind, request.method, path, headers, body)
        self.calls.append(call)
        if self.delay_seconds and kind in ("push", "reply"):
            await asyncio.sleep(self.delay_seconds)
        if headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._answer(call, 401, {"message": "Authentication failed"})
        status = self._failure(kind)
        if status is not None:
            extra = {"Retry-After": "1"} if status == 429 else {}
            return self._answer(call, status, {"message": "fake failure"}, extra)
        if kind == "push":
            key = headers.get("x-line-retry-key")
            if key and key in self.accepted_retry_keys:
                return self._answer(call, 409, {"message": "The retry key is already accepted"})
            if key:
                self.accepted_retry_keys.add(key)
            return self._answer(call, 200, {"sentMessages": [{"id": "1", "quoteToken": "q"}]})
        if kind == "reply":
            token = (body or {}).get("replyToken")
            if not token or token in self.used_reply_tokens:
                return self._answer(call, 400, {"message": "Invalid reply token"})
            self.used_reply_tokens.add(token)
            return self._answer(call, 200, {"sentMessages": [{"id": "1", "quoteToken": "q"}]})
        if kind == "link_token":
            token = uuid.uuid4().hex
            self.link_tokens.append(token)
            return self._answer(call, 200, {"linkToken": token})
        if kind == "rich_menu_create":
            return self._answer(call, 200, {"richMenuId": "richmenu-" + uuid.uuid4().hex})
        if kind in ("rich_menu_image", "rich_menu_default"):
            return self._answer(call, 200, {})
        return self._answer(call, 404, {"message": "Not found"})

    def _answer(
        self, call: Call, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        call.status = status
        if status == 200 and self.garbled.get(call.kind, 0) > 0:
            self.garbled[call.kind] -= 1
            return web.Response(
                body=b'{"sentMessages": [\xff\xfe not json', status=200, content_type="application/json"
            )
        return web.json_response(body, status=status, headers=headers)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[FakeLine]:
        fake = cls(port=_free_port())
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", fake.port)
        await site.start()
        try:
            yield fake
        finally:
            await runner.cleanup()


def _kind(method: str, path: str) -> str:
    if method == "POST" and path == "/v2/bot/message/reply":
        return "reply"
    if method == "POST" and path == "/v2/bot/message/push":
        return "push"
    if method == "POST" and path.startswith("/v2/bot/user/") and path.endswith("/linkToken"):
        return "link_token"
    if method == "POST" and path == "/v2/bot/richmenu":
        return "rich_menu_create"
    if method == "POST" and path.startswith("/v2/bot/richmenu/") and path.endswith("/content"):
        return "rich_menu_image"
    if method == "POST" and path.startswith("/v2/bot/user/all/richmenu/"):
        return "rich_menu_default"
    return "other"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- signed webhook payloads, as LINE sends them ------------------------------------------------------

CHANNEL_SECRET = "fake-line-channel-secret-0123456789"
BOT_USER_ID = "U" + "b" * 32


def sign(body: bytes, secret: str = CHANNEL_SECRET) -> str:
    import base64
    import hashlib
    import hmac

    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def line_user_id() -> str:
    return "U" + uuid.uuid4().hex


def event(
    kind: str, user: str, *, age_seconds: float = 0.0, redelivery: bool = False, **extra: Any
) -> dict[str, Any]:
    from tests.clock import suite_clock

    body: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int((suite_clock().now().timestamp() - age_seconds) * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": "01" + uuid.uuid4().hex[:24].upper(),
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind != "unfollow":
        body["replyToken"] = uuid.uuid4().hex
    body.update(extra)
    return body


def text_event(user: str, text: str, **kw: Any) -> dict[str, Any]:
    return event(
        "message",
        user,
        message={"id": "1" + uuid.uuid4().hex[:10], "type": "text", "text": text, "quoteToken": "q"},
        **kw,
    )


def postback_event(user: str, data: str, **kw: Any) -> dict[str, Any]:
    return event("postback", user, postback={"data": data}, **kw)


def account_link_event(user: str, nonce: str, result: str = "ok", **kw: Any) -> dict[str, Any]:
    return event("accountLink", user, link={"result": result, "nonce": nonce}, **kw)


def payload(*events: dict[str, Any], destination: str = BOT_USER_ID) -> bytes:
    # ensure_ascii=False and LINE's compact separators: the bytes differ from a re-serialised copy.
    return json.dumps(
        {"destination": destination, "events": list(events)}, ensure_ascii=False, separators=(",", ":")
    ).encode()
