"""Shared schema pieces: strict input base, problem document, pages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic_core import PydanticCustomError

T = TypeVar("T")


class Input(BaseModel):
    """Every request body: unknown fields are an error (no mass assignment). Every string field is one of the
    text types of api/schemas/text.py, which refuse control characters and say how the text is trimmed."""

    model_config = ConfigDict(extra="forbid")


_A_NUMBER = re.compile(r"^\s*[-+]?\d*\.?\d+\s*$")


def _written_as_text(error_type: str) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, date) or (isinstance(value, str) and not _A_NUMBER.match(value)):
            return value  # (a datetime is a date)
        raise PydanticCustomError(error_type, "written as text in ISO 8601")

    return BeforeValidator(check)


# FastAPI validates a body as the Python objects its JSON parsed into, where pydantic's lax mode takes 0 for
# 1970-01-01, 1 or "yes" for true and "12" for 12: input the contract refuses would be accepted. A field of a
# request body says `StrictBool`, `StrictInt`, `Day` or `Moment` instead of bool, int, date or datetime, and
# takes only the JSON type the contract names (tests/api/test_input_types.py walks every body for it). A day
# or a time is ISO 8601 text, in a body or a query: never a number of seconds since 1970 ("0.5").
Day = Annotated[date, _written_as_text("date_type")]
Moment = Annotated[AwareDatetime, _written_as_text("datetime_type")]


def _true_or_false(value: object) -> object:
    if isinstance(value, bool) or value in ("true", "false"):
        return value
    raise PydanticCustomError("bool_type", "true or false")


# A query parameter arrives as text, where pydantic's lax mode takes "1", "yes", "on", "t" and "y" (and their
# opposites) for a boolean: `?urgent=yes` filtered as if the contract allowed it. A boolean query parameter is
# `QueryFlag`: only `true` or `false`, as the contract's `type: boolean` says.
QueryFlag = Annotated[bool, BeforeValidator(_true_or_false)]


def utc_timestamp(value: datetime) -> str:
    """The one form of every timestamp the API sends: ISO 8601 in UTC with `Z`
    (`2026-12-04T08:00:00Z`), whatever offset the value was computed in (due times are computed in JST) and
    whichever database it was read from."""
    if value.tzinfo is None:  # stored as UTC (SQLite keeps no offset)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _in_utc(value: datetime):  # noqa: ANN202
    # No return annotation on purpose: pydantic would take it as the field's serialised type and the contract
    # would lose `format: date-time`.
    return utc_timestamp(value)


# Every timestamp a response carries is this type (`Timestamp`, `Timestamp | None`): serialised by
# `utc_timestamp` only where a timestamp is. A `field_serializer("*", mode="wrap")` on Output did the same for
# every field of every model, a call from pydantic-core into Python per field: 60 % of the JSON encoding of a
# 50-case queue page (3.8 ms of 4.4 ms in a micro-benchmark of the page; 0.9 ms with this type).
Timestamp = Annotated[datetime, PlainSerializer(_in_utc, when_used="json")]


def _bare_datetime(annotation: Any) -> bool:
    """A `datetime` in this annotation (or in its union) that is not a `Timestamp`."""
    if annotation is datetime:
        return True
    if get_origin(annotation) is Annotated:
        return False  # a Timestamp (or another annotated type that says how it serialises)
    return any(_bare_datetime(a) for a in get_args(annotation))


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A response model with a plain `datetime` field fails at import: it would be sent with its own offset
        (`+09:00`) or none at all (SQLite) instead of UTC with `Z`."""
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            serialised = any(isinstance(m, PlainSerializer) for m in info.metadata)
            if not serialised and _bare_datetime(info.annotation):
                raise TypeError(f"{cls.__name__}.{name}: a response timestamp is `Timestamp`, not `datetime`")


class ValidationIssue(BaseModel):
    loc: list[str]
    type: str
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "/v1/problems/validation_failed",
                    "title": "入力内容に誤りがあります",
                    "status": 422,
                    "code": "validation_failed",
                    "instance": "/v1/auth/register",
                    "request_id": "3f0c2a9e8b6d4e0f9a1b2c3d4e5f6a7b",
                    "errors": [
                        {"loc": ["body", "email"], "type": "value_error", "msg": "値が正しくありません"}
                    ],
                }
            ]
        }
    )

    type: str = Field(description="/v1/problems/{code}: the catalogue entry of this code")
    title: str = Field(description="For people: Japanese, or English when Accept-Language prefers it")
    status: int
    code: str = Field(description="Stable machine-readable code; the catalogue is GET /v1/problems")
    instance: str = Field(description="The request path")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it when reporting a problem")
    detail: str | None = None
    errors: list[ValidationIssue] | None = Field(default=None, description="validation_failed: each problem")
    field: str | None = Field(default=None, description="The input field a domain check refused")
    fields: list[str] | None = Field(
        default=None, description="unknown_query_parameter: every such parameter"
    )
    reasons: list[str] | None = Field(
        default=None, description="Why, as codes (e.g. why an upload was refused)"
    )
    position: int | None = Field(default=None, description="Which step of a chart walk was refused")
    current_terms_version: str | None = Field(
        default=None, description="terms_outdated: the terms version to show and agree to"
    )


class ProblemTypeOut(Output):
    """An entry of the error-code catalogue: what a problem's `type` URI resolves to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "stale_version",
                    "type": "/v1/problems/stale_version",
                    "status": 412,
                    "title_ja": "ほかの更新が先に行われました",
                    "title_en": "Someone changed it first",
                    "meaning": "The ETag sent in If-Match is not the current one: reload, reapply the change and "
                    "send the new ETag.",
                }
            ]
        }
    )

    code: str
    type: str
    status: int
    title_ja: str
    title_en: str
    meaning: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null at the end."
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Missing, invalid, expired or revoked token",
        403: "The role or scope may not do this",
        404: "No such object, or not visible to the caller",
        409: "Conflicts with the current state",
        410: "It existed and is no more",
        412: "The If-Match ETag is stale",
        413: "Body too large",
        415: "Unsupported content type",
        422: "Invalid input",
        428: "If-Match is required",
        429: "Too many attempts; see Retry-After",
        503: "Temporarily unavailable; see Retry-After",
    }
    return {s: {"model": Problem, "description": descriptions.get(s, "Error")} for s in statuses}
