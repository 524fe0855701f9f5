"""Triage of consultation free text: normalisation, scoring, urgency, validation, held-out regression."""

from __future__ import annotations

import ast
import copy
import sys
import time
from pathlib import Path

import pytest
import yaml

from domain.triage import MAX_TEXT_CHARS, TriageRules, TriageRulesError, normalise
from infra.triage_loader import load_triage_engine, load_triage_rules_text, rules_from_dict
from tests.spec_codes import CATEGORY_CODES as TAXONOMY
from tests.spec_codes import DESK_CODES as DESKS
from tests.spec_codes import GUIDE_SLUGS as GUIDES

ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = ROOT / "tests" / "triage_eval"
RULES_FILE = ROOT / "domain" / "knowledge" / "triage.yaml"

# domain.md section 4 (the taxonomy), desk codes of desks.yaml and the guide slugs, as agreed in the brief.
FLAGS = {"threat", "suicide", "sexual_image", "minor", "physical_danger"}


@pytest.fixture(scope="module")
def engine() -> TriageRules:
    return load_triage_engine()


@pytest.fixture(scope="module")
def raw_rules() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def _items(name: str) -> list[dict]:
    return yaml.safe_load((EVAL_DIR / f"{name}.yaml").read_text(encoding="utf-8"))["items"]


# --- normalisation ------------------------------------------------------------------------------------


def test_normalise_full_and_half_width() -> None:
    assert normalise("ＡＢＣ　１２３") == "abc 123"
    assert normalise("ｲﾝｽﾀで晒されてます") == "インスタで晒されてます"
    assert normalise("ﾘﾍﾞﾝｼﾞﾎﾟﾙﾉ") == "リベンジポルノ"


def test_normalise_long_vowel_wave_and_whitespace() -> None:
    assert normalise("メ－ル") == normalise("メ―ル") == normalise("ﾒｰﾙ") == "メール"
    assert normalise("すご～い") == "すごーい"
    assert normalise("  殺す\u3000ぞ\n\t!! \u200b") == "殺す ぞ !!"
    # Hyphens elsewhere (URLs, numbers) are left alone; Japanese stays Japanese.
    assert normalise("https://example.jp/a-b 03-1234") == "https://example.jp/a-b 03-1234"
    assert normalise("誹謗中傷") == "誹謗中傷"


def test_half_width_katakana_input_is_matched(engine: TriageRules) -> None:
    result = engine.triage("ｱｶｳﾝﾄを乗っ取られた。ﾊﾟｽﾜｰﾄﾞ変更されてﾛｸﾞｲﾝできない")
    assert result.categories[0].code == "OTHER.ACCOUNT_HIJACK"


# --- scoring ------------------------------------------------------------------------------------------


def test_defamation_ranks_with_triggers_from_the_text(engine: TriageRules) -> None:
    text = (
        "５ちゃんねるに、私が会社のお金を横領したという事実無根の書き込みをされました。名誉毀損だと思います。"
    )
    result = engine.triage(text)
    top3 = [c.code for c in result.categories[:3]]
    assert {"RIGHTS.DEFAMATION", "RIGHTS.INSULT"} & set(top3)
    norm = normalise(text)
    for suggestion in result.categories:
        assert suggestion.triggers, suggestion
        for trigger in suggestion.triggers:
            assert trigger in norm
            assert trigger != norm
    assert "ihaho" in result.desk_codes
    assert "delete-request" in result.guide_slugs


def test_unseen_phrasing_still_scores_by_ngram_similarity(engine: TriageRules) -> None:
    # No cue is written "名誉を毀損", but it shares n-grams with 名誉毀損.
    result = engine.triage("名誉を毀損されたと感じています")
    assert result.categories and result.categories[0].code == "RIGHTS.DEFAMATION"
    assert all(t in normalise("名誉を毀損されたと感じています") for t in result.categories[0].triggers)


