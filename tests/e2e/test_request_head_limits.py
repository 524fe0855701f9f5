"""The real server bounds the request head before the app runs (issue 13, item 8): the probe's 4 MB header and
20,000 headers were answered 200. Raw sockets, so the client sends exactly what an attacker would."""

from __future__ import annotations

import json
import socket
import threading
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e


def exchange(server: str, request: bytes) -> bytes:
    """Send the request (from a thread: the server may close before it has all of it) and read the answer."""
    address = urlsplit(server)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:

        def send() -> None:
            try:
                conn.sendall(request)
            except OSError:
                pass  # closed by the server mid-send: expected for the oversized requests

        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b'"status"' in answer and answer.rstrip().endswith(b"}"):
                    break
        except OSError:
            pass
        sender.join(timeout=20)
    return answer


def status_and_problem(answer: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/problem+json" in head.lower()
    return status, json.loads(body)


# The heads below never end (no blank line): the answer comes while they arrive, so the server never holds
# more than the limit and a read, and the app never sees them. One test, one server start (they are slow).


def test_the_server_answers_431_to_oversized_heads_and_serves_ordinary_requests(server: str) -> None:
    huge_header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 4_000_000
    status, problem = status_and_problem(exchange(server, huge_header))
    assert status == 431 and problem["code"] == "request_header_fields_too_large"
    assert problem["title"] == "リクエストヘッダーが大きすぎます" and problem["request_id"]

    many = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        b"X-P%d: 1\r\n" % i for i in range(20_000)
    )
    status, problem = status_and_problem(exchange(server, many))
    assert status == 431 and problem["code"] == "request_header_fields_too_large"

    long_line = b"GET /healthz?" + b"q" * 100_000
    assert status_and_problem(exchange(server, long_line))[0] == 431

    # A body bigger than the head limit, then a second request on the same connection (pipelined, so both
    # arrive in the same reads): neither is mistaken for an oversized head.
    body = b"username=a%40example.jp&password=" + b"x" * 200_000
    first = (
        b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    second = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + b"t" * 8000 + b"\r\n\r\n"
    answer = b""
    address = urlsplit(server)
    with socket.create_connection((address.hostname, address.port), timeout=20) as conn:
        conn.sendall(first + second)
        while answer.count(b"HTTP/1.1 ") < 2 or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    statuses = [int(part.split(b" ", 1)[0]) for part in answer.split(b"HTTP/1.1 ")[1:]]
    assert len(statuses) == 2 and 431 not in statuses and statuses[1] == 200
