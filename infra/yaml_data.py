"""One YAML reader for the reference data, so a Japanese desk's label never turns into a boolean, and one way
to report what a schema (the pydantic models of each loader) refuses in it.

PyYAML implements YAML 1.1, where `No`, `yes`, `on`, `off`, `y` are booleans and `17:00` is the integer
61200 (base 60). In reference data those are labels and times: `label_en: No` must stay the text "No".
This loader resolves scalars as the YAML 1.2 core schema does: only true/false are booleans, only plain
decimal (or 0x) digits are integers, no base-60 numbers. Dates (2026-12-01) stay dates: the model reads
`checked` and `designated_since` as dates. Everything else is a string.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from domain.languages import split_key

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class ReferenceLoader(yaml.CSafeLoader):
    """SafeLoader with YAML 1.2 core booleans and numbers. The C (libyaml) parser builds the same nodes as
    the Python one, about 7 times faster (0.1 s instead of 0.7 s for the reference data, at every process
    start); scalars are still resolved by the implicit resolvers below."""


ReferenceLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ReferenceLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ReferenceLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
ReferenceLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse reference YAML (raises yaml.YAMLError on broken syntax)."""
    return yaml.load(text, Loader=ReferenceLoader)  # noqa: S506 - a SafeLoader subclass


# -- schemas ----------------------------------------------------------------------------------------------


class Schema(BaseModel):
    """The base of every reference-data schema: unknown keys are refused (a typo is an error, not a silently
    missing field), nothing is coerced (`yes` is not a boolean, `1` not a text), and the result is frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Texted(Schema):
    """An entry with texts per language: each `<name>_<language>` key of a name in `TEXT_NAMES` goes to
    `texts` (a declared field such as `label_ja` keeps its value too), so a further language is only data;
    any other key is refused as unknown. Subclasses may narrow the type of `texts`."""

    TEXT_NAMES: ClassVar[tuple[str, ...]] = ()
    texts: dict[str, str] = {}

    @model_validator(mode="before")
    @classmethod
    def _gather_texts(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "texts" in data:
            raise ValueError("unknown keys ['texts'] (write each text as <name>_<language>)")
        texts = {k: v for k, v in data.items() if (p := split_key(k)) and p[0] in cls.TEXT_NAMES}
        rest = {k: v for k, v in data.items() if k not in texts or k in cls.model_fields}
        return {**rest, "texts": {k: v for k, v in texts.items() if v is not None}}


# -- schema errors ----------------------------------------------------------------------------------------

_ID_KEYS = ("id", "code", "slug")


def _step(node: Any, part: str | int) -> tuple[str, Any]:
    """One step of a pydantic error location over the raw data: `.key`, or `[id]` for a list item that has
    an id (a flow, node, desk, ...), else `[index]`."""
    if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
        item = node[part]
        ident = next(
            (item[k] for k in _ID_KEYS if isinstance(item, dict) and isinstance(item.get(k), str)), None
        )
        return (f"[{ident}]" if ident else f"[{part}]"), item
    child = node.get(part) if isinstance(node, dict) else None
    return f".{part}", child


def _value_at(raw: Any, loc: tuple[str | int, ...]) -> Any:
    node = raw
    for part in loc:
        node = _step(node, part)[1]
    return node


def _place(raw: Any, loc: tuple[str | int, ...]) -> str:
    out, node = "", raw
    for part in loc:
        if part == "[key]":  # pydantic's marker for a mapping key that failed its own check
            out += " (the key)"
            continue
        text, node = _step(node, part)
        out += text
    return out.lstrip(".")


def _file_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The location as the file has it: an entry's `texts` (see Texted) are keys of the entry itself."""
    return tuple(
        p
        for i, p in enumerate(loc)
        if not (p == "texts" and 0 < i < len(loc) - 1 and isinstance(loc[i + 1], str))
    )


def schema_problems(exc: ValidationError, file: str, raw: Any) -> list[str]:
    """A pydantic ValidationError as one line per problem, each naming the file and the place in it
    ("chatbot.yaml: flows[main].nodes[q1]: missing 'kind'"). Unknown keys of one mapping make one line."""

    def at(loc: tuple[str | int, ...]) -> str:
        where = _place(raw, loc)
        return f"{file}: {where}" if where else file

    problems: list[str] = []
    unknown: dict[tuple[str | int, ...], list[str]] = {}
    for error in exc.errors():
        loc, kind, msg = (
            _file_loc(tuple(error["loc"])),
            error["type"],
            error["msg"].removeprefix("Value error, "),
        )
        if kind == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
            continue
        if kind == "missing":
            problems.append(f"{at(loc[:-1])}: missing '{loc[-1]}'")
            continue
        if kind in ("string_too_short", "too_short") or msg == "is empty":
            msg = " is empty"
        elif kind in ("model_type", "dict_type"):
            msg = " must be a mapping"
        else:
            msg = ": " + msg
        # A field is named as the file names it ('label_en'), after the place of its entry; an entry that is
        # itself a mapping (urgency.threat) is a place.
        if (
            loc
            and isinstance(loc[-1], str)
            and loc[-1] != "[key]"
            and not isinstance(_value_at(raw, loc), dict)
        ):
            problems.append(f"{at(loc[:-1])}: '{loc[-1]}'{msg}")
        else:
            problems.append(f"{at(loc)}{msg}")
    problems += [f"{at(loc)}: unknown keys {sorted(keys)}" for loc, keys in unknown.items()]
    return list(dict.fromkeys(problems))  # a Japanese text is a field and one of the entry's texts
