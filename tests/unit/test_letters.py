"""The letter forms and web-form definitions as data (validated on load), and the rules on plain text: JST
posting times, never-cut form text, required guided fields."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from importlib import resources

import pytest

from domain.letters import (
    LetterContent,
    LetterItem,
    LetterKind,
    Sender,
    catalogue_from_raw,
    form_texts,
    missing_fields,
)
from infra.knowledge import load_knowledge
from infra.letters_loader import known_services, load_letter_catalogue
from infra.yaml_data import load_yaml


def raw(name: str) -> dict:  # type: ignore[type-arg]
    return load_yaml(resources.files("domain.knowledge").joinpath(name).read_text(encoding="utf-8"))


def test_every_kind_has_a_cited_form_with_guided_help() -> None:
    catalogue = load_letter_catalogue(load_knowledge())
    assert sorted(f.kind for f in catalogue.forms) == sorted(LetterKind)
    for form in catalogue.forms:
        assert (
            form.source_url.startswith("https://www.isplaw.jp") and form.checked.isoformat() == "2026-12-01"
        )
        guided = [f for f in form.fields if f.kind == "guided"]
        assert guided and all(f.required and len(f.help_ja) > 20 for f in guided), form.kind
        assert [f.code for f in form.fields][:2] == ["place", "information"]
    disclosure = catalogue.form(LetterKind.disclosure)
    assert disclosure.review_as == {"desired_outcomes": ("identify_poster",)}
    assert {"purpose", "purpose_detail", "requested", "withheld"} <= {f.code for f in disclosure.fields}


def test_web_forms_name_known_services_and_cite_a_source() -> None:
    knowledge = load_knowledge()
    catalogue = load_letter_catalogue(knowledge)
    services = known_services(knowledge)
    assert {"x", "youtube", "facebook", "instagram", "openchat", "five_ch"} <= {
        w.service for w in catalogue.web_forms
    }
    for web in catalogue.web_forms:
        assert web.service in services and web.source_url.startswith("https://")
        assert all(f.max_length > 0 and f.limit in ("service", "centre") for f in web.fields)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("forms", 0, "fields", 3, "help_ja"), ""),  # a guided field without help
        (("forms", 0, "fields", 0, "kind"), "picture"),  # an unknown field kind
        (("forms", 0, "review_as"), {"moon_phase": ["full"]}),  # a fact the review rules do not know
    ],
)
def test_bad_letter_forms_are_refused_on_load(path: tuple, value: object) -> None:  # type: ignore[type-arg]
    forms = copy.deepcopy(raw("letter_forms.yaml"))
    target = forms
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError):
        catalogue_from_raw(forms, raw("platform_forms.yaml"), known_services(load_knowledge()))


def test_a_web_form_for_an_unknown_service_is_refused() -> None:
    web = copy.deepcopy(raw("platform_forms.yaml"))
    web["services"][0]["service"] = "no_such_service"
    with pytest.raises(ValueError):
        catalogue_from_raw(raw("letter_forms.yaml"), web, known_services(load_knowledge()))


def content(reason: str) -> LetterContent:
    item = LetterItem(
        uuid.uuid4(), "https://x.com/a/status/1", datetime(2026, 12, 31, 15, 30, tzinfo=UTC), "抜粋", "x"
    )
    return LetterContent("X Corp.", (item,), {"right": ("名誉権",)}, {"reason": reason}, Sender())


def test_posting_times_are_printed_in_japan_time() -> None:
    # 15:30 UTC on 31 December is 00:30 on 1 January in Japan.
    assert content("理由").items[0].posted_at_jst == "2027年01月01日 00時30分(日本時間)"


def test_form_text_is_never_cut() -> None:
    catalogue = load_letter_catalogue(load_knowledge())
    form = catalogue.form(LetterKind.removal_defamation_privacy)
    web = catalogue.web_form("bakusai")
    assert web is not None
    reason = "あ" * 1500
    texts = {t.code: t for t in form_texts(form, content(reason), web)}
    assert texts["reason"].text == reason and texts["reason"].over_by == 500 and not texts["reason"].fits
    assert texts["urls"].fits and texts["urls"].text == "https://x.com/a/status/1"


def test_required_fields_block_only_when_empty() -> None:
    form = load_letter_catalogue(load_knowledge()).form(LetterKind.removal_defamation_privacy)
    assert missing_fields(form, content("理由があります")) == []
    assert missing_fields(form, content("   \n ")) == ["reason"]
