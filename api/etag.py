"""Strong ETags from a version column; If-Match is mandatory on staff updates (RFC 9110 §13.1.1, RFC 6585)."""

from __future__ import annotations

import re

from domain.errors import MalformedRequest, PreconditionFailed, PreconditionRequired

_ETAG = re.compile(r'^"v(\d{1,12})"$')
# One entity-tag as RFC 9110 §8.8.3 writes it: optional W/, then a quoted string of etagc characters.
_ENTITY_TAG_TEXT = r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_ENTITY_TAG = re.compile(f"^{_ENTITY_TAG_TEXT}$")
# What parse_if_match takes, for the contract: one entity-tag or `*`, blanks around it allowed. Anything else
# is refused (400 if_match_malformed or if_match_one_tag, 428 when blank).
IF_MATCH_PATTERN = rf"^[ \t]*(\*|{_ENTITY_TAG_TEXT})[ \t]*$"


def etag_of(version: int) -> str:
    return f'"v{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version the caller expects, or None for `If-Match: *` (any current representation, RFC 9110
    §13.1.1). A value that is not an entity-tag is a malformed request (400), not a stale one. Our resources
    have one current tag, so a list of several is refused as malformed rather than half-understood."""
    if value is None or not value.strip():
        raise PreconditionRequired("if_match_required")
    value = value.strip()
    if value == "*":
        return None
    tags = [t.strip() for t in value.split(",")]
    if not all(_ENTITY_TAG.match(t) for t in tags):
        raise MalformedRequest("if_match_malformed", field="If-Match")
    if len(tags) > 1:
        raise MalformedRequest("if_match_one_tag", field="If-Match")
    match = _ETAG.match(tags[0])  # a weak tag never matches: If-Match uses the strong comparison
    if match is None:
        raise PreconditionFailed("stale_version")
    return int(match.group(1))
