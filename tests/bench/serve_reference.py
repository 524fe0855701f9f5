"""A benchmark's reference app served as `madoguchi serve` serves madoguchi: the same uvicorn settings (asyncio
loop, TCP_NODELAY on every connection) and, with several workers, a listening socket per worker
(infra/listener.py). Started by tests/bench/bench_me.py `uvicorn_argv`; not a pytest module.

    .venv/bin/python tests/bench/serve_reference.py bare_app:app --port 8001 --workers 2 --app-dir tests/bench
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("app", help="module:attribute of the ASGI app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app-dir", type=Path, default=None)
    args = parser.parse_args()
    # The workers are spawned processes: they start with this process's import path.
    sys.path[:0] = [str(p) for p in (args.app_dir, ROOT) if p is not None]

    import uvicorn

    from infra.cli import SERVED_LOOP
    from infra.listener import serve_config

    serve_config(
        uvicorn.Config(
            args.app,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop=SERVED_LOOP,
            http="api.server:NoDelayHttpToolsProtocol",  # TCP_NODELAY, as madoguchi's own protocol
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
        )
    )


if __name__ == "__main__":
    main()
