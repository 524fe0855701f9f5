"""Issue 14 corrections 1-14: each correction of the reference knowledge, held by a test.

The texts are what a person in distress acts on, so the tests read them as that person would."""

from __future__ import annotations

import pytest

from domain.chatbot import ChatbotService
from domain.knowledge_model import Knowledge
from infra.chatbot_loader import load_chatbot_flows
from infra.knowledge import load_knowledge
from infra.knowledge_schema import knowledge_from_raw
from infra.triage_loader import load_triage_engine


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge()


@pytest.fixture(scope="module")
def flows():
    return load_chatbot_flows()


def _answer(flows, node_id: str) -> str:
    return flows.node(node_id).text_ja


def _chart_texts(k: Knowledge) -> str:
    return "\n".join(n.guidance_ja + n.title_ja + n.text_ja for n in k.chart.nodes)


# 1. A minor holding an image of themselves is not told it is illegal.
def test_minor_is_not_told_that_holding_their_own_image_is_illegal(k, flows):
    text = _answer(flows, "sexual_minor_answer")
    assert "持っていること自体も違法" not in text
    assert "罰せられるわけではありません" in text
    assert "転送" in text and "警察" in text  # what to do instead
    assert "罰せられるわけではありません" in k.chart.node("o_sexual_minor").guidance_ja


# 2. The 7/2-day period is for removal inquiries; a disclosure inquiry has none and silence is not consent.
def test_chart_and_guides_agree_on_inquiry_periods(k):
    chart = k.chart.node("o_received_letter").guidance_ja
    guide = " ".join(s.body_ja for s in k.guide("received-letter").steps)
    for text in (chart, guide):
        assert "削除" in text and "7日" in text and "2日" in text
        assert "開示についての意見照会には法律で決まった期間はなく" in text
        assert "同意したことにはなりません" in text
    assert "削除や開示が進む" not in chart


# 3. 発信者情報開示: a victim who wants to identify a poster is not "someone who received a letter".
@pytest.mark.parametrize(
    "text",
    [
        "開示請求をして投稿者を特定したい",
        "Xで誹謗中傷されています。発信者情報開示で誰が書いたか知りたいです",
        "爆サイに悪口を書いた犯人を特定したいので開示請求をしたい",
    ],
)
def test_victim_who_wants_to_identify_a_poster_is_not_sent_to_the_letter_flow(text):
    result = load_triage_engine().triage(text)
    assert result.categories and result.categories[0].code != "OTHER.RECEIVED_REQUEST"
    assert "identify-poster" in result.guide_slugs


@pytest.mark.parametrize(
    "text",
    [
        "プロバイダから発信者情報開示請求書が届きました",
        "意見照会書が届いたのですが、回答書はどう書けばいいですか",
        "開示請求を受けたとプロバイダから連絡がありました",
    ],
)
def test_person_who_received_an_inquiry_goes_to_the_letter_flow(text):
    result = load_triage_engine().triage(text)
    assert result.categories[0].code == "OTHER.RECEIVED_REQUEST"
    assert "received-letter" in result.guide_slugs


# 4. The Internet Hotline Center takes reports of private sexual images.
def test_ihc_takes_private_sexual_images(k):
    ihc = k.desk("ihc")
    assert "RIGHTS.PRIVATE_SEXUAL" in ihc.categories and "リベンジポルノ" in ihc.handles_ja
    assert any("私事性的画像" in s.fact and s.checked for s in ihc.sources)


# 5. 189: free 24-hour abuse line since December 2019; child-rearing questions to 0120-189-783.
def test_189_is_recorded_with_its_source_and_not_uncertain(k):
    desk = k.desk("child_guidance_189")
    assert desk.phone == "189" and not desk.uncertain
    assert "2019年12月" in desk.handles_ja and "0120-189-783" in desk.handles_ja
    assert all(s.checked and s.url.startswith("https://") for s in desk.sources)


# 6. Cure Time: 17:00-21:00 with no three-weekday limit, its own page; what is unconfirmed is flagged.
def test_cure_time_hours_and_own_page(k):
    desk = k.desk("cure_time")
    assert desk.hours_ja == "17:00〜21:00"
    assert "月・水・土" not in desk.hours_ja
    assert desk.url != "https://www.gender.go.jp/"
    assert desk.uncertain and [s.fact for s in desk.sources if s.checked is None] == [
        "専用ページの URL curetime.jp"
    ]


