"""Structured JSON logs, one object a line on stderr (README "Operations: metrics, traces, logs").

Everything goes through one stdlib handler whose formatter is structlog's: the module loggers
(`logging.getLogger("madoguchi.*")`, their `extra=` fields become keys), structlog's own loggers (`log()`), and
the libraries' lines (uvicorn, alembic) all come out in the same shape: `timestamp`, `level`, `logger`,
`event` and the fields. Callers log ids, codes, kinds and durations only: never e-mail, names, text, tokens,
evidence URLs, bodies, query strings or SQL parameters (tests/test_logs_carry_no_personal_data.py and the
suite-wide check in tests/conftest.py plant such values and scan every line).
"""

from __future__ import annotations

import datetime
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import structlog
from structlog.typing import EventDict

_HANDLER_MARK = "_madoguchi_json"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _timestamp(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # Deliberately the wall clock, not the injected Clock: a log line says when it was written, also while a
    # test pins the service's time, so an operator can line it up with other systems' logs.
    event["timestamp"] = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    return event


# Shared by structlog's loggers and by stdlib records (foreign_pre_chain), so both carry the same keys.
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    _timestamp,
]


class JsonLines:
    """Where structlog's loggers write: one rendered JSON object a line on the current stderr. `taps` see
    every line first (the test suite's personal-data check). Cheaper than a stdlib handler: the request line
    costs about a quarter of a stdlib record's formatting (README "Operations")."""

    taps: list[Callable[[str], None]] = []
    _lock = threading.Lock()

    def msg(self, message: str) -> None:
        for tap in self.taps:
            tap(message)
        with self._lock:
            sys.stderr.write(message + "\n")

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


SINK = JsonLines()


def _drop_terminal_colours(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """uvicorn passes a copy of its message with ANSI colour codes (`color_message`) for terminals."""
    event.pop("color_message", None)
    return event


def json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        foreign_pre_chain=[
            *_SHARED,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_terminal_colours,
        ],
    )


def _configure_structlog(level: str) -> None:
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        logger_factory=lambda *_args: SINK,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level.upper(), 20)),
        cache_logger_on_first_use=True,
    )


_configure_structlog("INFO")


def configure_logging(level: str = "INFO") -> None:
    """Idempotent: a second call (every create_app) replaces only the handler the first one added, so
    handlers others put on the root logger (pytest's capture, the suite's personal-data check) stay."""
    _configure_structlog(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, _HANDLER_MARK, False)] + [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers hand their lines to the root handler (uvicorn runs with log_config=None, infra/cli.py).
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    # uvicorn's access log is replaced by the request line (api/middleware.py): it carries the client's address
    # and the query string.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # SQLAlchemy's echo would print statement parameters (personal data); keep it quiet.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # At DEBUG the SQLite driver logs every statement with its parameters (letters, narratives), and
    # fontTools lists the glyphs a PDF keeps (the set of characters of a letter).
    # fpdf2 warns with the characters a font lacks.
    for name in ("aiosqlite", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("fpdf").setLevel(logging.ERROR)


def log(name: str) -> Any:
    """A structlog logger writing JSON lines: `log("madoguchi.request").info("request", route=..., ...)`."""
    return structlog.get_logger().bind(logger=name)
