"""Shared schema pieces: strict input base, problem document, pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_serializer,
)

T = TypeVar("T")


class Input(BaseModel):
    """Every request body: unknown fields are an error (no mass assignment). Every string field is one of the
    text types of api/schemas/text.py, which refuse control characters and say how the text is trimmed."""

    model_config = ConfigDict(extra="forbid")


def utc_timestamp(value: datetime) -> str:
    """The one form of every timestamp the API sends: ISO 8601 in UTC with `Z`
    (`2026-12-04T08:00:00Z`), whatever offset the value was computed in (due times are computed in JST) and
    whichever database it was read from."""
    if value.tzinfo is None:  # stored as UTC (SQLite keeps no offset)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    # No return annotation on purpose: pydantic would take `Any` as every field's serialised type and the
    # contract would lose them all.
    @field_serializer("*", mode="wrap")
    def _timestamps_in_utc(self, value: Any, handler: SerializerFunctionWrapHandler, info: SerializationInfo):  # type: ignore[no-untyped-def]  # noqa: ANN202
        if isinstance(value, datetime) and info.mode == "json":
            return utc_timestamp(value)
        return handler(value)


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
                    "type": "about:blank",
                    "title": "入力内容に誤りがあります",
                    "status": 422,
                    "code": "validation_failed",
                    "instance": "/v1/auth/register",
                    "request_id": "3f0c2a9e8b6d4e0f9a1b2c3d4e5f6a7b",
                    "errors": [
                        {"loc": ["body", "email"], "type": "value_error", "msg": "value is not a valid email"}
                    ],
                }
            ]
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    code: str
    instance: str | None = None
    request_id: str
    detail: str | None = None
    errors: list[ValidationIssue] | None = None


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
        412: "The If-Match ETag is stale",
        413: "Body too large",
        415: "Unsupported content type",
        422: "Invalid input",
        428: "If-Match is required",
        429: "Too many attempts; see Retry-After",
        503: "Temporarily unavailable; see Retry-After",
    }
    return {s: {"model": Problem, "description": descriptions.get(s, "Error")} for s in statuses}
