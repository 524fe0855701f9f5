"""Domain errors carry a stable machine code; the API layer maps each class to an HTTP status."""

from __future__ import annotations

import math
from dataclasses import dataclass


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, code: str | None = None, detail: str | None = None, **extra: object) -> None:
        self.code = code or type(self).code
        self.detail = detail
        # Extra members for the problem body; never put submitted values or personal data here.
        self.extra = extra
        super().__init__(self.code)


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Gone(DomainError):
    """It existed and is no more (a downloaded or expired export): 410."""

    code = "gone"


class InvalidState(Conflict):
    code = "invalid_state"


class ValidationFailed(DomainError):
    code = "validation_failed"


class MalformedRequest(DomainError):
    """The request itself is malformed (a header that does not follow its grammar): 400, not 422."""

    code = "bad_request"


class QuotaExceeded(DomainError):
    """Accepting this would store more than the service holds for one consultation or one person: 413."""

    code = "quota_exceeded"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, retry_after: float, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after = max(1, math.ceil(retry_after))  # whole seconds, never sooner than the wait


class Unavailable(DomainError):
    code = "service_unavailable"

    def __init__(self, retry_after: int = 5, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after


class PreconditionFailed(DomainError):
    code = "precondition_failed"


class PreconditionRequired(DomainError):
    code = "precondition_required"


@dataclass(frozen=True)
class ProblemEntry:
    """One entry of the error-code catalogue (domain/knowledge/problems.yaml)."""

    code: str
    status: int
    title_ja: str
    title_en: str
    meaning: str
