"""The contact-desk chart: validation of its shape and the walk engine."""

import copy

import pytest

from domain.chart import ChartStep, InvalidChartAnswer, iter_paths, walk
from domain.errors import ValidationFailed
from domain.knowledge_model import KnowledgeError, validate
from infra.knowledge import load_knowledge
from infra.knowledge_schema import chart_from_raw, knowledge_from_raw


def tiny_raw(chart: dict) -> dict:
    """The smallest knowledge that can hold a chart, so each test shows only the chart's fault."""
    return {
        "categories": {
            "groups": [
                {
                    "code": "OTHER",
                    "label_ja": "その他の相談",
                    "label_en": "Other",
                    "nature": "other",
                    "description_ja": "説明",
                    "children": [
                        {
                            "code": "OTHER.MISC",
                            "label_ja": "その他",
                            "label_en": "Other",
                            "nature": "other",
                            "description_ja": "説明",
                        }
                    ],
                }
            ]
        },
        "intake": {"channels": [{"code": "web", "label_ja": "Web", "label_en": "Web"}]},
        "desks": {
            "desks": [
                {
                    "code": "desk_a",
                    "name_ja": "窓口A",
                    "name_en": "Desk A",
                    "handles_ja": "なんでも",
                    "handles_en": "anything",
                    "phone": "110",
                    "url": None,
                    "hours_ja": None,
                    "kind": "police",
                    "categories": ["OTHER.MISC"],
                    "emergency": True,
                    "sources": [
                        {"fact": "110", "url": "https://example.org/desk-a", "checked": "2026-11-01"}
                    ],
                }
            ]
        },
        "platforms": {"platforms": []},
        "guides": {
            "guides": [
                {
                    "slug": "guide-a",
                    "title_ja": "手引きA",
                    "title_en": "Guide A",
                    "summary_ja": "要約",
                    "steps": [{"title_ja": "手順", "body_ja": "本文"}],
                }
            ]
        },
        "chart": chart,
    }


def q(node_id, *options):
    return {
        "id": node_id,
        "kind": "question",
        "text_ja": "質問",
        "text_en": "Question",
        "options": [
            {"id": oid, "label_ja": "選択", "label_en": "Choice", "next": nxt} for oid, nxt in options
        ],
    }


def o(node_id, desks=("desk_a",), guides=("guide-a",)):
    return {
        "id": node_id,
        "kind": "outcome",
        "title_ja": "結果",
        "title_en": "Outcome",
        "guidance_ja": "案内",
        "desks": list(desks),
        "guides": list(guides),
    }


def good_chart() -> dict:
    return {
        "version": "t1",
        "source": {
            "title_ja": "相談窓口のご案内",
            "publisher_ja": "法務省・総務省",
            "urls": ["https://example.org/leaflet"],
            "checked": "2026-12-01",
        },
        "start": "q1",
        "nodes": [
            q("q1", ("a", "q2"), ("b", "end1")),
            q("q2", ("c", "end1"), ("d", "end2")),
            o("end1"),
            o("end2"),
        ],
    }


def problems_of(chart: dict) -> list[str]:
    with pytest.raises(KnowledgeError) as err:
        validate(knowledge_from_raw(tiny_raw(chart)))
    return err.value.problems


@pytest.fixture(scope="module")
def chart():
    return load_knowledge().chart


# ---------------------------------------------------------------- validation


def test_tiny_chart_is_valid():
    validate(knowledge_from_raw(tiny_raw(good_chart())))


def test_cycle_is_reported():
    c = good_chart()
    c["nodes"][1]["options"][0]["next"] = "q1"  # q2 -c-> q1 -a-> q2
    assert any("cycle" in p and "q1" in p and "q2" in p for p in problems_of(c))


def test_self_loop_is_reported():
    c = good_chart()
    c["nodes"][0]["options"][0]["next"] = "q1"
    problems = problems_of(c)
    assert any("cycle q1 -> q1" in p for p in problems)