# 7. LINEじんけん相談, not only four bureaus.
def test_line_jinken_soudan_name_and_scope(k):
    desk = k.desk("moj_sns_jinken")
    assert desk.name_ja.startswith("LINEじんけん相談")
    assert "以外の地域" in desk.handles_ja
    assert "現在の対象地域は未確認" not in (desk.notes_ja or "")


# 8. The centre answers on the my-page; mail only says an answer is there.
def test_centre_answers_arrive_on_the_my_page(k):
    desk = k.desk("ihaho")
    assert "相談マイページ" in desk.hours_ja and "回答はメールで届く" not in desk.hours_ja


# 9. Designation is per service: LINE's talk and Yahoo! search are not bound by the 7-day duty.
def test_designation_is_per_service(k):
    line = k.platform("line")
    assert {s.code for s in line.designated_services()} == {"openchat", "voom"}
    assert line.service("talk") is not None and not line.service("talk").designated
    yahoo = k.platform("yahoo_japan")
    assert {s.code for s in yahoo.designated_services()} == {"chiebukuro", "finance"}
    assert not yahoo.service("search").designated
    for p in k.platforms:
        if p.designated:
            assert p.designated_services(), p.code
            assert p.designated_since == min(s.designated_since for s in p.designated_services())


def test_chatbot_platform_card_names_the_designated_services_only():
    from types import SimpleNamespace

    from infra.chatbot_loader import load_chatbot_flows

    yahoo = load_knowledge().platform("yahoo_japan")
    bot = SimpleNamespace(flows=load_chatbot_flows())  # the card needs only the flows' texts
    text = ChatbotService._platform_message(bot, yahoo).text  # type: ignore[arg-type]  # noqa: SLF001
    assert "Yahoo!知恵袋" in text and "7日" in text
    assert "Yahoo! JAPAN 検索は指定の対象外です" in text
    english = ChatbotService._platform_message(bot, yahoo, "en").text  # type: ignore[arg-type]  # noqa: SLF001
    assert "知恵袋" in english and "7 days" in english


def test_validation_refuses_a_designated_operator_without_services():
    import copy

    from domain.knowledge_model import KnowledgeError, validate
    from infra.knowledge import parse, read_files

    raw = copy.deepcopy(parse(read_files()))
    line = next(p for p in raw["platforms"]["platforms"] if p["code"] == "line")
    del line["services"]  # designated as a whole operator, as the file used to say
    line["designated"] = True
    line["designated_since"] = "2025-04-30"
    with pytest.raises(KnowledgeError, match="no designated service"):
        validate(knowledge_from_raw(raw))


# 10. The 2-day period is a safe harbour, not a duty, and not for in-app reports.
def test_two_day_period_is_described_exactly(k, flows):
    texts = [
        k.chart.node("o_sexual_image").guidance_ja,
        _answer(flows, "sexual_posted_answer"),
        " ".join(s.body_ja for s in k.guide("sexual-images").steps),
    ]
    for text in texts:
        assert "2日" in text
        assert "責任を問われない" in text and "義務づけるものではなく" in text
        assert "アプリの通報機能" in text
        assert "早く削除されやすく" not in text and "比較的早く進み" not in text


# 11. 性的姿態撮影等処罰法 (in force 2023-07-13): category, guide, manual.
def test_sexual_filming_act_is_a_category_a_guide_step_and_in_the_manual(k):
    from infra.quality_loader import load_manual

    cat = k.category("ILLEGAL.SEXUAL_FILMING")
    assert cat is not None and cat.urgent and "2023年7月13日" in cat.description_ja
    assert any("性的姿態撮影等処罰法" in s.body_ja for s in k.guide("sexual-images").steps)
    sections, _ = load_manual()
    assert any("性的姿態撮影等処罰法" in s.body_ja for s in sections if s.code == "sexual-images")
    result = load_triage_engine().triage("駅のエスカレーターでスカートの中を盗撮されたかもしれません")
    assert "ILLEGAL.SEXUAL_FILMING" in [c.code for c in result.categories[:3]]
    assert "sexual_image" in {f.flag for f in result.urgency}


# 12. Lawful adult content: filtering, not removal.
def test_youth_adult_routes_to_filtering(k):
    guide = k.guide("filtering")
    assert guide is not None and "YOUTH.ADULT" in guide.related_categories
    assert any("携帯電話会社" in s.body_ja and "義務" in s.body_ja for s in guide.steps)
    result = load_triage_engine().triage(
        "子どもがアダルトサイトを見ているようです。フィルタリングはどうすれば"
    )
    assert result.categories[0].code == "YOUTH.ADULT"
    assert result.guide_slugs[0] == "filtering"
    # A parent asking about filtering is not a sexual-image victim (the minor flag is right: a child).
    assert "sexual_image" not in {f.flag for f in result.urgency}


