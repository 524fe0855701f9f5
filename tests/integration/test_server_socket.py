"""Responses leave at once: every connection the served protocol accepts has TCP_NODELAY.

`madoguchi serve --workers N` serves on the standard asyncio loop (infra/cli.py), each worker on a listening socket
bound as uvicorn binds one (infra/listener.py). asyncio sets TCP_NODELAY only on sockets whose protocol number says
TCP, and such a socket says 0: without the protocol's own setting, each response written in two segments waited for
the client's delayed acknowledgement (40 ms per request at low load).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.server import BoundedHttpToolsProtocol


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _nodelay_of_an_accepted_connection(protocol: type[HttpToolsProtocol]) -> int:
    config = uvicorn.Config(
        _hello, host="127.0.0.1", port=0, http=protocol, loop="asyncio", lifespan="off", log_config=None
    )
    shared = config.bind_socket()  # bound as the served sockets are (protocol number 0)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[shared]))
    try:
        async with asyncio.timeout(10):
            for _ in range(1000):  # uvicorn's Server says it has started with a flag, not an event
                if server.started:
                    break
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection(*shared.getsockname()[:2])
            writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            await writer.drain()
            assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
            (connection,) = server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")
            value = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writer.close()
            await writer.wait_closed()
            return int(value)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        shared.close()


async def test_connections_on_a_socket_shared_by_workers_send_without_delay() -> None:
    assert await _nodelay_of_an_accepted_connection(BoundedHttpToolsProtocol) == 1


async def test_the_setup_reproduces_what_plain_uvicorn_does_there() -> None:
    # The same server with uvicorn's own protocol leaves Nagle on: what the test above would not notice
    # if asyncio or uvicorn ever set it themselves (then the protocol's own setting could go).
    assert await _nodelay_of_an_accepted_connection(HttpToolsProtocol) == 0
