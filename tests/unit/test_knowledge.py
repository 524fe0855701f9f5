"""The shipped reference knowledge loads, validates and holds what the rest of the app relies on."""

import copy
import re
import unicodedata
from importlib.resources import files

import pytest
import yaml

from domain.knowledge_model import Knowledge, KnowledgeError, validate
from infra.knowledge import STEMS, build, knowledge_version, load_knowledge, parse, read_files
from infra.knowledge_schema import knowledge_from_raw
from tests.spec_codes import CATEGORY_CODES, GUIDE_SLUGS
from tests.spec_codes import DESK_CODES as REQUIRED_DESKS

# The 40 leaves of domain.md §4 plus ILLEGAL.SEXUAL_FILMING (issue 14 item 11); codes are stored with consultations, so the list is frozen here.


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge()


@pytest.fixture()
def raw() -> dict:
    """A fresh, mutable copy of the parsed YAML documents for breaking on purpose."""
    return copy.deepcopy(parse(read_files()))


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(KnowledgeError) as err:
        validate(knowledge_from_raw(raw))
    return err.value.problems


# ---------------------------------------------------------------- the shipped files


def test_every_file_loads_and_validates(k):
    assert set(read_files()) == set(STEMS)
    validate(k)  # does not raise
    assert load_knowledge() is k  # cached


def test_every_file_is_a_package_resource():
    root = files("domain.knowledge")
    for stem in STEMS:
        assert root.joinpath(f"{stem}.yaml").is_file()


def test_knowledge_version_is_a_stable_sha256():
    version = knowledge_version()
    assert re.fullmatch(r"[0-9a-f]{64}", version)
    knowledge_version.cache_clear()
    assert knowledge_version() == version


def test_all_forty_categories_under_five_groups(k):
    leaves = {c.code for c in k.leaf_categories()}
    assert leaves == CATEGORY_CODES
    tree = k.category_tree()
    assert [g.code for g, _ in tree] == ["RIGHTS", "ILLEGAL", "PUBLIC", "YOUTH", "OTHER"]
    assert {g.code: g.nature for g, _ in tree} == {
        "RIGHTS": "illegal",
        "ILLEGAL": "illegal",
        "PUBLIC": "harmful",
        "YOUTH": "harmful",
        "OTHER": "other",
    }
    for group, children in tree:
        assert children, group.code
        assert all(c.parent == group.code and c.code.startswith(group.code + ".") for c in children)
    assert k.category("RIGHTS.DEFAMATION").label_ja == "名誉毀損・信用毀損"
    assert k.category("NOPE") is None


def test_urgent_categories_are_the_escalation_ones(k):
    urgent = {c.code for c in k.categories if c.urgent}
    assert {"ILLEGAL.THREAT", "PUBLIC.SUICIDE", "RIGHTS.PRIVATE_SEXUAL", "ILLEGAL.CSAM"} <= urgent


def test_desks(k):
    codes = {d.code for d in k.desks}
    assert len(k.desks) >= 20
    assert REQUIRED_DESKS <= codes
    assert k.desk("police_110").phone == "110"
    assert k.desk("police_8103").phone == "#8103"
    assert k.desk("ihaho").url == "https://www.ihaho.jp/"
    assert k.desk("nope") is None
    for d in k.desks:
        assert d.last_verified is not None, d.code
        assert d.phone or d.url or d.kind == "platform", f"{d.code} has no way to reach it"


def test_emergency_desks(k):
    emergency = {d.code for d in k.emergency_desks()}
    assert {
        "police_110",
        "police_8103",
        "onestop_8891",
        "mamorouyo_kokoro",
        "child_guidance_189",
    } <= emergency
    assert "ihaho" not in emergency


def test_uncertain_facts_are_flagged(k):
    # A desk is uncertain exactly when one of its facts could not be confirmed, and says which.
    for desk in k.desks:
        unconfirmed = [s for s in desk.sources if s.checked is None]
        assert desk.uncertain == bool(unconfirmed), desk.code
        if desk.uncertain:
            assert desk.notes_ja, desk.code
    assert {d.code for d in k.desks if d.uncertain} == {
        "moj_sns_jinken",
        "police_cyber_desk",
        "cure_time",
        "yorisoi_foreign",
    }


