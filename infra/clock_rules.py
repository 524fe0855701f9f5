"""The clock rules (domain/knowledge/clocks.yaml) and the template suggestions (template_suggestions.yaml),
validated against the knowledge they refer to."""

from __future__ import annotations

from importlib import resources

from domain.clocks import ClockRules, clock_rules_from_raw
from domain.knowledge_model import Knowledge
from domain.requests import RequestKind
from domain.suggestions import TemplateUse, uses_from_raw
from infra.yaml_data import load_yaml


def read_raw() -> dict:
    text = resources.files("domain.knowledge").joinpath("clocks.yaml").read_text(encoding="utf-8")
    return load_yaml(text)


def rules_from(raw: dict, knowledge: Knowledge) -> ClockRules:
    return clock_rules_from_raw(
        raw,
        request_kinds=[k.value for k in RequestKind],
        categories=[c.code for c in knowledge.categories],
        chart_outcomes=[n.id for n in knowledge.chart.nodes if n.is_outcome],
    )


def load_clock_rules(knowledge: Knowledge) -> ClockRules:
    return rules_from(read_raw(), knowledge)


def load_template_uses(knowledge: Knowledge, rules: ClockRules) -> tuple[TemplateUse, ...]:
    """domain/knowledge/template_suggestions.yaml, checked against the manual, categories, clocks, desks."""
    from infra.quality_loader import load_manual

    text = (
        resources.files("domain.knowledge").joinpath("template_suggestions.yaml").read_text(encoding="utf-8")
    )
    _, templates = load_manual()
    return uses_from_raw(
        load_yaml(text),
        templates=[t.code for t in templates],
        categories={c.code: c.parent for c in knowledge.categories},
        outcomes=[i.code for i in knowledge.code_list("desired_outcomes")],
        rules=rules,
        desks=[d.code for d in knowledge.desks],
    )
