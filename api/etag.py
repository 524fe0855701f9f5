"""Strong ETags from a version column; If-Match is mandatory on staff updates (RFC 9110 §13.1.1, RFC 6585)."""

from __future__ import annotations

import re

from domain.errors import PreconditionFailed, PreconditionRequired

_ETAG = re.compile(r'^"v(\d{1,12})"$')


def etag_of(version: int) -> str:
    return f'"v{version}"'


def parse_if_match(value: str | None) -> int:
    if value is None or not value.strip():
        raise PreconditionRequired("if_match_required")
    match = _ETAG.match(value.strip())
    if match is None:
        raise PreconditionFailed("stale_version")
    return int(match.group(1))
