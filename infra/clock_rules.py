"""The clock rules (domain/knowledge/clocks.yaml), validated against the knowledge they refer to."""

from __future__ import annotations

from importlib import resources

from domain.clocks import ClockRules, clock_rules_from_raw
from domain.knowledge_model import Knowledge
from domain.requests import RequestKind
from infra.yaml_data import load_yaml


def read_raw() -> dict:  # type: ignore[type-arg]
    text = resources.files("domain.knowledge").joinpath("clocks.yaml").read_text(encoding="utf-8")
    return load_yaml(text)  # type: ignore[no-any-return]


def rules_from(raw: dict, knowledge: Knowledge) -> ClockRules:  # type: ignore[type-arg]
    return clock_rules_from_raw(
        raw,
        request_kinds=[k.value for k in RequestKind],
        categories=[c.code for c in knowledge.categories],
        chart_outcomes=[n.id for n in knowledge.chart.nodes if n.is_outcome],
    )


def load_clock_rules(knowledge: Knowledge) -> ClockRules:
    return rules_from(read_raw(), knowledge)