def test_categories_are_ranked_unique_and_at_most_five(engine: TriageRules) -> None:
    text = (
        "元彼に裸の写真をばらまかれ、住所も晒されて、なりすましアカウントまで作られ、"
        "殺すぞとDMが来て、会社の口コミにも嘘を書かれ、アカウントも乗っ取られた"
    )
    result = engine.triage(text)
    scores = [c.score for c in result.categories]
    assert 0 < len(result.categories) <= 5
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert len({c.code for c in result.categories}) == len(result.categories)
    assert len(set(result.desk_codes)) == len(result.desk_codes)
    assert len(set(result.guide_slugs)) == len(result.guide_slugs)


def test_received_letter_routes_to_received_letter_guide(engine: TriageRules) -> None:
    result = engine.triage("プロバイダから発信者情報開示請求書が届きました。どう回答すればいいですか")
    assert result.categories[0].code == "OTHER.RECEIVED_REQUEST"
    assert "received-letter" in result.guide_slugs
    assert result.urgency == []


# --- urgency ------------------------------------------------------------------------------------------


def _flags(engine: TriageRules, text: str) -> dict[str, list[str]]:
    return {f.flag: f.desk_codes for f in engine.detect_urgency(text)}


def test_threat_flag_goes_to_110(engine: TriageRules) -> None:
    flags = _flags(engine, "元同僚から「お前の家は分かってる、殺すぞ」とDMが何度も来ます")
    assert "threat" in flags and flags["threat"][0] == "police_110"


def test_bomb_threat_flag(engine: TriageRules) -> None:
    assert "threat" in _flags(engine, "店のSNSに「明日店を爆破します」と書き込まれました")


def test_suicide_flag_and_imminent_escalation(engine: TriageRules) -> None:
    flags = _flags(engine, "ネットで叩かれ続けて、もう死にたいです")
    assert {"mamorouyo_kokoro", "kokoro_dial", "yorisoi"} <= set(flags["suicide"])
    assert "police_110" not in flags["suicide"]
    imminent = _flags(engine, "もう無理。今から飛び降ります")
    assert imminent["suicide"][0] == "police_110"


def test_suicide_inducement_post_flag(engine: TriageRules) -> None:
    result = engine.triage("掲示板で集団自殺の仲間を募集するスレッドを見つけました")
    assert "suicide" in {f.flag for f in result.urgency}
    assert result.categories[0].code == "PUBLIC.SUICIDE"


def test_sexual_image_flag(engine: TriageRules) -> None:
    flags = _flags(engine, "元彼が付き合っていた頃の裸の写真をネットに上げると脅してきます")
    assert {"police_8103", "onestop_8891", "paps"} <= set(flags["sexual_image"])


def test_sextortion_flag(engine: TriageRules) -> None:
    assert "sexual_image" in _flags(engine, "ビデオ通話の録画を拡散されたくなければ5万円払えと言われた")


def test_minor_flag_and_child_sexual_image_escalation(engine: TriageRules) -> None:
    flags = _flags(engine, "娘（１３歳）が知らない男に裸の自撮りを送ってしまいました")
    assert {"child_sos_24h", "childline"} <= set(flags["minor"])
    assert "police_8103" in flags["minor"]  # 児童ポルノ is a police matter
    assert "sexual_image" in flags
    bullying = _flags(engine, "高1の息子がクラスのグループLINEで悪口を書かれています")
    assert "minor" in bullying and "police_8103" not in bullying["minor"]


def test_urgency_triggers_are_substrings(engine: TriageRules) -> None:
    text = "ｺﾛｽぞってDMが来た。中２です"
    norm = normalise(text)
    flags = engine.detect_urgency(text)
    assert {f.flag for f in flags} >= {"threat", "minor"}
    for f in flags:
        assert f.triggers and all(t in norm for t in f.triggers)


@pytest.mark.parametrize(
    "text",
    [
        "今日は天気が良かったので公園を散歩しました。",
        "ネット通販で買った商品の返品方法を知りたいです。",
        "会社のホームページの更新方法について教えてください。",
    ],
)
def test_benign_text_has_no_urgency(engine: TriageRules, text: str) -> None:
    assert engine.detect_urgency(text) == []
    assert engine.triage(text).urgency == []


