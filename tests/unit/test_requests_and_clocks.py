"""The request state machine and the clock rules: counting, applicability, and validation of the data."""

from __future__ import annotations

import copy
import uuid
from datetime import date, datetime

import pytest

from domain.calendar import JST
from domain.clocks import (
    CaseFacts,
    ClockRulesError,
    EvidenceFacts,
    RequestFacts,
    Span,
    before,
    case_clocks,
    end_of,
    evidence_clocks,
    is_urgent,
    request_clocks,
)
from domain.errors import InvalidState
from domain.requests import STUCK, TRANSITIONS, RequestStatus, ensure_transition, may_move
from infra.calendar import JapaneseHolidays
from infra.clock_rules import read_raw, rules_from
from infra.knowledge import load_knowledge

S = RequestStatus
RULES = rules_from(read_raw(), load_knowledge())


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)  # type: ignore[misc]


# -- the state machine ---------------------------------------------------------------------------------


def test_every_status_has_its_moves_and_final_ones_have_none() -> None:
    assert set(TRANSITIONS) == set(RequestStatus)
    for final in (S.removed, S.refused, S.withdrawn):
        assert TRANSITIONS[final] == frozenset()
    assert TRANSITIONS[S.drafted] == {S.sent, S.withdrawn}


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        (S.drafted, S.sent, True),
        (S.drafted, S.removed, False),  # never sent: nothing could be removed because of it
        (S.drafted, S.no_answer, False),
        (S.sent, S.acknowledged, True),
        (S.sent, S.no_answer, True),
        (S.no_answer, S.removed, True),  # a late answer
        (S.acknowledged, S.acknowledged, False),
        (S.partly_removed, S.removed, True),
        (S.partly_removed, S.sent, False),
        (S.refused, S.sent, False),  # refused: a new request to the next desk, not a resend
        (S.removed, S.refused, False),
        (S.withdrawn, S.drafted, False),
    ],
)
def test_moves(current: RequestStatus, target: RequestStatus, ok: bool) -> None:
    assert may_move(current, target) is ok
    if ok:
        ensure_transition(current, target)
    else:
        with pytest.raises(InvalidState) as raised:
            ensure_transition(current, target)
        assert raised.value.code == "invalid_transition"
        assert raised.value.extra == {"from_status": current.value, "to_status": target.value}


def test_no_status_goes_back_to_drafted_and_stuck_ones_are_reachable() -> None:
    assert all(S.drafted not in targets for targets in TRANSITIONS.values())
    reachable = {t for targets in TRANSITIONS.values() for t in targets}
    assert STUCK <= reachable


# -- counting ------------------------------------------------------------------------------------------


def test_days_exclude_the_first_day_and_end_at_midnight_japan_time() -> None:
    # Sent at 23:30 JST on 2 December (14:30 UTC): the same day in Japan, whatever UTC says.
    assert end_of(jst(2026, 12, 2, 23, 30), Span(7, "days"), "calendar", None) == jst(2026, 12, 10, 0, 0)
    assert end_of(jst(2026, 12, 3, 0, 10), Span(7, "days"), "calendar", None) == jst(2026, 12, 11, 0, 0)


def test_months_end_on_the_corresponding_day_or_the_months_last() -> None:
    assert end_of(date(2026, 11, 20), Span(3, "months"), "calendar", None) == jst(2027, 2, 21)
    # 30 November + 3 months: February has no 30th, so the period ends with its last day.
    assert end_of(date(2026, 11, 30), Span(3, "months"), "calendar", None) == jst(2027, 3, 1)
    assert end_of(date(2027, 11, 30), Span(3, "months"), "calendar", None) == jst(2028, 3, 1)  # 29 Feb
    assert end_of(date(2024, 2, 29), Span(3, "years"), "calendar", None) == jst(2027, 3, 1)


def test_business_days_skip_weekends_and_holidays() -> None:
    # The year-end closure (31 December to 3 January) and the weekend do not count: 4, 5 and 6 January.
    end = end_of(date(2026, 12, 30), Span(3, "days"), "business", JapaneseHolidays())
    assert end == jst(2027, 1, 7)
    with pytest.raises(ValueError):
        end_of(date(2026, 12, 30), Span(3, "days"), "business", None)


