"""Where `madoguchi serve --workers N` listens: one address, a socket per worker (SO_REUSEPORT)."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

STARTUP_FAILURE = 3  # uvicorn's exit status when the app does not start


def serve_config(config: uvicorn.Config) -> None:
    """Runs `config` as `uvicorn.run` would, except that several workers listen each on a socket of its own
    (`WorkerListener`) under uvicorn's supervisor (restarts, signals), where `uvicorn.run` gives them one
    shared socket. The benchmarks' reference apps are served through here too (tests/bench/bench_me.py)."""
    if config.workers == 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    log = logging.getLogger("uvicorn.error")  # where uvicorn says where it listens
    try:
        listener = WorkerListener.reserve(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        sys.exit(STARTUP_FAILURE)
    port = listener.getsockname()[1]
    log.info("listening on http://%s:%d, %d workers with a socket each", config.host, port, config.workers)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[listener]).run()


class WorkerListener(socket.socket):
    """The address `madoguchi serve --workers N` listens on, reserved by the supervisor and listened on by
    each worker through a socket of its own, all with SO_REUSEPORT: the kernel then spreads new connections
    over the workers by their addresses. On one socket shared by all workers (uvicorn's way), the worker
    that woke first accepted every connection waiting: at 4 connections on 2 workers, three runs in five
    put all four on one worker while the other idled (the consulter's read: p99 15 ms).

    The supervisor binds but never listens, so it is handed no connection; each worker gets, in place of
    this socket (uvicorn passes its sockets to the worker processes it spawns, by pickling), a new one bound
    to the same address (`_worker_socket`), on which asyncio listens. A worker that dies takes only the
    connections its own socket had queued; the supervisor starts another in its place."""

    @classmethod
    def reserve(cls, host: str, port: int) -> WorkerListener:
        listener = cls(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        _share_address(listener)
        listener.bind((host, port))
        return listener

    def __reduce__(self) -> tuple[object, tuple[int, str, int]]:
        host, port = self.getsockname()[:2]
        return _worker_socket, (int(self.family), host, port)


def _share_address(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def _worker_socket(family: int, host: str, port: int) -> socket.socket:
    """A worker's own socket on the supervisor's address (unpickled in the worker process)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    _share_address(sock)
    sock.bind((host, port))
    return sock
