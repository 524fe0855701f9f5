"""domain/knowledge/retention.yaml → the retention rules (pydantic schema for the file; the domain checks that
every ended status has exactly one rule)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import Field, ValidationError

from domain.consultations import Status
from domain.retention import RetentionRule, rules_problems
from infra.yaml_data import Schema, load_yaml, schema_problems

_FILE = "retention.yaml"


class Keep(Schema):
    days: int = Field(ge=1, le=36500)


class RuleDoc(Schema):
    status: str
    keep: Keep
    basis_ja: str = Field(min_length=1)
    source: str = Field(pattern=r"^https://")
    checked: date


class RetentionDoc(Schema):
    rules: list[RuleDoc]


def rules_from_raw(raw: Any) -> tuple[RetentionRule, ...]:
    try:
        doc = RetentionDoc.model_validate(raw)
        rules = tuple(
            RetentionRule(Status(r.status), r.keep.days, r.basis_ja, r.source, r.checked) for r in doc.rules
        )
    except ValidationError as exc:
        raise ValueError("; ".join(schema_problems(exc, _FILE, raw))) from None
    except ValueError as exc:  # a status that is not one
        raise ValueError(f"{_FILE}: {exc}") from None
    problems = rules_problems(rules)
    if problems:
        raise ValueError("; ".join(f"{_FILE}: {p}" for p in problems))
    return rules


@lru_cache(maxsize=1)
def load_retention_rules() -> tuple[RetentionRule, ...]:
    text = resources.files("domain.knowledge").joinpath(_FILE).read_text(encoding="utf-8")
    return rules_from_raw(load_yaml(text))