def test_no_category_falls_back_to_ihaho(engine: TriageRules) -> None:
    result = engine.triage("こんにちは")
    assert result.categories == []
    assert result.desk_codes == ["ihaho"]


# --- bounds -------------------------------------------------------------------------------------------


def test_long_input_is_bounded(engine: TriageRules) -> None:
    filler = "ネットの掲示板に事実無根の書き込みをされて困っています。" * 400  # ~11,000 chars
    text = filler + "殺すぞ"  # past the cap: not seen, by design
    start = time.perf_counter()
    result = engine.triage(text)
    elapsed = time.perf_counter() - start
    assert len(text) > MAX_TEXT_CHARS
    assert result.categories[0].code == "RIGHTS.DEFAMATION"
    assert elapsed < 2.0
    assert all(len(t) < 100 for c in result.categories for t in c.triggers)
    assert engine.triage("").categories == []
    assert engine.detect_urgency("x" * 50_000) == []


def _variants(text: str) -> list[str]:
    """The text, in katakana, in half-width latin, cut in pieces, and its halves swapped: near-matches and
    kana-folded matches as well as exact ones."""
    katakana = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)
    wide = text.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    half = len(text) // 2
    pieces = "、".join(text[i : i + 5] for i in range(0, len(text), 7))
    return [text, katakana, wide, pieces, text[half:] + "\n" + text[:half]]


def test_the_cue_index_changes_no_result(engine: TriageRules, monkeypatch: pytest.MonkeyPatch) -> None:
    """Triage looks up only the cues a text can match (an index of the rules' cues, built once) instead of
    trying all 1,600 on every text: 5 ms an intake. Its results, categories with their scores and triggers,
    flags with their triggers and desks, are those of trying every cue."""
    import domain.triage as triage

    texts = [i["text"] for name in ("dev", "heldout", "en_dev", "en_heldout") for i in _items(name)]
    texts = [v for t in texts for v in _variants(t)]
    chosen = ["RIGHTS.PRIVACY_ID", "YOUTH.ADULT"]
    indexed = [(engine.triage(t), engine.detect_urgency(t, categories=chosen)) for t in texts]
    every_cue = triage._Text
    monkeypatch.setattr(triage, "_Text", lambda text, _index=None: every_cue(text))
    tried_all = [(engine.triage(t), engine.detect_urgency(t, categories=chosen)) for t in texts]
    assert indexed == tried_all
    near = [c for result, _ in indexed for c in result.categories if c.score % 1]
    assert len(near) > 100  # discounted near-matches were compared, not only exact cues


# --- rules data and validation ---------------------------------------------------------------------


def test_rules_cover_the_taxonomy_with_known_desks_and_guides(engine: TriageRules) -> None:
    assert set(engine.category_codes) == TAXONOMY
    assert set(engine.urgency_flags) == FLAGS
    assert engine.referenced_desk_codes() <= DESKS
    assert engine.referenced_guide_slugs() <= GUIDES
    assert engine.version