def test_reminders_come_before_the_end() -> None:
    due = jst(2026, 12, 10)
    assert before(due, Span(2, "days")) == jst(2026, 12, 8)
    assert before(jst(2027, 3, 31), Span(1, "months")) == jst(2027, 2, 28)


# -- what applies --------------------------------------------------------------------------------------


def facts(**kw: object) -> RequestFacts:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "kind": "platform_form",
        "sent_at": jst(2026, 12, 2, 10),
        "received_at": None,
        "designated_since": date(2025, 4, 30),
        "inquiry": None,
        "private_sexual_image": False,
        "pending": True,
    }
    return RequestFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_a_designated_service_gets_the_seven_day_clock_once_sent() -> None:
    [k] = request_clocks(RULES, facts())
    assert k.rule == "designated_platform_response" and k.due_at == jst(2026, 12, 10)
    assert request_clocks(RULES, facts(sent_at=None)) == []  # not sent: no clock
    assert request_clocks(RULES, facts(designated_since=None)) == []  # not designated: absent, no guess
    # Sent before the service was designated: the duty did not apply then.
    assert request_clocks(RULES, facts(sent_at=jst(2025, 4, 1), designated_since=date(2025, 4, 30))) == []
    assert request_clocks(RULES, facts(kind="disclosure_request")) == []
    [settled] = request_clocks(RULES, facts(pending=False))
    assert settled.settled is True


def test_inquiry_replies_by_kind_of_inquiry_and_content() -> None:
    received = jst(2026, 12, 1, 15)
    common = {"kind": "inquiry_reply", "sent_at": None, "received_at": received, "designated_since": None}
    [plain] = request_clocks(RULES, facts(**common, inquiry="removal"))
    assert plain.due_at == jst(2026, 12, 9) and plain.variant is None
    [short] = request_clocks(RULES, facts(**common, inquiry="removal", private_sexual_image=True))
    assert short.due_at == jst(2026, 12, 4) and short.variant == "private_sexual_image"
    assert short.remind_at == jst(2026, 12, 3)
    assert request_clocks(RULES, facts(**common, inquiry="disclosure")) == []
    assert request_clocks(RULES, facts(**{**common, "received_at": None}, inquiry="removal")) == []


def test_evidence_without_a_posting_time_has_no_log_clock() -> None:
    assert evidence_clocks(RULES, EvidenceFacts(uuid.uuid4(), None, False)) == []
    [k] = evidence_clocks(RULES, EvidenceFacts(uuid.uuid4(), jst(2026, 11, 20, 21, 15), False))
    assert k.rule == "access_log_retention" and k.due_at == jst(2027, 2, 21)
    assert is_urgent(RULES, [k], jst(2027, 1, 21)) is False
    assert is_urgent(RULES, [k], jst(2027, 1, 22)) is True


def test_case_clocks_need_their_categories_and_facts() -> None:
    cid = uuid.uuid4()
    defamation = frozenset({"RIGHTS.DEFAMATION"})
    assert case_clocks(RULES, CaseFacts(cid, defamation, None, None)) == []
    only_offender = case_clocks(RULES, CaseFacts(cid, defamation, date(2026, 11, 25), None))
    assert [k.rule for k in only_offender] == ["complaint_period"]
    assert only_offender[0].due_at == jst(2027, 5, 26)
    both = {
        k.rule: k
        for k in case_clocks(RULES, CaseFacts(cid, defamation, date(2026, 11, 25), date(2026, 1, 5)))
    }
    assert both["civil_limitation"].due_at == jst(2029, 11, 26)  # from the later date
    privacy = case_clocks(
        RULES, CaseFacts(cid, frozenset({"RIGHTS.PRIVACY_ID"}), date(2026, 11, 25), date(2026, 11, 20))
    )
    assert [k.rule for k in privacy] == ["civil_limitation"]


# -- the data ------------------------------------------------------------------------------------------


