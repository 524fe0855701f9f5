"""Loads domain/knowledge/triage.yaml, and its language packs triage.<language>.yaml, into the (stdlib-only)
triage engine.

YAML parsing lives here, not in domain/, so the domain stays free of third-party imports. A language pack
adds phrases (cues, negative cues, urgency cues, patterns, unless/unless_not) to the codes and flags of the
main file; it cannot add a code, a flag, a desk or a guide, so every language routes to the same desks.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from domain.triage import TriageRules
from infra.yaml_data import load_yaml

_PACKAGE = "domain.knowledge"
_FILE = "triage.yaml"
_PACK = re.compile(r"^triage\.([a-z]{2,3})\.yaml$")
_PACK_CATEGORY_KEYS = {"cues", "negative"}
_PACK_URGENCY_KEYS = {"cues", "patterns", "unless", "unless_not", "escalations"}


def merge_language_pack(rules: dict[str, Any], pack: dict[str, Any]) -> dict[str, Any]:
    """The rules with the pack's phrases added. Raises ValueError for a code, flag or key the rules lack."""
    if not isinstance(pack, dict) or not isinstance(pack.get("language"), str):
        raise ValueError("a triage language pack is a mapping with a 'language'")
    where = f"triage.{pack['language']}"
    unknown_top = set(pack) - {"language", "categories", "urgency"}
    if unknown_top:
        raise ValueError(f"{where}: unknown keys {sorted(unknown_top)}")
    out = copy.deepcopy(rules)
    for code, body in (pack.get("categories") or {}).items():
        target = out["categories"].get(code)
        if target is None:
            raise ValueError(f"{where}.categories: unknown category {code!r}")
        extra = set(body) - _PACK_CATEGORY_KEYS
        if extra:
            raise ValueError(f"{where}.categories.{code}: a pack may only add {sorted(_PACK_CATEGORY_KEYS)}")
        for key in _PACK_CATEGORY_KEYS & set(body):
            merged = target.setdefault(key, {})
            for weight, phrases in body[key].items():
                merged[weight] = [*(merged.get(weight) or []), *phrases]
    for flag, body in (pack.get("urgency") or {}).items():
        target = out["urgency"].get(flag)
        if target is None:
            raise ValueError(f"{where}.urgency: unknown flag {flag!r}")
        extra = set(body) - _PACK_URGENCY_KEYS
        if extra:
            raise ValueError(f"{where}.urgency.{flag}: a pack may only add {sorted(_PACK_URGENCY_KEYS)}")
        for key in _PACK_URGENCY_KEYS & set(body):
            target[key] = [*(target.get(key) or []), *body[key]]
    return out


def load_triage_rules_text(text: str, packs: list[str] = ()) -> TriageRules:  # type: ignore[assignment]
    """Parse and validate rules given as YAML text, with language packs as YAML texts (tests, and a future
    staff editor)."""
    raw = load_yaml(text)
    if not isinstance(raw, dict):
        raise ValueError("triage rules must be a YAML mapping")
    for pack in packs:
        raw = merge_language_pack(raw, load_yaml(pack))
    return TriageRules.from_dict(raw)


def pack_texts() -> list[str]:
    """The packaged language packs, in name order."""
    root = resources.files(_PACKAGE)
    names = sorted(r.name for r in root.iterdir() if _PACK.match(r.name))
    return [root.joinpath(n).read_text(encoding="utf-8") for n in names]


@lru_cache(maxsize=1)
def load_triage_engine() -> TriageRules:
    """The packaged rules with every language pack, parsed once per process. Raises ValueError when a file
    is malformed."""
    # importlib.resources reads from the installed package (wheel, zip or source tree) alike.
    text = resources.files(_PACKAGE).joinpath(_FILE).read_text(encoding="utf-8")
    return load_triage_rules_text(text, pack_texts())
