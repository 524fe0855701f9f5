"""Loads domain/knowledge/chatbot.yaml into the (stdlib-only) chatbot flow model and validates it against the
reference knowledge, so a flow that points at a desk, guide or code that does not exist fails at start-up."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from domain.chatbot import FlowError, Flows, References, flows_from_dict, validate_flows
from domain.knowledge_model import Knowledge
from infra.knowledge import load_knowledge
from infra.yaml_data import load_yaml

_PACKAGE = "domain.knowledge"
_FILE = "chatbot.yaml"


def load_flows_text(text: str, knowledge: Knowledge) -> Flows:
    """Parse and validate flows given as YAML text (tests, and a future staff editor)."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise FlowError([f"{_FILE}: {exc}"]) from exc
    return validate_flows(flows_from_dict(raw), References.of(knowledge))


@lru_cache(maxsize=1)
def load_chatbot_flows() -> Flows:
    """The packaged flows, parsed and validated once per process. Raises FlowError when they are broken."""
    text = resources.files(_PACKAGE).joinpath(_FILE).read_text(encoding="utf-8")
    return load_flows_text(text, load_knowledge())