def test_loader_is_cached() -> None:
    assert load_triage_engine() is load_triage_engine()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("version"),
        lambda r: r.update(surprise=1),
        lambda r: r["categories"]["RIGHTS.INSULT"].update(cue=["typo"]),
        lambda r: r["categories"]["RIGHTS.INSULT"].update(cues={}),
        lambda r: r["categories"]["RIGHTS.INSULT"]["cues"].update({3: []}),
        lambda r: r["categories"]["RIGHTS.INSULT"]["cues"].update({3: ["  "]}),
        lambda r: r["categories"]["RIGHTS.INSULT"]["cues"].update({-1: ["ok"]}),
        lambda r: r["categories"]["RIGHTS.INSULT"].update(desks=[]),
        lambda r: r["categories"]["RIGHTS.INSULT"].update(desks=["Not A Desk"]),
        lambda r: r["categories"].update({"bad code": r["categories"]["RIGHTS.INSULT"]}),
        lambda r: r["urgency"]["threat"].update(cues=[]),
        lambda r: r["urgency"]["threat"].update(patterns=["(unclosed"]),
        lambda r: r["urgency"]["threat"].update(patterns=["a*"]),
        lambda r: r["urgency"]["threat"].update(categories=["RIGHTS.NOPE"]),
        lambda r: r["urgency"]["minor"]["escalations"][0].update(when_flags=["nope"]),
        lambda r: r["urgency"]["threat"].update(colour="red"),
        lambda r: r["scoring"].update(top_k="five"),
        lambda r: r.update(categories=[]),
    ],
)
def test_malformed_rules_are_rejected(raw_rules: dict, mutate) -> None:
    raw = copy.deepcopy(raw_rules)
    mutate(raw)
    with pytest.raises(TriageRulesError) as caught:
        rules_from_dict(raw)
    assert all(p.startswith("triage.yaml: ") for p in caught.value.problems), caught.value.problems


def test_a_typo_in_a_key_is_refused_with_the_file_and_the_place(raw_rules: dict) -> None:
    raw = copy.deepcopy(raw_rules)
    raw["urgency"]["threat"]["pattern"] = raw["urgency"]["threat"].pop("patterns")
    with pytest.raises(TriageRulesError) as caught:
        rules_from_dict(raw)
    assert caught.value.problems == ["triage.yaml: urgency.threat: unknown keys ['pattern']"]


def test_references_the_schema_cannot_check_name_the_place(raw_rules: dict) -> None:
    raw = copy.deepcopy(raw_rules)
    raw["urgency"]["threat"]["categories"] = ["RIGHTS.NOPE"]
    raw["urgency"]["minor"]["escalations"][0]["when_flags"] = ["nope"]
    with pytest.raises(TriageRulesError) as caught:
        rules_from_dict(raw)
    assert caught.value.problems == [
        "triage.yaml: urgency.threat.categories: unknown category codes ['RIGHTS.NOPE']",
        "triage.yaml: urgency.minor.escalations[0]: unknown flags ['nope']",
    ]


def test_malformed_yaml_text_is_rejected() -> None:
    with pytest.raises(ValueError):
        load_triage_rules_text("- just\n- a list\n")


def test_domain_module_imports_only_the_standard_library() -> None:
    tree = ast.parse((ROOT / "domain" / "triage.py").read_text(encoding="utf-8"))
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}, modules


# --- evaluation sets ----------------------------------------------------------------------------------


def test_eval_sets_are_well_formed() -> None:
    dev, heldout = _items("dev"), _items("heldout")
    assert len(dev) + len(heldout) >= 60 and len(heldout) >= 20
    urgent = [i for i in dev + heldout if i["urgent"]]
    assert len(urgent) >= 15
    assert {f for i in urgent for f in i["urgent"]} == FLAGS
    ids = [i["id"] for i in dev + heldout]
    assert len(ids) == len(set(ids))
    for item in dev + heldout:
        assert 1 <= len(item["expected_categories"]) <= 3
        assert set(item["expected_categories"]) <= TAXONOMY, item["id"]
        assert set(item["urgent"]) <= FLAGS, item["id"]


def test_heldout_regression_guard(engine: TriageRules) -> None:
    """Top-3 accuracy on the held-out set >= 0.9 and no urgent flag missed."""
    items = _items("heldout")
    hits = 0
    missed: list[str] = []
    for item in items:
        result = engine.triage(item["text"])
        hits += item["expected_categories"][0] in [c.code for c in result.categories[:3]]
        got = {f.flag for f in result.urgency}
        missed += [f"{item['id']}:{flag}" for flag in item["urgent"] if flag not in got]
    assert hits / len(items) >= 0.9
    assert missed == [], f"urgent recall must be 1.0, missed {missed}"


