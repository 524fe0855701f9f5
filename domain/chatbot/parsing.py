"""Shapes the parsed chatbot.yaml into the flow model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.chatbot.model import (
    DRAFT_KEYS,
    LABEL_NAMES,
    TEXT_KEYS,
    TEXT_NAMES,
    Choice,
    Draft,
    Flow,
    FlowError,
    Flows,
    Node,
)
from domain.languages import BASE, split_key


def _mapping(value: Any, where: str, problems: list[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected a mapping")
        return {}
    return value


def _text(raw: Mapping[str, Any], key: str, where: str, problems: list[str], *, required: bool) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"{where}: missing '{key}'")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: '{key}' must be a string")
        return ""
    if required and not value.strip():
        problems.append(f"{where}: '{key}' is empty")
    return value.strip()


def _codes(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: '{key}' must be a list of codes")
        return ()
    return tuple(value)


def _draft(raw: Mapping[str, Any], where: str, problems: list[str]) -> Draft:
    value = raw.get("draft")
    if value is None:
        return Draft()
    d = _mapping(value, f"{where}.draft", problems)
    unknown = set(d) - set(DRAFT_KEYS)
    if unknown:
        problems.append(f"{where}.draft: unknown keys {sorted(map(str, unknown))}")
    return Draft(*(_codes(d, k, f"{where}.draft", problems) for k in DRAFT_KEYS))


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    # A `<name>_<language>` key is accepted wherever `<name>_ja` is; validation checks the languages.
    def known(k: object) -> bool:
        parts = split_key(k)
        return k in allowed or (parts is not None and f"{parts[0]}_{BASE}" in allowed)

    unknown = {k for k in raw if not known(k)}
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(map(str, unknown))}")


def _texts_of(
    raw: Mapping[str, Any], names: tuple[str, ...], where: str, problems: list[str]
) -> dict[str, str]:
    """Every `<name>_<language>` text of an entry, for the given names."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        parts = split_key(key)
        if parts is None or parts[0] not in names:
            continue
        if not isinstance(value, str):
            problems.append(f"{where}: '{key}' must be a string")
            continue
        out[str(key)] = value.strip()
    return out


def _choice(raw: Any, where: str, problems: list[str]) -> Choice | None:
    c = _mapping(raw, where, problems)
    if not c:
        return None
    _check_keys(c, {"id", "label_ja", "next", "draft", "note_ja", "loop"}, where, problems)
    choice_id = _text(c, "id", where, problems, required=True)
    where = f"{where}({choice_id})"
    loop = c.get("loop", False)
    if not isinstance(loop, bool):
        problems.append(f"{where}: 'loop' must be true or false")
        loop = False
    return Choice(
        id=choice_id,
        label_ja=_text(c, "label_ja", where, problems, required=True),
        next=_text(c, "next", where, problems, required=True),
        draft=_draft(c, where, problems),
        note_ja=_text(c, "note_ja", where, problems, required=False),
        loop=loop,
        texts=_texts_of(c, ("label", "note"), where, problems),
    )


def _node(raw: Any, flow_id: str, where: str, problems: list[str]) -> Node | None:
    n = _mapping(raw, where, problems)
    if not n:
        return None
    _check_keys(
        n,
        {"id", "kind", "text_ja", "choices", "desks", "guides", "draft", "platform_routes"},
        where,
        problems,
    )
    node_id = _text(n, "id", where, problems, required=True)
    where = f"flows.{flow_id}.{node_id}"
    choices_raw = n.get("choices") or []
    if not isinstance(choices_raw, list):
        problems.append(f"{where}: 'choices' must be a list")
        choices_raw = []
    choices = tuple(
        c
        for c in (_choice(c, f"{where}.choices[{i}]", problems) for i, c in enumerate(choices_raw))
        if c is not None
    )
    return Node(
        id=node_id,
        flow=flow_id,
        kind=_text(n, "kind", where, problems, required=True),
        text_ja=_text(n, "text_ja", where, problems, required=False),
        choices=choices,
        desks=_codes(n, "desks", where, problems),
        guides=_codes(n, "guides", where, problems),
        draft=_draft(n, where, problems),
        platform_routes=n.get("platform_routes") is True,
        texts=_texts_of(n, ("text",), where, problems),
    )