def test_dead_end_question_is_reported():
    c = good_chart()
    c["nodes"][1]["options"] = []
    assert any("q2: question has no options" in p for p in problems_of(c))


def test_dangling_option_is_reported():
    c = good_chart()
    c["nodes"][0]["options"][1]["next"] = "nowhere"
    assert any("points to unknown node 'nowhere'" in p for p in problems_of(c))


def test_unknown_start_is_reported():
    c = good_chart()
    c["start"] = "missing"
    assert any("start node 'missing'" in p for p in problems_of(c))


def test_outcome_without_desks_is_reported():
    c = good_chart()
    c["nodes"][3]["desks"] = []
    assert any("end2: outcome has no desk" in p for p in problems_of(c))


def test_unknown_desk_or_guide_in_outcome_is_reported():
    c = good_chart()
    c["nodes"][2]["desks"] = ["desk_a", "ghost"]
    c["nodes"][2]["guides"] = ["ghost-guide"]
    problems = problems_of(c)
    assert any("end1: unknown desk 'ghost'" in p for p in problems)
    assert any("end1: unknown guide 'ghost-guide'" in p for p in problems)


def test_unreachable_node_is_reported():
    c = good_chart()
    c["nodes"].append(o("orphan"))
    assert any("'orphan' is unreachable" in p for p in problems_of(c))


def test_duplicate_node_and_option_ids_are_reported():
    c = good_chart()
    c["nodes"].append(o("end1"))
    c["nodes"][0]["options"].append({"id": "a", "label_ja": "重複", "label_en": "Dup", "next": "end2"})
    problems = problems_of(c)
    assert any("duplicate node id 'end1'" in p for p in problems)
    assert any("duplicate option id 'a'" in p for p in problems)


def test_unknown_kind_is_reported():
    c = good_chart()
    c["nodes"][3]["kind"] = "maybe"
    assert any("unknown kind 'maybe'" in p for p in problems_of(c))


# ---------------------------------------------------------------- walking the tiny chart


def test_walk_tiny_chart_step_by_step():
    c = chart_from_raw(good_chart())
    step = walk(c, [])
    assert isinstance(step, ChartStep) and not step.done and step.node.id == "q1" and step.path == ()
    step = walk(c, ["a"])
    assert step.node.id == "q2" and step.answers == ("a",) and step.path[0].node_id == "q1"
    step = walk(c, ["a", "d"])
    assert step.done and step.node.id == "end2" and step.chart_version == "t1"
    assert [(p.node_id, p.option_id) for p in step.path] == [("q1", "a"), ("q2", "d")]
    assert sorted(iter_paths(c)) == [("a", "c"), ("a", "d"), ("b",)]


# ---------------------------------------------------------------- the real chart


def test_every_path_of_the_real_chart_reaches_an_outcome_with_a_desk(chart):
    knowledge = load_knowledge()
    paths = list(iter_paths(chart))
    assert len(paths) >= 10
    reached = set()
    for answers in paths:
        step = walk(chart, answers)
        assert step.done, answers
        assert step.node.desks, answers
        assert all(knowledge.desk(d) is not None for d in step.node.desks)
        assert step.node.title_ja and step.node.guidance_ja
        reached.add(step.node.id)
    outcomes = {n.id for n in chart.nodes if n.is_outcome}
    assert reached == outcomes  # every outcome is actually reachable by some path


def test_emergency_is_asked_first_and_routes_to_110(chart):
    first = walk(chart, [])
    assert not first.done
    step = walk(chart, ["danger_yes"])
    assert step.done
    assert step.node.desks[0] == "police_110"


def test_non_imminent_threat_route_still_lists_110(chart):
    step = walk(chart, ["danger_no", "topic_threat"])
    assert step.done and "police_110" in step.node.desks


