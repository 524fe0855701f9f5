"""The one clock of a process. Everything that asks "what time is it" asks the container's clock, so tests can
pin it (tests/clock.py) and nothing depends on the hour, day or time zone a run happens to start in."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
