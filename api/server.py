"""The HTTP/1.1 protocol uvicorn serves the app with: uvicorn's httptools protocol, with a bound on the request
head (request line and headers) that uvicorn itself does not have.

httptools buffers a header until it ends, so without a bound a client can make one worker hold megabytes per
connection (the probe sent a 4 MB header and 20,000 headers and was answered 200). Here the head is measured
while it arrives: past MADOGUCHI_MAX_HEADER_BYTES, or more than MADOGUCHI_MAX_HEADERS headers, the connection is
answered 431 (an RFC 9457 problem) and closed before the app runs. EdgeMiddleware checks the same limits again
for any other server the app is run under (`uvicorn --http h11` has its own 16 KiB bound and answers 400).

Every connection also gets TCP_NODELAY (`NoDelayHttpToolsProtocol`): asyncio sets it only on sockets whose
protocol number says TCP, and the listening sockets `madoguchi serve` binds (infra/listener.py, like uvicorn's
own) say 0, so there every response written in two segments (head, then body) waited for the client's delayed
acknowledgement: 40 ms per request (a bare endpoint at 4 connections, 2 workers: 90 req/s, p50 44 ms)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import uuid

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import DEFAULT_CODES, TITLES
from infra.settings import Settings


@functools.cache
def limits() -> tuple[int, int]:
    """(bytes of the request head, number of headers), read once per worker process."""
    settings = Settings()
    return settings.max_header_bytes, settings.max_headers


def header_problem() -> bytes:
    """The 431 response, written straight to the socket (there is no request to hand the app)."""
    request_id = uuid.uuid4().hex
    body = json.dumps(
        {
            "type": "about:blank",
            "title": TITLES[431][0],
            "status": 431,
            "code": DEFAULT_CODES[431],
            "request_id": request_id,
        },
        ensure_ascii=False,
    ).encode()
    head = [
        b"HTTP/1.1 431 Request Header Fields Too Large",
        b"content-type: application/problem+json",
        b"content-length: %d" % len(body),
        b"connection: close",
        b"cache-control: no-store",
        b"x-content-type-options: nosniff",
        b"x-request-id: " + request_id.encode(),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing; uvicorn then calls send_400_response, answered 431."""


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response at once (no Nagle delay)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # a peer already gone: the protocol finds out as it reads
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


class BoundedHttpToolsProtocol(NoDelayHttpToolsProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0  # counted exactly from the parsed request line and headers
        self._head_count = 0
        self._raw_bytes = 0  # counted from the socket while a head is incomplete (bounds one long header)
        self._in_head = True
        self._began_now = False
        self._too_large = False

    # Parser callbacks (httptools calls on_header with the whole name and value).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_count = self._raw_bytes = 0
        self._in_head, self._began_now = True, True

    def on_url(self, url: bytes) -> None:
        self._spend(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._spend(len(name) + len(value) + 4, 1)  # "name: value\r\n"
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _spend(self, size: int, headers: int) -> None:
        max_bytes, max_headers = limits()
        self._head_bytes += size
        self._head_count += headers
        if self._head_bytes > max_bytes or self._head_count > max_headers:
            self._too_large = True
            raise HeadersTooLarge

    def data_received(self, data: bytes) -> None:
        self._began_now = False
        super().data_received(data)
        if self._too_large or self.transport.is_closing() or not self._in_head:
            return
        # Still inside a head: count what came. The chunk in which a message began is left out (it may hold
        # the end of the previous message's body), so the bound is the limit plus one read, never more.
        if not self._began_now:
            self._raw_bytes += len(data)
        if self._raw_bytes > limits()[0]:
            self._too_large = True
            self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        self.transport.write(header_problem())
        self.transport.close()
