"""When a failed piece of queued work (an outbox row, a LINE event, a LINE delivery) is tried again, or given up.

One policy for every work queue: the wait doubles with each failed attempt from `base_seconds` up to
`cap_seconds`, a server's Retry-After is honoured (up to an hour), and after `max_attempts` failures, or a
failure that cannot succeed on a retry, the work is given up (a dead letter its queue keeps). A pure function
of the attempt count: the caller adds the wait to its own clock's now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

RETRY_AFTER_CAP_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    cap_seconds: float

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure."""
        return timedelta(seconds=min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))

    def after_failure(
        self, attempts: int, *, retryable: bool = True, retry_after: float | None = None
    ) -> timedelta | None:
        """After the `attempts`-th failure: how long to wait before the next try, or None when the work is
        given up (attempts ran out, or the failure is one a retry cannot mend)."""
        if not retryable or attempts >= self.max_attempts:
            return None
        wait = self.backoff(attempts)
        if retry_after is not None:
            wait = max(wait, timedelta(seconds=min(RETRY_AFTER_CAP_SECONDS, retry_after)))
        return wait


# The queues' parameters, side by side (the numbers come from settings where an operator may tune them).
OUTBOX_BASE_SECONDS, OUTBOX_CAP_SECONDS = 10.0, 3600.0
LINE_CAP_SECONDS = 600.0  # a LINE message later than that is hardly worth a faster retry
LINE_INBOX_MAX_ATTEMPTS = 5


def outbox_policy(max_attempts: int) -> RetryPolicy:
    """Mail and notices: 10 s, doubling, at most an hour apart."""
    return RetryPolicy(max_attempts, OUTBOX_BASE_SECONDS, OUTBOX_CAP_SECONDS)


def line_inbox_policy(base_seconds: float) -> RetryPolicy:
    """A LINE event that could not be answered; dropped after the fifth try."""
    return RetryPolicy(LINE_INBOX_MAX_ATTEMPTS, base_seconds, LINE_CAP_SECONDS)


def line_delivery_policy(max_attempts: int, base_seconds: float) -> RetryPolicy:
    """A LINE reply or push; a dead letter after the last try."""
    return RetryPolicy(max_attempts, base_seconds, LINE_CAP_SECONDS)