def test_government_flow(chart):
    base = ["danger_no", "topic_abuse"]
    assert walk(chart, base + ["need_listen"]).node.desks[0] == "mamorouyo_kokoro"
    solve = base + ["need_solution"]
    assert set(walk(chart, solve + ["goal_compensation"]).node.desks) >= {"bar_association", "houterasu"}
    assert "police_cyber_desk" in walk(chart, solve + ["goal_police"]).node.desks
    assert set(walk(chart, solve + ["goal_self"]).node.desks) >= {"ihaho", "moj_jinken_110"}
    assert set(walk(chart, solve + ["goal_delegate"]).node.desks) >= {"sia_hotline", "moj_jinken_110"}


@pytest.mark.parametrize("minor", ["minor_yes_or_unsure", "minor_no"])
def test_sexual_image_route(chart, minor):
    step = walk(chart, ["danger_no", "topic_sexual_image", minor])
    assert step.done
    assert {"police_8103", "onestop_8891", "paps"} <= set(step.node.desks)
    assert "sexual-images" in step.node.guides


def test_sexual_image_of_a_minor_goes_to_police_as_csam(chart):
    step = walk(chart, ["danger_no", "topic_sexual_image", "minor_yes_or_unsure"])
    assert "police_cyber_desk" in step.node.desks
    assert "児童ポルノ" in step.node.title_ja


@pytest.mark.parametrize(
    ("topic", "desk"),
    [
        ("topic_consumer", "consumer_188"),
        ("topic_spam", "dekyo_spam"),
        ("topic_distress", "mamorouyo_kokoro"),
        ("topic_received_letter", "ihaho"),
        ("topic_illegal_found", "ihc"),
        ("topic_hijack", "police_cyber_desk"),
        ("topic_bullying", "child_sos_24h"),
    ],
)
def test_special_routes(chart, topic, desk):
    step = walk(chart, ["danger_no", topic])
    assert step.done and step.node.desks[0] == desk


def test_received_letter_route_offers_a_lawyer_and_the_guide(chart):
    step = walk(chart, ["danger_no", "topic_received_letter"])
    assert "bar_association" in step.node.desks and "received-letter" in step.node.guides


def test_invalid_option_raises(chart):
    with pytest.raises(InvalidChartAnswer) as err:
        walk(chart, ["danger_no", "goal_self"])  # a real id, but not offered at q_topic
    assert err.value.code == "invalid_chart_answer"
    assert err.value.node_id == "q_topic" and err.value.option_id == "goal_self" and err.value.position == 1
    assert isinstance(err.value, ValidationFailed) and err.value.extra == {"position": 1}
    with pytest.raises(InvalidChartAnswer):
        walk(chart, ["no-such-option"])


def test_answer_after_outcome_raises(chart):
    with pytest.raises(InvalidChartAnswer) as err:
        walk(chart, ["danger_yes", "danger_no"])
    assert "after the outcome" in err.value.explanation and err.value.position == 1


def test_walk_is_deterministic_and_does_not_mutate_input(chart):
    answers = ["danger_no", "topic_abuse", "need_solution", "goal_self"]
    before = copy.copy(answers)
    assert walk(chart, answers) == walk(chart, tuple(answers))
    assert answers == before


def test_option_ids_are_unique_across_the_real_chart(chart):
    ids = [opt.id for n in chart.nodes for opt in n.options]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------- issue 14 items 15-18


def test_goals_combine_at_the_goal_question(chart):
    """Remove the post *and* claim damages: the walk takes several goals, the outcome says あわせて."""
    base = ["danger_no", "topic_abuse", "need_solution"]
    assert chart.node("q_goal").multiple
    step = walk(chart, base + ["goal_self", "goal_compensation"])
    assert step.done and step.node.id == "o_self_service"
    assert step.also[0].id == "o_lawyer"  # the chosen goal first
    assert step.answers == ("danger_no", "topic_abuse", "need_solution", "goal_self", "goal_compensation")
    three = walk(chart, base + ["goal_police", "goal_delegate", "goal_compensation"])
    assert three.node.id == "o_police"
    assert [n.id for n in three.also][:2] == ["o_delegate", "o_lawyer"]
    assert three.node not in three.also and len({n.id for n in three.also}) == len(three.also)


