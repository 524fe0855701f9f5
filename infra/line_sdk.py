"""The Messaging API through line-bot-sdk (the only module that imports it, with the webhook's signature check
in infra/line_webhook.py). Errors become LineCallFailed carrying only the status: the SDK's exception text
includes response headers and bodies (link tokens among them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from infra.settings import Settings

if TYPE_CHECKING:
    from linebot.v3.messaging import AsyncApiClient

# The SDK (and aiohttp under it) is imported when a channel is configured (LineApi below), not with this module:
# importing it took about 40 % of the container's import time, paid by every process that never talks to LINE
# (the CLI commands, a worker or an app without a channel). With a channel it is imported as the client is built,
# as before, so a first delivery never pays for it while it holds its lease.

# The SDK logs response bodies at DEBUG (link tokens among them): keep it quiet whatever the root level.
logging.getLogger("linebot").setLevel(logging.WARNING)


class LineCallFailed(Exception):
    """A Messaging API call failed. `status` 0 means no HTTP answer (network, timeout)."""

    def __init__(self, status: int, retry_after: float | None = None, *, code: str | None = None) -> None:
        super().__init__(f"line_http_{status}")
        self.status = status
        self.retry_after = retry_after
        self._code = code

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def code(self) -> str:
        if self._code is not None:
            return self._code
        return "network" if self.status == 0 else f"http_{self.status}"

    @property
    def outcome_unknown(self) -> bool:
        """No HTTP answer: LINE may or may not have acted on the call."""
        return self.status == 0


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class LineApi:
    """line-bot-sdk's async client at a configurable base URL. Errors become LineCallFailed carrying only the
    status: the SDK's exception text includes response headers and bodies."""

    def __init__(self, settings: Settings) -> None:
        token = settings.line_channel_access_token
        self.token = token.get_secret_value() if token else ""
        self.host = settings.line_api_base_url.rstrip("/")
        self.data_host = settings.line_data_api_base_url.rstrip("/")
        self.timeout = settings.line_request_timeout_seconds
        self._clients: dict[str, AsyncApiClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http_client: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        if self.token:
            import aiohttp  # noqa: F401
            import linebot.v3.messaging  # noqa: F401
            import linebot.v3.messaging.exceptions  # noqa: F401

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def _client(self, host: str) -> AsyncApiClient:
        # aiohttp sessions belong to the loop they were made on; the CLI and tests may run several loops.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._clients = {}
            self._loop = loop
        if host not in self._clients:
            from linebot.v3.messaging import AsyncApiClient, Configuration

            self._clients[host] = AsyncApiClient(Configuration(host=host, access_token=self.token))
        return self._clients[host]

    async def close(self) -> None:
        clients, self._clients, self._loop = self._clients, {}, None
        http, self._http_client, self._http_loop = self._http_client, None, None
        if http is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                await http.aclose()
        for client in clients.values():
            with contextlib.suppress(Exception):  # closing is best effort
                await client.close()

    async def _call(self, make: Any) -> Any:
        import aiohttp
        from linebot.v3.messaging.exceptions import ApiException

        try:
            return await make()
        except ApiException as exc:
            raise LineCallFailed(int(exc.status or 0), _retry_after(exc.headers)) from None
        except (aiohttp.ClientError, TimeoutError, OSError):
            raise LineCallFailed(0) from None
        except Exception as exc:  # noqa: BLE001 - whatever the SDK raises, the call's outcome is unknown
            raise LineCallFailed(0, code=f"unexpected_{type(exc).__name__}"[:64]) from None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http_loop is not loop or self._http_client is None:
            self._http_client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
            self._http_loop = loop
        return self._http_client

    async def _send(self, path: str, request: Any, headers: dict[str, str]) -> None:
        """POST a message request; the HTTP status alone decides. The answer's body is never parsed: a 2xx
        means LINE took the message, whatever it wrote back (through the SDK, a 2xx body it could not parse
        made a sent message look failed, and it was sent again and again)."""
        try:
            response = await self._http().post(
                self.host + path,
                content=request.to_json(),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    **headers,
                },
            )
        except httpx.TransportError:
            raise LineCallFailed(0) from None
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the call's outcome is unknown
            raise LineCallFailed(0, code=f"unexpected_{type(exc).__name__}"[:64]) from None
        if not 200 <= response.status_code < 300:
            raise LineCallFailed(response.status_code, _retry_after(response.headers))

    async def reply(self, reply_token: str, messages: Sequence[dict[str, Any]]) -> None:
        from linebot.v3.messaging import Message, ReplyMessageRequest

        request = ReplyMessageRequest(
            reply_token=reply_token, messages=[Message.from_dict(m) for m in messages]
        )
        await self._send("/v2/bot/message/reply", request, {})

    async def push(self, to: str, messages: Sequence[dict[str, Any]], retry_key: str) -> None:
        from linebot.v3.messaging import Message, PushMessageRequest

        request = PushMessageRequest(to=to, messages=[Message.from_dict(m) for m in messages])
        await self._send("/v2/bot/message/push", request, {"X-Line-Retry-Key": retry_key})

    async def issue_link_token(self, line_user_id: str) -> str:
        from linebot.v3.messaging import AsyncMessagingApi

        api = AsyncMessagingApi(self._client(self.host))
        response = await self._call(lambda: api.issue_link_token(line_user_id, _request_timeout=self.timeout))
        return str(response.link_token)

    async def create_rich_menu(self, request: dict[str, Any]) -> str:
        from linebot.v3.messaging import AsyncMessagingApi, RichMenuRequest

        api = AsyncMessagingApi(self._client(self.host))
        body = RichMenuRequest.from_dict(request)
        response = await self._call(lambda: api.create_rich_menu(body, _request_timeout=self.timeout))
        return str(response.rich_menu_id)

    async def set_rich_menu_image(self, rich_menu_id: str, png: bytes) -> None:
        from linebot.v3.messaging import AsyncMessagingApiBlob

        blob = AsyncMessagingApiBlob(self._client(self.data_host))
        await self._call(
            lambda: blob.set_rich_menu_image(
                rich_menu_id, png, _headers={"Content-Type": "image/png"}, _request_timeout=self.timeout
            )
        )

    async def set_default_rich_menu(self, rich_menu_id: str) -> None:
        from linebot.v3.messaging import AsyncMessagingApi

        api = AsyncMessagingApi(self._client(self.host))
        await self._call(lambda: api.set_default_rich_menu(rich_menu_id, _request_timeout=self.timeout))
