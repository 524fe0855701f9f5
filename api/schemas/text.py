"""The one way text enters the service. Every string of every request body, form field, query and path
parameter is `Annotated[str, SingleLine(...)]`, `Annotated[str, MultiLine(...)]`, a `Secret` or an `Email`
(tests/api/test_text_input.py sends a NUL to each string of each operation of the OpenAPI document).

* Control characters (NUL first: PostgreSQL cannot store it) and lone surrogates are refused with a 422
  problem whose `errors[].loc` names the field and whose `type` is `bad_character`. Tab, CR and LF are
  allowed in multi-line text only; CRLF and CR are stored as LF.
* What passes is kept as written (domain/text.py): no NFKC, so ①, ㈱, （続報） and ～！ stay as typed.
* Identifiers that are compared are folded here, the same way on every route that takes them: an e-mail
  address typed ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ registers, resets and signs in as taro@example.jp.

The limits are part of the rule (not separate `StringConstraints`), so they apply to the cleaned text and
keep pydantic's usual error types (`string_too_long`, `string_pattern_mismatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, EmailStr, GetCoreSchemaHandler, StringConstraints
from pydantic_core import PydanticCustomError, core_schema

from domain.text import as_written_line, as_written_multiline, bad_character, normalise_email

BAD_CHARACTER = "bad_character"
# No control characters (Unicode Cc); multi-line text keeps tab, LF and CR.
SINGLE_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
MULTI_LINE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


@dataclass(frozen=True, slots=True)
class _Text:
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    multiline: bool = False
    trim: bool = True

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = handler(source)
        if inner["type"] == "str":
            limits = {"min_length": self.min_length, "max_length": self.max_length, "pattern": self.pattern}
            inner = {**inner, **{k: v for k, v in limits.items() if v is not None}, "strip_whitespace": False}
        elif self.min_length is not None or self.max_length is not None or self.pattern is not None:
            raise TypeError(f"text limits apply to str, not {source!r}")
        return core_schema.no_info_before_validator_function(self.clean, inner)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> dict[str, Any]:
        """The contract says what clean() refuses, so clients and fuzzers know a control character is
        invalid input (an explicit pattern, as for codes, already excludes them)."""
        json_schema: dict[str, Any] = handler(schema)
        for branch in json_schema.get("anyOf", [json_schema]):  # `str | None` too
            if branch.get("type") == "string" and "pattern" not in branch:
                branch["pattern"] = MULTI_LINE_PATTERN if self.multiline else SINGLE_LINE_PATTERN
        return json_schema

    def clean(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the schema underneath gives the usual type error
        if bad_character(value, multiline=self.multiline) is not None:
            raise PydanticCustomError(
                BAD_CHARACTER,
                "Control characters are not allowed here" + ("" if self.multiline else " (one line only)"),
            )
        if not self.trim:
            return value
        return as_written_multiline(value) if self.multiline else as_written_line(value)


@dataclass(frozen=True, slots=True)
class SingleLine(_Text):
    """Names, titles, codes, tokens, URLs, query and path values: one line, surrounding spaces trimmed."""


@dataclass(frozen=True, slots=True)
class MultiLine(_Text):
    """Narratives, messages, notes, answers: tab and line breaks allowed; blank lines before the text and
    blank space after it dropped; the first line's indentation (字下げ) kept."""

    multiline: bool = True


@dataclass(frozen=True, slots=True)
class Secret(_Text):
    """Passwords: no control characters, otherwise every character as typed (spaces too); infra/passwords.py
    folds them with NFKC because a password is matched."""

    trim: bool = False


SingleLineText = Annotated[str, SingleLine()]
MultiLineText = Annotated[str, MultiLine()]

# Stable machine codes (categories, platforms, channels …): ASCII, compared exactly.
Code = Annotated[str, SingleLine(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]

# An e-mail address typed on a Japanese keyboard (ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ) is the address taro@example.jp:
# folded (domain/text.py) before it is checked, so register, reset, sign-in and invitations agree.
Email = Annotated[
    EmailStr,
    StringConstraints(max_length=254),
    BeforeValidator(lambda v: normalise_email(v) if isinstance(v, str) else v),
    SingleLine(),
]