def test_every_rule_is_cited_dated_and_says_how_it_counts() -> None:
    raw = read_raw()
    assert raw["version"]
    for rule in RULES.rules:
        assert rule.source.startswith("https://") and rule.checked == date(2026, 12, 1)
        assert rule.counting in ("calendar", "business") and rule.basis in ("statute", "practice")
        assert rule.law_ja and rule.name_ja and rule.name_en
    assert {r.code for r in RULES.rules} == {
        "designated_platform_response",
        "removal_inquiry_reply",
        "access_log_retention",
        "complaint_period",
        "civil_limitation",
    }
    assert RULES.rule("access_log_retention").approximate is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.pop("source"), "source: an https URL is required"),
        (lambda r: r.update(source="http://example.jp"), "source: an https URL is required"),
        (lambda r: r.pop("checked"), "checked"),
        (lambda r: r.pop("counting"), "counting: calendar or business must be stated"),
        (lambda r: r.update(period={"count": 0, "unit": "days"}), "period.count"),
        (lambda r: r.update(period={"count": 7, "unit": "weeks"}), "period.unit"),
        (lambda r: r.update(when={}), "when"),
        (lambda r: r["when"].update(request_kinds=["fax"]), "request_kinds: unknown"),
        (lambda r: r.update(next_steps=["q_topic"]), "next_steps: not chart outcomes"),
        (lambda r: r.update(starts="posted_at"), "starts"),
        (lambda r: r.update(counting="business", period={"count": 3, "unit": "months"}), "business-day"),
    ],
)
def test_broken_rules_are_refused_on_load(change, problem: str) -> None:  # type: ignore[no-untyped-def]
    raw = copy.deepcopy(read_raw())
    change(raw["rules"][0])
    with pytest.raises(ClockRulesError) as raised:
        rules_from(raw, load_knowledge())
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_duplicate_codes_and_unknown_categories_are_refused() -> None:
    raw = copy.deepcopy(read_raw())
    raw["rules"].append(copy.deepcopy(raw["rules"][0]))
    raw["rules"][3]["when"]["categories"] = ["RIGHTS.NOPE"]
    with pytest.raises(ClockRulesError) as raised:
        rules_from(raw, load_knowledge())
    text = "; ".join(raised.value.problems)
    assert "duplicate code" in text and "categories: unknown" in text


# -- answer templates (issue 15 §4) --------------------------------------------------------------------


def test_fill_replaces_what_is_known_and_leaves_the_rest() -> None:
    from domain.suggestions import fill, japanese_date

    body = "{consulter_name} 様\n{platform} の投稿({url})。期限は {deadline} です。{unknown}"
    assert fill(body, {"platform": "X", "deadline": "2026年12月9日(水)"}) == (
        "{consulter_name} 様\nX の投稿({url})。期限は 2026年12月9日(水) です。{unknown}"
    )
    # A period ending at 24:00 JST on 9 December reads as 9 December.
    assert japanese_date(jst(2026, 12, 10)) == "2026年12月9日(水)"


def test_template_suggestions_are_checked_against_the_manual_and_the_rules() -> None:
    from domain.suggestions import SuggestionRulesError, uses_from_raw
    from infra.clock_rules import load_template_uses

    knowledge = load_knowledge()
    uses = {u.code: u for u in load_template_uses(knowledge, RULES)}
    assert uses["disclosure-guide"].deadline_rule == "access_log_retention"
    assert "RIGHTS.DEFAMATION" in uses["delete-request-guide"].categories  # the group covers its leaves
    bad = {
        "templates": [
            {"code": "nope", "case_types": ["RIGHTS.NOPE", "outcome:fly"], "deadline": "x", "desk": "y"},
        ]
    }
    with pytest.raises(SuggestionRulesError) as raised:
        uses_from_raw(
            bad,
            templates=["disclosure-guide"],
            categories={c.code: c.parent for c in knowledge.categories},
            outcomes=["delete"],
            rules=RULES,
            desks=["houterasu"],
        )
    text = "; ".join(raised.value.problems)
    for problem in (
        "not a manual template",
        "unknown categories",
        "unknown outcomes",
        "not a clock rule",
        "unknown desk",
    ):
        assert problem in text


def test_a_start_off_the_calendar_gives_no_clock_rather_than_an_error() -> None:
    far = datetime(9999, 11, 30, 12, 0, tzinfo=JST)
    assert evidence_clocks(RULES, EvidenceFacts(uuid.uuid4(), far, False)) == []
    # A fact dated 1 January of year 1 starts at midnight Japan time, which has no UTC instant.
    assert (
        case_clocks(RULES, CaseFacts(uuid.uuid4(), frozenset({"RIGHTS.INSULT"}), date(1, 1, 1), None)) == []
    )