def test_triage_rules_reference_only_known_desks_guides_and_categories() -> None:
    from infra.knowledge import load_knowledge

    knowledge = load_knowledge()
    engine = load_triage_engine()
    assert engine.referenced_desk_codes() <= {d.code for d in knowledge.desks}
    assert engine.referenced_guide_slugs() <= {g.slug for g in knowledge.guides}
    assert set(engine.category_codes) <= {c.code for c in knowledge.leaf_categories()}


# --- issue 14 items 19 and 21: physical danger, and false alarms -------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "掲示板に私の住所と「誰でもいいから犯しに来て」という書き込みをされました",
        "住所をさらされて、今日知らない人がインターホンを鳴らしてきました",
        "元夫が職場の前に来ていて、SNSで居場所を特定されているようです",
        "ストーカーに帰り道で待ち伏せされています",
        "私の部屋の写真と最寄り駅を載せて「ここに凸してこい」と書かれました",
    ],
)
def test_physical_danger_is_urgent_with_police_first(engine: TriageRules, text: str) -> None:
    flags = _flags(engine, text)
    assert "physical_danger" in flags, text
    assert flags["physical_danger"][0] == "police_110"


@pytest.mark.parametrize(
    ("text", "silent"),
    [
        ("アダルトサイトで動画を再生したら登録完了と出て、料金を請求されました", "sexual_image"),
        ("ネットで「〇〇人は殺せ」というヘイトの書き込みを見つけました。通報先を知りたい", "threat"),
    ],
)
def test_known_false_alarms_stay_silent(engine: TriageRules, text: str, silent: str) -> None:
    assert silent not in _flags(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "アダルトサイトで登録完了と出たあと、「払わないと撮った動画をばらまく」と脅されています",
        "「〇〇人は殺せ」と私の実名と住所入りで書かれました",
        "「在日は明日駅で無差別に刺す」という予告を見つけました",
    ],
)
def test_suppression_never_hides_a_real_danger(engine: TriageRules, text: str) -> None:
    assert {"sexual_image", "threat"} & set(_flags(engine, text)), text


def test_unless_needs_unless_not(raw_rules: dict) -> None:
    broken = copy.deepcopy(raw_rules)
    del broken["urgency"]["threat"]["unless_not"]
    with pytest.raises(ValueError, match="triage.yaml: urgency.threat: unless needs unless_not"):
        rules_from_dict(broken)


def test_the_evaluation_reports_false_alarms_and_keeps_urgent_recall_at_100() -> None:
    from tests.bench import triage_eval

    for name in ("dev", "heldout", "en_dev", "en_heldout"):
        report = triage_eval.evaluate(name, triage_eval.load_items(name))
        assert report.recall == 1.0, (name, report.urgent_misses)
        assert report.false_alarm_rate <= 0.03, (name, report.false_alarms)
        assert report.texts_with_false_alarm <= 0.1 * report.n, (name, report.false_alarms)


# --- issue 14 item 22: English ------------------------------------------------------------------------


def test_english_eval_sets_are_well_formed() -> None:
    dev, heldout = _items("en_dev"), _items("en_heldout")
    assert len(dev) >= 20 and len(heldout) >= 15
    ids = [i["id"] for i in dev + heldout + _items("dev") + _items("heldout")]
    assert len(ids) == len(set(ids))
    for item in dev + heldout:
        assert item["text"].isascii(), item["id"]
        assert set(item["expected_categories"]) <= TAXONOMY, item["id"]
        assert set(item["urgent"]) <= FLAGS, item["id"]
    assert {f for i in dev + heldout for f in i["urgent"]} == FLAGS


def test_english_heldout_regression_guard(engine: TriageRules) -> None:
    """English held-out: every urgent flag caught, primary category in the top 3 for most texts."""
    items = _items("en_heldout")
    hits = 0
    missed: list[str] = []
    for item in items:
        result = engine.triage(item["text"])
        hits += item["expected_categories"][0] in [c.code for c in result.categories[:3]]
        got = {f.flag for f in result.urgency}
        missed += [f"{item['id']}:{flag}" for flag in item["urgent"] if flag not in got]
    assert missed == [], f"urgent recall must be 1.0, missed {missed}"
    assert hits / len(items) >= 0.85