def test_platforms(k):
    by_code = {p.code: p for p in k.platforms}
    designated_0430 = {"x", "meta", "youtube", "tiktok", "line", "yahoo_japan"}
    designated_0530 = {"bakusai", "pinterest", "ameba", "niconico"}
    for code in designated_0430:
        assert by_code[code].designated and by_code[code].designated_since.isoformat() == "2025-04-30", code
    for code in designated_0530:
        assert by_code[code].designated and by_code[code].designated_since.isoformat() == "2025-05-30", code
    assert {c for c, p in by_code.items() if p.designated} == designated_0430 | designated_0530
    for code in (
        "google_search",
        "google_maps",
        "five_ch",
        "hostlove",
        "wikipedia",
        "note",
        "amazon",
        "domestic_hosting",
    ):
        assert code in by_code
    assert by_code["hostlove"].accepts_standard_letters == "no"
    assert by_code["domestic_hosting"].accepts_standard_letters == "yes"
    assert all(p.accepts_standard_letters in {"yes", "no", "uncertain"} for p in k.platforms)


def test_guides(k):
    assert {g.slug for g in k.guides} == GUIDE_SLUGS
    evidence = k.guide("evidence-preservation")
    assert len(evidence.steps) >= 10
    assert "7日" in k.guide("platform-act-2025").summary_ja
    letter_text = " ".join(s.body_ja for s in k.guide("received-letter").steps)
    assert "7日" in letter_text and "2日" in letter_text


def test_intake_code_lists(k):
    def codes(name):
        return [i.code for i in k.code_list(name)]

    assert codes("relations") == ["self", "family", "school", "agent", "provider", "other"]
    assert codes("desired_outcomes") == [
        "delete",
        "delist",
        "identify_poster",
        "compensation_or_punishment",
        "advice",
        "received_letter",
        "other",
    ]
    assert codes("channels") == ["web", "line", "chatbot"]
    assert codes("victim_types") == ["individual", "corporation", "public_figure"]


def _all_codes_and_labels(k):
    codes = [c.code for c in k.categories] + [d.code for d in k.desks] + [p.code for p in k.platforms]
    codes += [g.slug for g in k.guides] + [n.id for n in k.chart.nodes]
    codes += [o.id for n in k.chart.nodes for o in n.options]
    codes += [i.code for items in k.intake.values() for i in items]
    labels = [c.label_ja for c in k.categories] + [c.label_en for c in k.categories]
    labels += [d.name_ja for d in k.desks] + [p.name_ja for p in k.platforms] + [g.title_ja for g in k.guides]
    labels += [i.label_ja for items in k.intake.values() for i in items]
    labels += [o.label_ja for n in k.chart.nodes for o in n.options]
    labels += [n.text_ja or n.title_ja for n in k.chart.nodes]
    return codes, labels


def test_codes_are_nfkc_stable_ascii_and_labels_non_empty(k):
    codes, labels = _all_codes_and_labels(k)
    for code in codes:
        assert unicodedata.normalize("NFKC", code) == code, code
        assert code.isascii() and code.strip() == code and " " not in code, code
    for label in labels:
        assert isinstance(label, str) and label.strip(), repr(label)
        label.encode("utf-8")  # no lone surrogates
    # Category labels are matched against user input after NFKC, so they must already be normalised.
    for c in k.categories:
        assert unicodedata.normalize("NFKC", c.label_ja) == c.label_ja, c.code


def test_no_plain_yaml_value_is_cut_by_a_comment_or_colon():
    """In YAML a plain scalar ends at ' #' (comment) and breaks at ': '; such values must be quoted."""
    plain_value = re.compile(r"^\s*(?:- )?[a-z_]+: (?![\"'\[{|>])(.+)$")
    for stem, blob in read_files().items():
        for n, line in enumerate(blob.decode("utf-8").splitlines(), 1):
            m = plain_value.match(line)
            if m:
                assert " #" not in m.group(1) and ": " not in m.group(1), f"{stem}.yaml:{n}: quote this value"


# ---------------------------------------------------------------- validation catches broken data