def _flow(raw: Any, where: str, problems: list[str]) -> Flow | None:
    f = _mapping(raw, where, problems)
    if not f:
        return None
    _check_keys(f, {"id", "title_ja", "start", "nodes", "draft", "triage_categories"}, where, problems)
    flow_id = _text(f, "id", where, problems, required=True)
    where = f"flows.{flow_id}"
    nodes_raw = f.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        problems.append(f"{where}: 'nodes' must be a non-empty list")
        nodes_raw = []
    nodes = tuple(
        n
        for n in (_node(n, flow_id, f"{where}.nodes[{i}]", problems) for i, n in enumerate(nodes_raw))
        if n is not None
    )
    return Flow(
        id=flow_id,
        title_ja=_text(f, "title_ja", where, problems, required=True),
        start=_text(f, "start", where, problems, required=True),
        nodes=nodes,
        draft=_draft(f, where, problems),
        triage_categories=_codes(f, "triage_categories", where, problems),
        texts=_texts_of(f, ("title",), where, problems),
    )


def flows_from_dict(raw: Any) -> Flows:
    """Shape the parsed YAML into the model; raises FlowError listing every structural problem."""
    problems: list[str] = []
    top = _mapping(raw, "chatbot", problems)
    if problems:
        raise FlowError(problems)
    _check_keys(
        top,
        {
            "version",
            "texts",
            "labels",
            "greeting_desks",
            "handoff_default_outcomes",
            "flows",
            "languages",
            "language_names",
        },
        "chatbot",
        problems,
    )
    languages = _codes(top, "languages", "chatbot", problems) or (BASE,)
    names_raw = _mapping(top.get("language_names", {}), "chatbot.language_names", problems)
    language_names = {str(k): str(v) for k, v in names_raw.items() if isinstance(v, str)}
    version = top.get("version")
    if not isinstance(version, str | int) or isinstance(version, bool) or not str(version).strip():
        problems.append("chatbot: 'version' must be a non-empty string")
        version = ""
    texts_raw = _mapping(top.get("texts"), "chatbot.texts", problems)
    _check_keys(texts_raw, set(TEXT_KEYS), "chatbot.texts", problems)
    for k in TEXT_KEYS:
        _text(texts_raw, k, "chatbot.texts", problems, required=True)
    # Texts are kept as written, except the separator, whose spaces are the point (", ").
    texts = _texts_of(texts_raw, TEXT_NAMES, "chatbot.texts", problems)
    texts.update(
        {k: v for k, v in texts_raw.items() if str(k).startswith("list_separator_") and isinstance(v, str)}
    )
    labels_raw = _mapping(top.get("labels"), "chatbot.labels", problems)
    label_keys = {f"{n}_{BASE}" for n in LABEL_NAMES}
    _check_keys(labels_raw, label_keys, "chatbot.labels", problems)
    for k in sorted(label_keys):
        _text(labels_raw, k, "chatbot.labels", problems, required=True)
    labels = _texts_of(labels_raw, LABEL_NAMES, "chatbot.labels", problems)
    flows_raw = top.get("flows")
    if not isinstance(flows_raw, list) or not flows_raw:
        problems.append("chatbot: 'flows' must be a non-empty list")
        flows_raw = []
    flows = tuple(
        f for f in (_flow(f, f"flows[{i}]", problems) for i, f in enumerate(flows_raw)) if f is not None
    )
    if problems:
        raise FlowError(problems)
    return Flows(
        version=str(version),
        texts=texts,
        labels=labels,
        greeting_desks=_codes(top, "greeting_desks", "chatbot", problems),
        handoff_default_outcomes=_codes(top, "handoff_default_outcomes", "chatbot", problems),
        flows=flows,
        languages=languages,
        language_names=language_names,
    )
