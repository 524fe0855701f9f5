"""The suite-wide personal-data check on logs (issue 19 item 6).

Every line the code logs during the run, through structlog's JSON lines (infra.logging.SINK) or any stdlib
logger (a handler on the root logger, rendered by the production formatter), and the stderr of the servers the
e2e tests start, is scanned for what must never be logged: e-mail addresses, bearer tokens (JWTs), the suite's
password and texts the tests write as consulters (the intake example's narrative, planted markers). A finding
fails the run at its end (tests/conftest.py), naming the test that was running. The scan is a few regular
expressions and substring checks per line: a second or so over the whole suite.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
# Addresses the code may name in a log line because they are configuration, not a person's.
ALLOWED_EMAILS = frozenset({"no-reply@madoguchi.invalid"})


@dataclass
class LogGuard:
    markers: set[str] = field(default_factory=set)
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    current: str = "<session start>"
    lines: int = 0

    def plant(self, *values: str) -> None:
        """Values a test wrote as personal data: none may appear in any log line from now on."""
        self.markers.update(v for v in values if v)

    def scan(self, line: str) -> None:
        self.lines += 1
        for found in EMAIL.findall(line):
            if found not in ALLOWED_EMAILS:
                self.findings.append((self.current, "e-mail address", line[:300]))
                return
        if JWT.search(line):
            self.findings.append((self.current, "token", line[:300]))
            return
        for marker in self.markers:
            if marker in line:
                self.findings.append((self.current, f"planted value {marker[:24]!r}", line[:300]))
                return

    def handler(self) -> logging.Handler:
        from infra.logging import json_formatter

        guard = self

        class Scanner(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    guard.scan(self.format(record))
                except Exception:  # noqa: BLE001 - a record that cannot be formatted is scanned raw
                    guard.scan(f"{record.msg!r} {record.args!r} {record.__dict__!r}")

        scanner = Scanner(level=logging.NOTSET)
        scanner.setFormatter(json_formatter())
        return scanner


GUARD = LogGuard()