def test_duplicate_codes_are_reported(raw):
    raw["desks"]["desks"].append(dict(raw["desks"]["desks"][0]))
    raw["categories"]["groups"][0]["children"].append(dict(raw["categories"]["groups"][0]["children"][0]))
    problems = problems_of(raw)
    assert any("duplicate code 'ihaho'" in p for p in problems)
    assert any("duplicate code 'RIGHTS.DEFAMATION'" in p for p in problems)


def test_a_desk_url_that_is_not_https_is_reported(raw):
    """Issue 13: desk URLs are shown to anonymous people; the reference file may not hold an http:// one."""
    raw["desks"]["desks"][0]["url"] = "http://www.ihaho.jp/"
    raw["desks"]["desks"][1]["url"] = "https://www.ihaho.jp@attacker.example/"
    problems = problems_of(raw)
    assert "desks.ihaho: url must be https://" in problems
    assert sum(p.endswith("url must be https://") for p in problems) == 2


def test_desk_with_unknown_category_is_reported(raw):
    raw["desks"]["desks"][0]["categories"] = ["RIGHTS.NOPE"]
    assert any("desks.ihaho: unknown category 'RIGHTS.NOPE'" in p for p in problems_of(raw))


def test_unknown_references_in_guides_and_chart_are_reported(raw):
    raw["guides"]["guides"][0]["related_desks"] = ["ghost_desk"]
    raw["guides"]["guides"][0]["related_categories"] = ["YOUTH.GHOST"]
    outcome = next(n for n in raw["chart"]["nodes"] if n["kind"] == "outcome")
    outcome["guides"] = ["ghost-guide"]
    outcome["desks"] = outcome["desks"] + ["ghost_desk"]
    problems = problems_of(raw)
    assert any("unknown desk 'ghost_desk'" in p and p.startswith("guides.") for p in problems)
    assert any("unknown category 'YOUTH.GHOST'" in p for p in problems)
    assert any("unknown guide 'ghost-guide'" in p for p in problems)
    assert any("unknown desk 'ghost_desk'" in p and p.startswith("chart.") for p in problems)


def test_bad_enumerations_are_reported(raw):
    raw["desks"]["desks"][0]["kind"] = "wizard"
    raw["categories"]["groups"][0]["nature"] = "weird"
    raw["platforms"]["platforms"][0]["accepts_standard_letters"] = "maybe"
    problems = problems_of(raw)
    assert any("unknown kind 'wizard'" in p for p in problems)
    assert any("unknown nature 'weird'" in p for p in problems)
    assert any("accepts_standard_letters" in p for p in problems)


def test_missing_field_and_missing_file_raise_knowledge_error(raw):
    del raw["desks"]["desks"][0]["name_ja"]
    with pytest.raises(KnowledgeError, match="missing 'name_ja'"):
        knowledge_from_raw(raw)
    with pytest.raises(KnowledgeError, match="missing knowledge file"):
        knowledge_from_raw({"desks": {"desks": []}})


def test_a_typo_in_a_key_is_refused_with_the_file_and_the_place(raw):
    desk = raw["desks"]["desks"][0]
    desk["nmae_ja"] = desk.pop("name_ja")
    raw["intake"]["relations"][0]["colour"] = "red"
    with pytest.raises(KnowledgeError) as err:
        knowledge_from_raw(raw)
    code, relation = desk["code"], raw["intake"]["relations"][0]["code"]
    assert err.value.problems == [
        f"desks.yaml: desks[{code}]: missing 'name_ja'",
        f"desks.yaml: desks[{code}]: unknown keys ['nmae_ja']",
        f"intake.yaml: relations[{relation}]: unknown keys ['colour']",
    ]


def test_a_wrong_type_or_date_names_the_file_and_the_field(raw):
    raw["desks"]["desks"][0]["sources"][0]["checked"] = "yesterday"
    raw["categories"]["groups"][0]["children"][0]["urgent"] = "yes"
    problems = "\n".join(problems_of(raw))
    assert (
        "desks.yaml: desks[" in problems
        and "].sources[0]: 'checked': 'yesterday' is not an ISO date" in problems
    )
    assert "categories.yaml: groups[" in problems and "'urgent': Input should be a valid boolean" in problems


