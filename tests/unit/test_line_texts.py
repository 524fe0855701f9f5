"""The LINE account's texts as data (issue 14 item 23): every declared language has every text, or loading
fails; a further language is only data."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from domain.line import LineTexts, LineTextsError, Links, greeting, menu
from infra.line import LINE_TEXTS_FILE, load_line_texts

LINKS = Links(home="https://www.ihaho.jp")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(LINE_TEXTS_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def refused(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(LineTextsError) as caught:
        LineTexts.from_raw(doc)
    return caught.value.problems


def test_the_packaged_texts_speak_japanese_and_english() -> None:
    texts = load_line_texts()
    assert texts.languages == ("ja", "en")
    assert texts.language_of_keyword(" ENGLISH ") == "en" and texts.language_of_keyword("日本語") == "ja"
    assert texts.language_of_keyword("english please") is None
    # Japanese is unchanged: the menu text is the one the account always sent.
    assert menu(LINKS, texts.voice(None))[0]["text"].startswith(
        "メニューから選んでください。\n・窓口チャート:"
    )


def test_a_declared_language_with_a_missing_text_is_refused(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    doc["languages"].append("vi")
    doc["language_names"]["vi"] = "Tiếng Việt"
    doc["keywords"]["vi"] = ["tiếng việt", "vietnamese"]
    problems = refused(doc)
    assert "line_texts.texts: missing 'greeting_vi' (declared language 'vi')" in problems
    assert len([p for p in problems if "missing" in p]) == len([k for k in raw["texts"] if k.endswith("_ja")])


def test_one_missing_english_text_a_stray_language_and_a_changed_placeholder_are_refused(
    raw: dict[str, Any],
) -> None:
    doc = copy.deepcopy(raw)
    del doc["texts"]["link_done_en"]
    assert refused(doc) == ["line_texts.texts: missing 'link_done_en' (declared language 'en')"]
    doc = copy.deepcopy(raw)
    doc["texts"]["menu_ko"] = "메뉴에서 선택하세요. {home}"
    assert refused(doc) == ["line_texts.texts: 'menu_ko' is in a language not declared in 'languages'"]
    doc = copy.deepcopy(raw)
    doc["texts"]["menu_en"] = "Choose from the menu. {homepage}"
    assert refused(doc) == ["line_texts.texts: 'menu_en' has other placeholders than 'menu_ja'"]
    doc = copy.deepcopy(raw)
    del doc["keywords"]["en"]
    assert refused(doc) == ["line_texts.keywords: no keyword for declared language 'en'"]


def test_a_further_language_is_only_data(raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw)
    doc["languages"].append("pt")
    doc["language_names"]["pt"] = "Português"
    doc["keywords"]["pt"] = ["português", "portugues"]
    for key in [k for k in doc["texts"] if k.endswith("_en")]:
        doc["texts"][key[:-3] + "_pt"] = "PT " + doc["texts"][key]
    texts = LineTexts.from_raw(doc)
    assert texts.language_of_keyword("Português") == "pt"
    hello = greeting(LINKS, texts.voice("pt"))
    assert hello[0]["text"].startswith("PT Thank you for adding us.")
    buttons = [i["action"] for i in hello[1]["quickReply"]["items"]]  # type: ignore[index]
    assert {
        (b["label"], b["data"]) for b in buttons if b["type"] == "postback" and b["data"].startswith("lang:")
    } == {
        ("日本語", "lang:ja"),
        ("English", "lang:en"),
    }
    assert texts.voice("xx").lang == "ja"  # a stored language no longer declared: Japanese
