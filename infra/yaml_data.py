"""One YAML reader for the reference data, so a Japanese desk's label never turns into a boolean.

PyYAML implements YAML 1.1, where `No`, `yes`, `on`, `off`, `y` are booleans and `17:00` is the integer
61200 (base 60). In reference data those are labels and times: `label_en: No` must stay the text "No".
This loader resolves scalars as the YAML 1.2 core schema does: only true/false are booleans, only plain
decimal (or 0x) digits are integers, no base-60 numbers. Dates (2026-12-01) stay dates: the model reads
`checked` and `designated_since` as dates. Everything else is a string.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class ReferenceLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core booleans and numbers."""


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
