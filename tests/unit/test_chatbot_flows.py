"""Chatbot flows: the validator on broken data, and the pure turn engine on every path of the shipped flows."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from domain.chart import iter_paths as chart_paths
from domain.chart import walk
from domain.chatbot import (
    CHART_PREFIX,
    END,
    FLOW_PREFIX,
    MENU,
    TEXT_KEYS,
    Draft,
    Engine,
    FlowError,
    Plan,
    References,
    State,
    UnknownChoice,
    iter_paths,
    validate_flows,
)
from domain.errors import ValidationFailed
from domain.triage import CategorySuggestion, TriageResult, UrgencyFlag
from infra.chatbot_loader import flows_from_dict, load_chatbot_flows, load_flows_text
from infra.knowledge import load_knowledge
from infra.triage_loader import load_triage_engine

REFS = References(
    desks=frozenset({"desk_a", "desk_b"}),
    guides=frozenset({"guide-a"}),
    categories=frozenset({"OTHER.MISC"}),
    desired_outcomes=frozenset({"advice", "delete"}),
    platforms=frozenset({"x"}),
)


def special_flows() -> list[dict[str, Any]]:
    return [
        {
            "id": "chart",
            "title_ja": "チャート",
            "start": "c",
            "nodes": [{"id": "c", "kind": "chart", "text_ja": "質問"}],
        },
        {
            "id": "free_text",
            "title_ja": "自由入力",
            "start": "f",
            "nodes": [{"id": "f", "kind": "free_text", "text_ja": "入力してください"}],
        },
        {
            "id": "handoff",
            "title_ja": "担当者",
            "start": "h",
            "nodes": [{"id": "h", "kind": "handoff", "text_ja": "コード"}],
        },
    ]


def tiny(*flows: dict[str, Any]) -> dict[str, Any]:
    """The smallest valid document, plus the given flows, so each test shows only its own fault."""
    return {
        "version": "t1",
        "texts": {k: "文" for k in TEXT_KEYS},
        "labels": {
            "menu_ja": "メニュー",
            "end_ja": "終了",
            "restart_ja": "最初から",
            "retry_free_text_ja": "もう一度",
        },
        "greeting_desks": ["desk_a"],
        "handoff_default_outcomes": ["advice"],
        "flows": [*flows, *special_flows()],
    }


def flow(*nodes: dict[str, Any], start: str = "q1", **extra: Any) -> dict[str, Any]:
    return {"id": "main", "title_ja": "主な流れ", "start": start, "nodes": list(nodes), **extra}


def q(node_id: str, *choices: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": "question",
        "text_ja": "質問",
        "choices": [{"id": cid, "label_ja": "選択", "next": nxt} for cid, nxt in choices],
        **extra,
    }


def a(node_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "kind": "answer", "text_ja": "答え", **extra}


def problems_of(raw: dict[str, Any]) -> str:
    with pytest.raises(FlowError) as caught:
        validate_flows(flows_from_dict(raw), REFS)
    return "\n".join(caught.value.problems)


# -- the validator ------------------------------------------------------------------------------------


def test_a_minimal_document_is_valid() -> None:
    flows = validate_flows(flows_from_dict(tiny(flow(q("q1", ("c1", "a1")), a("a1")))), REFS)
    assert [f.id for f in flows.flows] == ["main", "chart", "free_text", "handoff"]


def test_dead_ends_are_refused() -> None:
    assert "question without choices (dead end)" in problems_of(tiny(flow(q("q1"))))


def test_every_choice_target_must_exist() -> None:
    assert "leads to 'nowhere', which is not a node of flow 'main'" in problems_of(
        tiny(flow(q("q1", ("c1", "nowhere"))))
    )
    assert "leads to unknown flow 'flow:nope'" in problems_of(
        tiny(
            flow(q("q1", ("c1", "flow:nope"))),
        )
    )


def test_a_choice_may_not_jump_into_the_middle_of_another_flow() -> None:
    other = {"id": "other", "title_ja": "別", "start": "o1", "nodes": [a("o1"), a("o2")]}
    found = problems_of(tiny(flow(q("q1", ("c1", "o2"))), other))
    assert "which is not a node of flow 'main'" in found


def test_cycles_are_refused_unless_marked_as_loops() -> None:
    looping = flow(q("q1", ("c1", "q2")), q("q2", ("c2", "q1"), ("c3", "a1")), a("a1"))
    assert "cycle q1 -> q2 -> q1" in problems_of(tiny(looping))
    allowed = copy.deepcopy(looping)
    allowed["nodes"][1]["choices"][0]["loop"] = True
    validate_flows(flows_from_dict(tiny(allowed)), REFS)


def test_cycles_across_flows_are_refused() -> None:
    one = flow(q("q1", ("c1", "flow:two")))
    two = {"id": "two", "title_ja": "二", "start": "t1", "nodes": [q("t1", ("c2", "flow:main"))]}
    assert "cycle" in problems_of(tiny(one, two))


def test_unreachable_nodes_are_refused() -> None:
    assert "main.orphan: unreachable from 'q1'" in problems_of(
        tiny(flow(q("q1", ("c1", "a1")), a("a1"), a("orphan")))
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f["nodes"][1].update(desks=["desk_z"]), "unknown desk 'desk_z'"),
        (lambda f: f["nodes"][1].update(guides=["guide-z"]), "unknown guide 'guide-z'"),
        (lambda f: f.update(draft={"categories": ["OTHER"]}), "unknown category 'OTHER'"),
        (
            lambda f: f["nodes"][1].update(draft={"desired_outcomes": ["revenge"]}),
            "unknown desired outcome 'revenge'",
        ),
        (
            lambda f: f["nodes"][0]["choices"][0].update(draft={"platforms": ["myspace"]}),
            "unknown platform 'myspace'",
        ),
        (lambda f: f.update(triage_categories=["NOPE.NOPE"]), "unknown triage category 'NOPE.NOPE'"),
    ],
)
def test_every_code_must_exist_in_the_knowledge(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    main = flow(q("q1", ("c1", "a1")), a("a1"))
    change(main)
    assert expected in problems_of(tiny(main))


def test_greeting_desks_and_default_outcomes_are_checked() -> None:
    raw = tiny(flow(q("q1", ("c1", "a1")), a("a1")))
    raw["greeting_desks"] = ["desk_z"]
    raw["handoff_default_outcomes"] = ["nope"]
    found = problems_of(raw)
    assert "greeting_desks: unknown desk 'desk_z'" in found
    assert "handoff_default_outcomes: unknown desired outcome 'nope'" in found


def test_ids_must_be_unique_well_formed_and_not_reserved() -> None:
    found = problems_of(tiny(flow(q("q1", ("c1", "a1"), ("c1", "a1")), a("a1"), a("a1"))))
    assert "duplicate choice id 'c1'" in found and "duplicate node id 'a1'" in found
    assert "malformed or reserved choice id" in problems_of(tiny(flow(q("q1", ("menu", "a1")), a("a1"))))
    assert "malformed or reserved node id" in problems_of(tiny(flow(q("q1", ("c1", "Bad-Id")), a("Bad-Id"))))


def test_the_special_flows_are_required() -> None:
    raw = tiny(flow(q("q1", ("c1", "a1")), a("a1")))
    raw["flows"] = [f for f in raw["flows"] if f["id"] != "handoff"]
    assert "a flow 'handoff' starting with a 'handoff' node is required" in problems_of(raw)


def test_engine_nodes_take_no_choices_of_their_own() -> None:
    raw = tiny(flow(q("q1", ("c1", "a1")), a("a1")))
    raw["flows"][1]["nodes"][0]["choices"] = [{"id": "x1", "label_ja": "x", "next": "c"}]
    assert "a chart node gets its choices from the engine" in problems_of(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "chatbot.yaml must be a mapping"),
        ({**tiny(), "flows": []}, "chatbot.yaml: 'flows' is empty"),
        ({**tiny(), "surprise": 1}, "unknown keys ['surprise']"),
        ({**tiny(), "texts": {"greeting_ja": "文"}}, "missing 'privacy_ja'"),
        (
            tiny(
                {
                    "id": "main",
                    "title_ja": "x",
                    "start": "q1",
                    "nodes": [{"id": "q1", "kind": "question", "colour": 1}],
                }
            ),
            "chatbot.yaml: flows[main].nodes[q1]: unknown keys ['colour']",
        ),
        (tiny(flow({"id": "q1", "kind": "poem", "text_ja": "x"})), "unknown kind 'poem'"),
        (
            tiny(flow(q("q1", ("c1", "a1")), a("a1", texts={"text_en": "x"}))),
            "chatbot.yaml: flows[main].nodes[a1]: unknown keys ['texts']",
        ),
        (tiny(flow(q("q1", ("c1", "a1")), {"id": "a1", "kind": "answer"})), "no text_ja"),
    ],
)
def test_malformed_documents_are_refused(raw: Any, expected: str) -> None:
    with pytest.raises(FlowError) as caught:
        validate_flows(flows_from_dict(raw), REFS)
    assert expected in str(caught.value)


def test_a_typo_in_a_key_is_refused_with_the_file_and_the_place() -> None:
    main = flow(q("q1", ("c1", "a1")), a("a1"))
    choice = main["nodes"][0]["choices"][0]
    choice["labl_ja"] = choice.pop("label_ja")
    with pytest.raises(FlowError) as caught:
        flows_from_dict(tiny(main))
    assert caught.value.problems == [
        "chatbot.yaml: flows[main].nodes[q1].choices[c1]: missing 'label_ja'",
        "chatbot.yaml: flows[main].nodes[q1].choices[c1]: unknown keys ['labl_ja']",
    ]


def test_wrong_types_are_refused_not_coerced() -> None:
    main = flow(q("q1", ("c1", "a1")), a("a1", desks="desk_a", platform_routes="yes"))
    found = problems_of(tiny(main))
    assert "chatbot.yaml: flows[main].nodes[a1]: 'desks': Input should be a valid list" in found
    assert "chatbot.yaml: flows[main].nodes[a1]: 'platform_routes': Input should be a valid boolean" in found


def test_the_loader_checks_against_the_real_knowledge() -> None:
    raw = tiny(flow(q("q1", ("c1", "a1")), a("a1", desks=["desk_a"])))
    import yaml

    with pytest.raises(FlowError, match="unknown desk 'desk_a'"):
        load_flows_text(yaml.safe_dump(raw, allow_unicode=True), load_knowledge())
    with pytest.raises(FlowError):
        load_flows_text("version: [unclosed", load_knowledge())


# -- the shipped flows --------------------------------------------------------------------------------

FLOWS = load_chatbot_flows()
KNOWLEDGE = load_knowledge()
ENGINE = Engine(FLOWS)
PATHS = list(iter_paths(FLOWS))


def test_the_shipped_flows_cover_the_issue() -> None:
    ids = [f.id for f in FLOWS.flows]
    for wanted in (
        "delete_post",
        "delisting",
        "identify_poster",
        "evidence",
        "sexual_images",
        "received_letter",
        "provider",
        "chart",
        "free_text",
        "handoff",
    ):
        assert wanted in ids
    # Every flow is walked by at least one path.
    assert {p[0] for p in PATHS} == {FLOW_PREFIX + i for i in ids}


def test_the_sexual_images_flow_starts_with_the_urgent_desks() -> None:
    plan = ENGINE.choose(ENGINE.greeting().state, "flow:sexual_images")
    assert plan.says[0].desks[:3] == ("police_8103", "onestop_8891", "paps")


def test_the_greeting_and_every_free_text_prompt_ask_for_no_personal_data() -> None:
    privacy = FLOWS.texts["privacy_ja"]
    assert "住所" in privacy and "名前" in privacy
    greeting = ENGINE.greeting()
    assert privacy in greeting.says[0].text
    prompt = ENGINE.choose(greeting.state, "flow:free_text")
    assert prompt.says[-1].text.startswith(privacy)
    again = ENGINE.free_text(prompt.state, TriageResult([], [], ["ihaho"], [], "t"))
    retry = next(cid for cid, _ in again.choices if cid == "flow:free_text")
    assert ENGINE.choose(again.state, retry).says[-1].text.startswith(privacy)


def _check_plan(plan: Plan) -> None:
    known_desks = {d.code for d in KNOWLEDGE.desks}
    for say in plan.says:
        assert say.text
        assert set(say.desks) <= known_desks
        assert all(KNOWLEDGE.guide(g) for g in say.guides)
    draft = plan.state.draft
    assert set(draft.categories) <= {c.code for c in KNOWLEDGE.leaf_categories()}
    assert set(draft.desired_outcomes) <= {i.code for i in KNOWLEDGE.code_list("desired_outcomes")}
    assert set(draft.platforms) <= {p.code for p in KNOWLEDGE.platforms}
    if plan.action is None:
        assert plan.state.offered == plan.choices


@pytest.mark.parametrize("path", PATHS, ids=lambda p: "/".join(p))
def test_every_path_of_every_flow(path: tuple[str, ...]) -> None:
    plan = ENGINE.greeting()
    for choice_id in path:
        assert choice_id in dict(plan.choices), (choice_id, plan.choices)
        plan = ENGINE.choose(plan.state, choice_id)
        _check_plan(plan)
        if plan.action == "chart":
            plan = ENGINE.chart_step(plan, walk(KNOWLEDGE.chart, list(plan.state.chart or ())))
        elif plan.action == "handoff":
            plan = ENGINE.handoff_done(plan)
        _check_plan(plan)
    # Nobody is left without a way on: the menu (or the next chart question) is always offered.
    offered = dict(plan.choices)
    assert MENU in offered
    if plan.state.node not in ("chart_start", "free_text_prompt", "handoff_code"):
        assert FLOW_PREFIX + "handoff" in offered and END in offered


@pytest.mark.parametrize("answers", list(chart_paths(KNOWLEDGE.chart)), ids=lambda p: "/".join(p))
def test_every_chart_path_through_the_chatbot(answers: tuple[str, ...]) -> None:
    plan = ENGINE.choose(ENGINE.greeting().state, "flow:chart")
    plan = ENGINE.chart_step(plan, walk(KNOWLEDGE.chart, []))
    for option in answers:
        plan = ENGINE.choose(plan.state, CHART_PREFIX + option)
        assert plan.action == "chart"
        plan = ENGINE.chart_step(plan, walk(KNOWLEDGE.chart, list(plan.state.chart or ())))
        _check_plan(plan)
    assert plan.state.chart == answers
    assert plan.says[-1].desks  # the outcome names its desks
    assert FLOW_PREFIX + "handoff" in dict(plan.choices)


def test_drafts_accumulate_codes_along_a_path() -> None:
    plan = ENGINE.greeting()
    for choice_id in ("flow:delete_post", "delete_what_privacy", "delete_where_sns", "delete_sns_x"):
        plan = ENGINE.choose(plan.state, choice_id)
    assert plan.state.draft == Draft(("RIGHTS.PRIVACY_ID",), ("delete",), ("x",))
    plan = ENGINE.choose(plan.state, "delete_sns_to_evidence")
    assert plan.state.draft.desired_outcomes == ("delete", "advice")


def test_only_offered_choices_are_accepted() -> None:
    greeting = ENGINE.greeting()
    for bad in ("delete_sns_x", "chart:danger_yes", "flow:nope", "", "END"):
        with pytest.raises(UnknownChoice):
            ENGINE.choose(greeting.state, bad)
    assert issubclass(UnknownChoice, ValidationFailed)


def test_state_round_trips_through_json() -> None:
    plan = ENGINE.choose(ENGINE.greeting().state, "flow:delete_post")
    again = State.from_dict(plan.state.to_dict())
    assert again == plan.state


def test_free_text_puts_urgent_desks_first_and_suggests_flows() -> None:
    result = TriageResult(
        categories=[CategorySuggestion("RIGHTS.PRIVATE_SEXUAL", 3.0, ["裸"])],
        urgency=[UrgencyFlag("sexual_image", ["裸"], ["police_8103", "onestop_8891"])],
        desk_codes=["police_8103", "onestop_8891", "paps"],
        guide_slugs=["sexual-images"],
    )
    plan = ENGINE.free_text(ENGINE.greeting().state, result)
    assert plan.says[0].desks == ("police_8103", "onestop_8891")
    assert plan.says[1].desks == ("paps",)
    assert plan.choices[0][0] == "flow:sexual_images"
    # The leading suggestion goes into the draft the hand-off carries; never the text itself.
    assert plan.state.draft == Draft(categories=("RIGHTS.PRIVATE_SEXUAL",))


def test_real_triage_suggests_the_matching_flow() -> None:
    rules = load_triage_engine()
    plan = ENGINE.free_text(State(), rules.triage("プロバイダから発信者情報開示に係る意見照会書が届きました"))
    assert "flow:received_letter" in dict(plan.choices)
    nothing = ENGINE.free_text(State(), rules.triage("こんにちは"))
    assert nothing.says[-1].text == FLOWS.texts["triage_no_match_ja"]
