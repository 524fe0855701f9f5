"""Loads domain/knowledge/chatbot.yaml into the (stdlib-only) chatbot flow model and validates it against the
reference knowledge, so a flow that points at a desk, guide or code that does not exist fails at start-up.

The shape of the file is the pydantic schema below (unknown keys are refused); it produces the domain's
plain objects (domain/chatbot/model.py). What a schema cannot say (references into the knowledge, ids,
reachability, cycles, languages) is checked by domain/chatbot/graph.py.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

import yaml
from pydantic import (
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from domain.chatbot import (
    DRAFT_KEYS,
    LABEL_NAMES,
    TEXT_NAMES,
    Choice,
    Draft,
    Flow,
    FlowError,
    Flows,
    Node,
    References,
    validate_flows,
)
from domain.knowledge_model import Knowledge
from domain.languages import BASE, split_key
from infra.knowledge import load_knowledge
from infra.yaml_data import Schema, Texted, load_yaml, schema_problems

_PACKAGE = "domain.knowledge"
_FILE = "chatbot.yaml"

Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Codes = list[str]


class _Texted(Texted):
    texts: dict[str, Text] = {}


class DraftDoc(Schema):
    categories: Codes = []
    desired_outcomes: Codes = []
    platforms: Codes = []

    def model(self) -> Draft:
        return Draft(*(tuple(getattr(self, k)) for k in DRAFT_KEYS))


class ChoiceDoc(_Texted):
    TEXT_NAMES = ("label", "note")
    id: Required
    label_ja: Required
    next: Required
    draft: DraftDoc = DraftDoc()
    note_ja: Text = ""
    loop: bool = False

    def model(self) -> Choice:
        return Choice(
            self.id, self.label_ja, self.next, self.draft.model(), self.note_ja, self.loop, dict(self.texts)
        )


class NodeDoc(_Texted):
    TEXT_NAMES = ("text",)
    id: Required
    kind: Required
    text_ja: Text = ""
    choices: list[ChoiceDoc] = []
    desks: Codes = []
    guides: Codes = []
    draft: DraftDoc = DraftDoc()
    platform_routes: bool = False

    def model(self, flow_id: str) -> Node:
        return Node(
            id=self.id,
            flow=flow_id,
            kind=self.kind,
            text_ja=self.text_ja,
            choices=tuple(c.model() for c in self.choices),
            desks=tuple(self.desks),
            guides=tuple(self.guides),
            draft=self.draft.model(),
            platform_routes=self.platform_routes,
            texts=dict(self.texts),
        )


class FlowDoc(_Texted):
    TEXT_NAMES = ("title",)
    id: Required
    title_ja: Required
    start: Required
    nodes: Annotated[list[NodeDoc], Field(min_length=1)]
    draft: DraftDoc = DraftDoc()
    triage_categories: Codes = []

    def model(self) -> Flow:
        return Flow(
            id=self.id,
            title_ja=self.title_ja,
            start=self.start,
            nodes=tuple(n.model(self.id) for n in self.nodes),
            draft=self.draft.model(),
            triage_categories=tuple(self.triage_categories),
            texts=dict(self.texts),
        )


def _named_texts(raw: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """A `texts`/`labels` section: `<name>_<language>` keys of the given names, every `<name>_ja` present
    and not blank."""
    unknown = sorted(k for k in raw if not ((p := split_key(k)) and p[0] in names))
    missing = [f"{n}_{BASE}" for n in names if f"{n}_{BASE}" not in raw]
    blank = [f"{n}_{BASE}" for n in names if not raw.get(f"{n}_{BASE}", "x").strip()]
    problems = [f"unknown keys {unknown}"] if unknown else []
    problems += [f"missing '{k}'" for k in missing] + [f"'{k}' is empty" for k in blank]
    if problems:
        raise ValueError("; ".join(problems))
    # Texts are kept as written, except the separator, whose spaces are the point (", ").
    return {k: v if k.startswith("list_separator_") else v.strip() for k, v in raw.items()}


class ChatbotDoc(Schema):
    version: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | int
    texts: dict[str, str]
    labels: dict[str, str]
    greeting_desks: Codes = []
    handoff_default_outcomes: Codes = []
    flows: Annotated[list[FlowDoc], Field(min_length=1)]
    languages: Codes = []
    language_names: dict[str, str] = {}

    @field_validator("texts")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        return _named_texts(value, TEXT_NAMES)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _named_texts(value, LABEL_NAMES)

    def model(self) -> Flows:
        return Flows(
            version=str(self.version),
            texts=dict(self.texts),
            labels=dict(self.labels),
            greeting_desks=tuple(self.greeting_desks),
            handoff_default_outcomes=tuple(self.handoff_default_outcomes),
            flows=tuple(f.model() for f in self.flows),
            languages=tuple(self.languages) or (BASE,),
            language_names=dict(self.language_names),
        )


def flows_from_dict(raw: Any) -> Flows:
    """Shape the parsed YAML into the model; raises FlowError listing every problem of shape (file and
    place). The graph checks are `validate_flows`."""
    try:
        doc = ChatbotDoc.model_validate(raw)
    except ValidationError as exc:
        raise FlowError(schema_problems(exc, _FILE, raw)) from None
    return doc.model()


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