def test_an_outcome_says_what_else_applies(chart):
    step = walk(chart, ["danger_no", "topic_abuse", "need_solution", "goal_compensation"])
    assert "o_self_service" in [n.id for n in step.also]  # あわせて: the post can be removed too


def test_a_second_goal_from_another_question_is_still_refused(chart):
    with pytest.raises(InvalidChartAnswer):
        walk(chart, ["danger_no", "topic_abuse", "need_solution", "goal_self", "need_listen"])


def test_a_multiple_question_must_lead_to_outcomes():
    bad = good_chart()
    bad["nodes"][0]["multiple"] = True  # q1 -> q2 is a question
    assert any("must end the walk" in p for p in problems_of(bad))


def test_also_must_name_another_outcome():
    bad = good_chart()
    bad["nodes"][2]["also"] = ["end1", "q1"]
    problems = problems_of(bad)
    assert any("also 'end1'" in p for p in problems) and any("also 'q1'" in p for p in problems)


def _goals_reached(chart, answers) -> set[str]:
    step = walk(chart, answers)
    if not step.done:
        return set().union(*(_goals_reached(chart, (*answers, o.id)) for o in step.node.options))
    return set(step.node.goals).union(*(set(n.goals) for n in step.also))


EVERY_VICTIM_GOAL = {"listen", "compensation", "police", "removal_self", "removal_delegate"}


@pytest.mark.parametrize(
    ("answers", "goals"),
    [
        (["danger_no", "topic_abuse"], EVERY_VICTIM_GOAL),
        (["danger_no", "topic_threat"], EVERY_VICTIM_GOAL),
        (["danger_no", "topic_sexual_image", "minor_no"], EVERY_VICTIM_GOAL),
        (["danger_no", "topic_sexual_image", "minor_yes_or_unsure"], EVERY_VICTIM_GOAL - {"removal_self"}),
        (["danger_no", "topic_bullying"], EVERY_VICTIM_GOAL),
    ],
)
def test_every_topic_reaches_every_goal_that_applies(chart, answers, goals):
    assert goals <= _goals_reached(chart, answers)


def test_threats_keep_police_first_with_the_other_goals_as_also(chart):
    step = walk(chart, ["danger_no", "topic_threat"])
    assert step.node.id == "o_police"
    assert {"o_self_service", "o_delegate", "o_lawyer", "o_listen"} <= {n.id for n in step.also}


def test_the_local_police_station_is_in_the_directory_and_the_police_outcome(chart):
    k = load_knowledge()
    station = k.desk("police_station")
    assert station is not None and "被害届" in station.name_ja and "告訴" in station.name_ja
    assert "police_station" in walk(chart, ["danger_no", "topic_threat"]).node.desks
    assert "警察署" in chart.node("o_police").guidance_ja


def test_the_chart_records_its_government_source_and_marks_centre_additions(chart):
    src = chart.source
    assert src.title_ja == "インターネット上の書き込みなどに関する相談・通報窓口のご案内"
    assert src.publisher_ja == "法務省・総務省" and src.checked is not None
    assert all(u.startswith("https://") for u in src.urls)
    assert src.edition is None and "未確認" in src.notes_ja  # the leaflet's edition is not known
    origins = {n.id: n.origin for n in chart.nodes}
    assert {origins[i] for i in ("q_need", "q_goal", "o_listen", "o_lawyer", "o_police")} == {"government"}
    assert {origins[i] for i in ("q_topic", "q_minor", "o_received_letter", "o_spam")} == {"centre"}


def test_a_reference_chart_without_source_is_refused():
    bad = good_chart()
    del bad["source"]
    assert any("no source" in p for p in problems_of(bad))
