"""The clock the whole suite runs on. It starts at a pinned instant (`--clock`, or MADOGUCHI_TEST_CLOCK) and
moves on with real elapsed time, so ordering by time and short waits behave as in production while the date,
hour and weekday are those chosen, never those of the machine running the suite. A test that needs an exact
instant sets it and gets the suite's timeline back afterwards (the `clock` fixture). A test that asserts an
exact duration (a Retry-After, an expiry) freezes the clock first: otherwise the real time its requests take
(more than a second on a loaded machine, under `-n 2`) is part of what it measures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from domain.calendar import JST

# A Wednesday morning in Japan, an ordinary business day well away from holidays and the year-end closure.
DEFAULT_INSTANT = datetime(2026, 12, 2, 10, 0, tzinfo=JST)


def parse_instant(text: str) -> datetime:
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError("the pinned instant needs a UTC offset, e.g. 2026-12-01T23:59:00+09:00")
    return instant.astimezone(UTC)


class PinnedClock:
    def __init__(self, start: datetime) -> None:
        self.start = start.astimezone(UTC)
        self._started = time.monotonic()
        self.reset()

    def reset(self) -> None:
        """Back to the suite's own timeline: the pinned start plus the time the suite has run."""
        self._origin, self._since, self._frozen = self.start, self._started, False

    def set(self, instant: datetime) -> None:
        """From now on the clock reads `instant`, then moves on with real time (unless frozen)."""
        self._origin = instant.astimezone(UTC)
        self._since = time.monotonic()

    def freeze(self) -> None:
        """Stop real time: from now on the clock moves only by `advance` and `set`, until `reset`."""
        self.set(self.now())
        self._frozen = True

    def advance(self, delta: timedelta) -> None:
        self._origin += delta

    def now(self) -> datetime:
        if self._frozen:
            return self._origin
        return self._origin + timedelta(seconds=time.monotonic() - self._since)


_suite_start = DEFAULT_INSTANT
_suite_clock = PinnedClock(DEFAULT_INSTANT)


def pin_suite(start: datetime) -> None:
    """Called once when pytest is configured, before test modules are imported."""
    global _suite_start, _suite_clock
    _suite_start, _suite_clock = start, PinnedClock(start)


def suite_start() -> datetime:
    return _suite_start


def suite_clock() -> PinnedClock:
    """The one clock of the run: the apps under test and the fakes that stamp events (the LINE fake) share it."""
    return _suite_clock


def period_around_suite(days: int = 1) -> dict[str, str]:
    """A `from`/`to` query period that holds everything a test creates (the suite runs for minutes)."""
    return {
        "from": (_suite_start - timedelta(days=days)).isoformat(),
        "to": (_suite_start + timedelta(days=days)).isoformat(),
    }


def month_of(instant: datetime) -> dict[str, str]:
    """The `from`/`to` of the calendar month (Japan time) holding `instant`."""
    local = instant.astimezone(JST)
    start = datetime(local.year, local.month, 1, tzinfo=JST)
    end = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=JST)
    return {"from": start.isoformat(), "to": end.isoformat()}


def closed_month_before_suite() -> dict[str, str]:
    """The last month that has ended when the suite starts: what the council's counts accept."""
    first = datetime(_suite_start.astimezone(JST).year, _suite_start.astimezone(JST).month, 1, tzinfo=JST)
    return month_of(first - timedelta(days=1))
