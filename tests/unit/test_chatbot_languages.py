"""Languages of the chatbot as data (issue 14 item 23): a declared language with any missing text fails
validation, so a further language (zh, ko, vi, pt, ...) is only data and is checked like Japanese."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

from domain.chatbot import Engine, FlowError, References, State, validate_flows
from domain.errors import ValidationFailed
from domain.languages import choose_language
from infra.chatbot_loader import flows_from_dict
from infra.knowledge import load_knowledge


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    text = resources.files("domain.knowledge").joinpath("chatbot.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def problems(doc: dict[str, Any]) -> list[str]:
    try:
        validate_flows(flows_from_dict(doc), References.of(load_knowledge()))
    except FlowError as exc:
        return exc.problems
    return []


def test_the_packaged_flows_declare_japanese_and_english(raw: dict[str, Any]) -> None:
    assert raw["languages"] == ["ja", "en"] and problems(raw) == []


def test_a_declared_language_without_its_texts_is_refused(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    doc["languages"].append("ko")
    doc["language_names"]["ko"] = "한국어"
    found = problems(doc)
    assert "chatbot.texts: missing 'greeting_ko' (declared language 'ko')" in found
    assert "chatbot.labels: missing 'menu_ko' (declared language 'ko')" in found
    assert "flows.delete_post: missing 'title_ko' (declared language 'ko')" in found
    assert any(
        p.startswith("flows.delete_post.delete_what.delete_what_privacy: missing 'label_ko'") for p in found
    )


def test_one_missing_english_text_is_refused(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    del doc["flows"][0]["nodes"][0]["choices"][1]["label_en"]
    assert problems(doc) == [
        "flows.delete_post.delete_what.delete_what_privacy: missing 'label_en' (declared language 'en')"
    ]
    doc = copy.deepcopy(raw)
    doc["texts"]["menu_en"] = "  "
    assert "chatbot.texts: missing 'menu_en' (declared language 'en')" in problems(doc)


def test_a_text_in_an_undeclared_language_and_a_nameless_language_are_refused(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    doc["texts"]["menu_vi"] = "Bạn đang gặp vấn đề gì?"
    assert problems(doc) == ["chatbot.texts: 'menu_vi' is in a language not declared in 'languages'"]
    doc = copy.deepcopy(raw)
    del doc["language_names"]["en"]
    assert problems(doc) == ["chatbot.language_names: no name for declared language 'en'"]
    doc = copy.deepcopy(raw)
    doc["languages"] = ["en"]
    assert "chatbot.languages: 'languages' must include 'ja'" in problems(doc)


def test_placeholders_must_match_the_japanese_ones(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    doc["texts"]["desk_phone_en"] = "Phone: {number}"
    assert problems(doc) == ["chatbot.texts: 'desk_phone_en' has other placeholders than 'desk_phone_ja'"]


def test_a_further_language_is_only_data(raw: dict[str, Any]) -> None:
    """Portuguese texts for everything (here: the English ones marked), and the engine speaks Portuguese."""
    doc = copy.deepcopy(raw)
    doc["languages"].append("pt")
    doc["language_names"]["pt"] = "Português"

    def add(o: Any) -> None:
        if isinstance(o, dict):
            for k in [k for k in o if isinstance(k, str) and k.endswith("_en")]:
                o[k[:-3] + "_pt"] = "PT " + o[k] if k != "list_separator_en" else ", "
            for v in o.values():
                add(v)
        elif isinstance(o, list):
            for v in o:
                add(v)

    add(doc)
    # Complete for the chatbot; against the knowledge, only that the chart and guides lack Portuguese texts.
    assert validate_flows(flows_from_dict(doc)) is not None
    assert problems(doc) == [
        "chatbot.languages: 'pt' is not a language of the chart and the guides (chart.yaml, guides.yaml)"
    ]
    engine = Engine(flows_from_dict(doc))
    plan = engine.greeting("pt")
    assert plan.state.lang == "pt" and plan.says[0].text.startswith("PT Hello.")
    assert ("lang:ja", "日本語") in plan.choices and ("lang:en", "English") in plan.choices
    switched = engine.choose(plan.state, "lang:en")
    assert switched.state.lang == "en" and ("lang:pt", "Português") in switched.choices


def test_a_session_whose_language_was_removed_speaks_japanese(raw: dict[str, Any]) -> None:
    engine = Engine(flows_from_dict(raw))
    state = State(lang="pt", offered=(("menu", "x"),))
    assert engine.language(state) == "ja"
    assert engine.choose(state, "menu").says[0].text == raw["texts"]["menu_ja"]


@pytest.mark.parametrize(
    ("requested", "header", "expected"),
    [
        (None, None, "ja"),
        (None, "en", "en"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "ja,en;q=0.8", "ja"),
        (None, "fr,en;q=0.5", "en"),
        (None, "fr,de", "ja"),
        (None, "en;q=0", "ja"),
        (None, "en;q=abc", "ja"),
        ("en", "ja", "en"),
        ("EN", None, "en"),
    ],
)
def test_choose_language(requested: str | None, header: str | None, expected: str) -> None:
    assert choose_language(requested, header, ("ja", "en")) == expected


def test_choose_language_refuses_an_unsupported_request() -> None:
    with pytest.raises(ValidationFailed) as caught:
        choose_language("fr", "en", ("ja", "en"))
    assert caught.value.code == "unsupported_language"


def test_the_chatbot_speaks_no_language_the_chart_and_guides_lack(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    doc["languages"].append("pt")
    doc["language_names"]["pt"] = "Português"
    found = problems(doc)
    assert (
        "chatbot.languages: 'pt' is not a language of the chart and the guides (chart.yaml, guides.yaml)"
        in found
    )