@pytest.mark.parametrize(
    ("text", "code", "flag"),
    [
        ("My ex is threatening to post my nude photos unless I pay", "RIGHTS.PRIVATE_SEXUAL", "sexual_image"),
        ("Someone wrote that he will kill me when I leave work", "ILLEGAL.THREAT", "threat"),
        ("I want to die, I can't take the comments anymore", "PUBLIC.SUICIDE", "suicide"),
        ("My real name and home address were posted on a forum", "RIGHTS.PRIVACY_ID", None),
    ],
)
def test_english_text_is_triaged_and_routes_to_the_same_desks(
    engine: TriageRules, text: str, code: str, flag: str | None
) -> None:
    result = engine.triage(text)
    assert result.categories and code in [c.code for c in result.categories[:3]]
    if flag:
        assert flag in {f.flag for f in result.urgency}
    assert not ({"sexual_image", "threat"} & {f.flag for f in engine.triage("I want to kill myself").urgency})


def test_a_language_pack_cannot_invent_codes_or_flags(raw_rules: dict) -> None:
    from infra.triage_loader import merge_language_pack

    rules = raw_rules
    with pytest.raises(ValueError, match="unknown category"):
        merge_language_pack(rules, {"language": "fr", "categories": {"RIGHTS.NOPE": {"cues": {3: ["x"]}}}})
    with pytest.raises(ValueError, match="unknown flag"):
        merge_language_pack(rules, {"language": "fr", "urgency": {"danger": {"cues": ["x"]}}})
    with pytest.raises(ValueError, match=r"triage.fr.yaml: urgency.threat: unknown keys \['desks'\]"):
        merge_language_pack(rules, {"language": "fr", "urgency": {"threat": {"desks": ["police_110"]}}})
    merged = merge_language_pack(
        rules, {"language": "fr", "urgency": {"threat": {"cues": ["je vais te tuer"]}}}
    )
    assert "je vais te tuer" in merged["urgency"]["threat"]["cues"]
    assert "je vais te tuer" not in rules["urgency"]["threat"]["cues"]  # the input is not changed


def test_english_covers_every_category_the_japanese_sets_cover() -> None:
    """English is triaged at least as widely as Japanese (issue 14 item 22): every category that is the primary
    one of some Japanese text is the primary one of some English text, in the development and held-out parts."""
    primary = lambda names: {i["expected_categories"][0] for n in names for i in _items(n)}  # noqa: E731
    assert primary(("dev", "heldout")) - primary(("en_dev", "en_heldout")) == set()
    assert primary(("heldout",)) - primary(("en_heldout",)) == set()


def test_english_heldout_is_at_parity_with_japanese(engine: TriageRules) -> None:
    """The English held-out part, which the English cues were not written from: top-3 >= 94 % (Japanese held-out
    is about 97 %), every urgent flag caught, false alarms at most 3 % of the silent (text, flag) pairs."""
    from tests.bench.triage_eval import evaluate

    report = evaluate("en_heldout", _items("en_heldout"))
    assert report.n >= 35
    assert report.top3 / report.n >= 0.94, report.category_misses
    assert report.recall == 1.0, report.urgent_misses
    assert report.false_alarm_rate <= 0.03, report.false_alarms


@pytest.mark.parametrize(
    "text",
    [
        "I DON’T WANT TO LIVE ANYMORE",  # capitals and a phone's curly apostrophe
        "i   don't\nwant   to  live",  # runs of spaces and a line break
        "I\u200bdon't want to live",  # a zero-width space pasted from a web page
    ],
)
def test_english_matching_normalises_case_spaces_and_apostrophes(engine: TriageRules, text: str) -> None:
    result = engine.triage(text)
    assert "suicide" in {f.flag for f in result.urgency}
    assert result.categories and result.categories[0].code == "PUBLIC.SUICIDE"
