"""Loads domain/knowledge/triage.yaml into the (stdlib-only) triage engine.

YAML parsing lives here, not in domain/, so the domain stays free of third-party imports.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from domain.triage import TriageRules
from infra.yaml_data import load_yaml

_PACKAGE = "domain.knowledge"
_FILE = "triage.yaml"


def load_triage_rules_text(text: str) -> TriageRules:
    """Parse and validate rules given as YAML text (used by tests and by a future staff editor)."""
    raw = load_yaml(text)
    if not isinstance(raw, dict):
        raise ValueError("triage rules must be a YAML mapping")
    return TriageRules.from_dict(raw)


@lru_cache(maxsize=1)
def load_triage_engine() -> TriageRules:
    """The packaged rules, parsed once per process. Raises ValueError when the file is malformed."""
    # importlib.resources reads from the installed package (wheel, zip or source tree) alike.
    text = resources.files(_PACKAGE).joinpath(_FILE).read_text(encoding="utf-8")
    return load_triage_rules_text(text)