# 13. Sexual-image outcomes mention search delisting.
def test_sexual_image_outcomes_offer_delisting(k, flows):
    for node in ("o_sexual_image", "o_sexual_minor"):
        assert "search-delisting" in k.chart.node(node).guides, node
    assert "search-delisting" in flows.node("sexual_posted_answer").guides
    assert "検索" in _answer(flows, "sexual_posted_answer")
    delisting = " ".join(s.body_ja for s in k.guide("search-delisting").steps)
    assert "同意のない性的な画像" in delisting
    assert "RIGHTS.PRIVATE_SEXUAL" in k.guide("search-delisting").related_categories


# 14. Per desk: what was checked, where and when.
def test_every_desk_records_what_was_checked_where_and_when(k):
    dates = set()
    for desk in k.desks:
        assert desk.sources, desk.code
        for s in desk.sources:
            assert s.fact.strip() and s.url.startswith(("https://", "http://")), desk.code
        checked = [s.checked for s in desk.sources if s.checked]
        assert desk.last_verified == (max(checked) if checked else None), desk.code
        dates.add(desk.last_verified)
    for code in ("moj_internet_jinken", "bar_association"):
        assert not k.desk(code).uncertain, code  # confirmed by the review
    assert k.desk("bar_association").phone == "0570-783-110"
    assert k.desk("moj_internet_jinken").url == "https://www.jinken.go.jp/"


def test_desk_sources_survive_the_directory_round_trip(k):
    from infra.knowledge_schema import DeskDoc, desk_to_dict

    for desk in k.desks:
        assert DeskDoc.model_validate(desk_to_dict(desk)).model() == desk


# 23 (part): foreign-language desks, English guides and chart, further languages as data.
def test_foreign_language_desks(k):
    moj = k.desk("moj_foreign_language")
    assert moj.phone == "0570-090911" and moj.hours_ja.startswith("平日 9:00〜17:00")
    assert len(moj.languages) == 10 and {"en", "zh", "ko", "vi", "pt"} <= set(moj.languages)
    assert not moj.uncertain and all(s.checked for s in moj.sources)
    yorisoi = k.desk("yorisoi_foreign")
    assert (
        yorisoi.phone == "0120-279-338" and yorisoi.uncertain
    )  # the guidance digit and hours are not confirmed
    assert "en" in yorisoi.languages


def test_every_guide_and_chart_text_exists_in_english(k):
    assert k.guide_languages == ("ja", "en") and k.chart.languages == ("ja", "en")
    for g in k.guides:
        assert g.text("title", "en") and g.text("summary", "en"), g.slug
        for step in g.steps:
            assert step.body_en and step.text("body", "en") == step.body_en, g.slug
            assert step.body_en.isascii() or "#" in step.body_en, (
                g.slug
            )  # English, not a copy of the Japanese
    for node in k.chart.nodes:
        assert node.text_en if node.kind == "question" else node.guidance_en, node.id


def _raw():
    import copy

    from infra.knowledge import parse, read_files

    return copy.deepcopy(parse(read_files()))


def test_a_missing_text_in_a_declared_language_is_refused():
    from domain.knowledge_model import KnowledgeError, validate

    raw = _raw()
    del raw["guides"]["guides"][0]["steps"][1]["body_en"]
    outcome = next(n for n in raw["chart"]["nodes"] if n["id"] == "o_listen")
    del outcome["guidance_en"]
    with pytest.raises(KnowledgeError) as err:
        validate(knowledge_from_raw(raw))
    text = str(err.value)
    assert "guides.evidence-preservation: missing steps[1].body_en" in text
    assert "chart.o_listen: missing guidance_en" in text


def test_a_further_language_is_only_data():
    from domain.knowledge_model import KnowledgeError, validate

    raw = _raw()
    raw["guides"]["languages"] = ["ja", "en", "vi"]
    with pytest.raises(KnowledgeError, match="missing title_vi"):
        validate(knowledge_from_raw(raw))
    for g in raw["guides"]["guides"]:
        g["title_vi"], g["summary_vi"] = "Hướng dẫn", "Tóm tắt"
        for step in g["steps"]:
            step["title_vi"], step["body_vi"] = "Bước", "Nội dung"
    knowledge = knowledge_from_raw(raw)
    validate(knowledge)
    guide = knowledge.guide("evidence-preservation")
    assert guide.text("title", "vi") == "Hướng dẫn" and guide.text("title", "ko") == guide.title_ja