def test_broken_yaml_raises_knowledge_error():
    blobs = read_files()
    blobs["desks"] = b"desks: [unclosed"
    with pytest.raises(KnowledgeError, match="desks.yaml"):
        build(blobs)


def test_yaml_booleans_for_letters_are_read_as_yes_no():
    doc = yaml.safe_load("accepts_standard_letters: yes")
    assert doc["accepts_standard_letters"] is True  # the YAML 1.1 trap the model guards against
    raw = parse(read_files())
    raw["platforms"]["platforms"][0]["accepts_standard_letters"] = True
    assert knowledge_from_raw(raw).platforms[0].accepts_standard_letters == "yes"


# ---------------------------------------------------------------- every label is text (issue 10 item 3)


def test_reference_yaml_keeps_no_yes_on_and_times_as_text():
    from datetime import date

    from infra.yaml_data import load_yaml

    doc = load_yaml("a: No\nb: yes\nc: on\nd: 17:00\ne: 1\nf: true\ng: 2026-12-01\nh: off\ni: 0570\n")
    assert doc == {
        "a": "No",
        "b": "yes",
        "c": "on",
        "d": "17:00",  # YAML 1.1: 61200 (base 60)
        "e": 1,
        "f": True,
        "g": date(2026, 12, 1),
        "h": "off",
        "i": "0570",  # YAML 1.1: octal 376
    }


def test_the_shipped_chart_says_no_for_iie(k):
    option = k.chart.node("q_danger").option("danger_no")
    assert option.label_ja == "いいえ" and option.label_en == "No"


def _label_sites(raw: dict) -> list[tuple[str, dict, str]]:
    """(name, mapping, key) of one label, title or text of each kind in the files."""
    question = next(n for n in raw["chart"]["nodes"] if n["kind"] == "question")
    outcome = next(n for n in raw["chart"]["nodes"] if n["kind"] == "outcome")
    return [
        ("chart option label_en", question["options"][0], "label_en"),
        ("chart question text_en", question, "text_en"),
        ("chart outcome title_en", outcome, "title_en"),
        ("category label_ja", raw["categories"]["groups"][0]["children"][0], "label_ja"),
        ("desk name_en", raw["desks"]["desks"][0], "name_en"),
        ("desk hours_ja", raw["desks"]["desks"][0], "hours_ja"),
        ("guide step title_en", raw["guides"]["guides"][0]["steps"][0], "title_en"),
        ("guide title_ja", raw["guides"]["guides"][0], "title_ja"),
        ("intake label_en", raw["intake"]["relations"][0], "label_en"),
        ("platform route name_ja", raw["platforms"]["platforms"][0]["report_routes"][0], "name_ja"),
    ]


@pytest.mark.parametrize("plain", ["No", "yes", "on", "1", "''", "'  '"])
def test_validation_refuses_a_non_string_or_empty_label_anywhere(plain):
    value = yaml.safe_load(f"v: {plain}")["v"]  # what a YAML 1.1 reader (or a careless edit) hands over
    assert not (isinstance(value, str) and value.strip())
    for name, _, _ in _label_sites(parse(read_files())):
        raw = copy.deepcopy(parse(read_files()))
        site = next(s for s in _label_sites(raw) if s[0] == name)
        site[1][site[2]] = value
        with pytest.raises(KnowledgeError) as err:
            validate(knowledge_from_raw(raw))
        assert f"'{site[2]}'" in str(err.value), name


def test_the_problem_catalogue_refuses_a_typo_and_a_non_error_status():
    from infra.knowledge import problem_catalogue_from_text

    text = "version: t\ncodes:\n  a: {status: 200, title_ja: あ, titel_en: A, meaning: m}\n"
    with pytest.raises(KnowledgeError) as err:
        problem_catalogue_from_text(text)
    assert err.value.problems == [
        "problems.yaml: codes.a: 'status': Input should be greater than or equal to 400",
        "problems.yaml: codes.a: missing 'title_en'",
        "problems.yaml: codes.a: unknown keys ['titel_en']",
    ]
