"""Legal and practical clocks computed from rules kept as data (domain/knowledge/clocks.yaml).

A rule names the subject it applies to (a request, an evidence item, a consultation), the conditions under
which it applies, the fact its period starts from, the period and how it is counted. When a rule's conditions
do not hold, or the fact it starts from is unknown, there is no clock: never a guessed date.

Counting (民法 第140条・第141条・第143条): the first day is not counted and a period ends at the end of its
last day, Japan time. A period of days ends `count` days after the starting day; a period of months or years
ends on the day of the last month with the starting day's number (the month's last day when it has none).
Business-day rules count Japanese business days instead. A period is not extended when its last day is a
holiday: the reminders come early enough for that not to matter, and extending it would be a guess.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from domain.calendar import JST, HolidayCalendar, add_business_days

SUBJECTS = ("request", "evidence", "consultation")
UNITS = ("days", "months", "years")
COUNTINGS = ("calendar", "business")
BASES = ("statute", "practice")
FACTS = ("offender_known_on", "damage_known_on")
TARGETS = ("designated_service",)
INQUIRIES = ("removal", "disclosure")
STARTS = {
    "request": ("sent_at", "received_at"),
    "evidence": ("posted_at",),
    "consultation": (*FACTS, "latest_of_facts"),
}


class ClockRulesError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class Span:
    count: int
    unit: str  # days | months | years

    def describe(self) -> str:
        return f"{self.count} {self.unit}"


@dataclass(frozen=True, slots=True)
class Variant:
    """A shorter (or longer) period under an extra condition, e.g. 2 days for private sexual images."""

    private_sexual_image: bool
    period: Span
    remind_before: Span
    law_ja: str
    source: str


@dataclass(frozen=True, slots=True)
class ClockRule:
    code: str
    name_ja: str
    name_en: str
    law_ja: str
    subject: str
    starts: str
    period: Span
    counting: str
    basis: str
    remind_before: Span
    source: str
    checked: date
    approximate: bool = False
    request_kinds: frozenset[str] = frozenset()
    target: str | None = None
    inquiry: str | None = None
    posted_at_known: bool = False
    categories: frozenset[str] = frozenset()
    facts: tuple[str, ...] = ()
    urgent_within: Span | None = None
    next_steps: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True, slots=True)
class ClockRules:
    version: str
    rules: tuple[ClockRule, ...]

    def rule(self, code: str) -> ClockRule | None:
        return next((r for r in self.rules if r.code == code), None)

    def for_subject(self, subject: str) -> tuple[ClockRule, ...]:
        return tuple(r for r in self.rules if r.subject == subject)


# -- parsing and validation ---------------------------------------------------------------------------


def _span(value: Any, where: str, problems: list[str]) -> Span | None:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected {{count, unit}}")
        return None
    count, unit = value.get("count"), value.get("unit")
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        problems.append(f"{where}.count: a positive whole number")
        return None
    if unit not in UNITS:
        problems.append(f"{where}.unit: one of {', '.join(UNITS)}")
        return None
    return Span(count, unit)


def _https(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str) or not value.startswith("https://"):
        problems.append(f"{where}: an https URL is required")
        return ""
    return value


def clock_rules_from_raw(
    raw: Mapping[str, Any],
    *,
    request_kinds: Sequence[str],
    categories: Sequence[str],
    chart_outcomes: Sequence[str],
) -> ClockRules:
    """Parse and validate every rule; all problems are reported at once."""
    problems: list[str] = []
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        problems.append("version: required")
    rules: list[ClockRule] = []
    seen: set[str] = set()
    for i, item in enumerate(raw.get("rules") or []):
        where = f"rules[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: expected a mapping")
            continue
        code = str(item.get("code") or "")
        where = f"rules[{i}] {code}"
        if not code:
            problems.append(f"{where}: code required")
        if code in seen:
            problems.append(f"{where}: duplicate code")
        seen.add(code)
        for key in ("name_ja", "name_en", "law_ja"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                problems.append(f"{where}.{key}: required")
        subject = item.get("subject")
        if subject not in SUBJECTS:
            problems.append(f"{where}.subject: one of {', '.join(SUBJECTS)}")
            continue
        starts = item.get("starts")
        if starts not in STARTS[subject]:
            problems.append(f"{where}.starts: for a {subject}, one of {', '.join(STARTS[subject])}")
        counting = item.get("counting")
        if counting not in COUNTINGS:
            problems.append(f"{where}.counting: calendar or business must be stated")
        basis = item.get("basis")
        if basis not in BASES:
            problems.append(f"{where}.basis: statute or practice")
        checked = item.get("checked")
        if not isinstance(checked, date):
            problems.append(f"{where}.checked: the date the source was checked")
        source = _https(item.get("source"), f"{where}.source", problems)
        period = _span(item.get("period"), f"{where}.period", problems)
        remind = _span(item.get("remind_before"), f"{where}.remind_before", problems)
        urgent = (
            _span(item["urgent_within"], f"{where}.urgent_within", problems)
            if "urgent_within" in item
            else None
        )
        if counting == "business" and period is not None and period.unit != "days":
            problems.append(f"{where}: business-day counting takes a period in days")
        when = item.get("when") or {}
        if not isinstance(when, Mapping) or not when:
            problems.append(f"{where}.when: the conditions it applies under are required")
            when = {}
        allowed = {
            "request": {"request_kinds", "target", "inquiry"},
            "evidence": {"posted_at"},
            "consultation": {"categories", "facts"},
        }[subject]
        if set(when) - allowed:
            problems.append(f"{where}.when: unknown conditions {sorted(set(when) - allowed)}")
        kinds = frozenset(when.get("request_kinds") or [])
        if subject == "request" and not kinds:
            problems.append(f"{where}.when.request_kinds: required for a request rule")
        if kinds - set(request_kinds):
            problems.append(f"{where}.when.request_kinds: unknown {sorted(kinds - set(request_kinds))}")
        target = when.get("target")
        if target is not None and target not in TARGETS:
            problems.append(f"{where}.when.target: one of {', '.join(TARGETS)}")
        inquiry = when.get("inquiry")
        if inquiry is not None and inquiry not in INQUIRIES:
            problems.append(f"{where}.when.inquiry: one of {', '.join(INQUIRIES)}")
        cats = frozenset(when.get("categories") or [])
        if cats - set(categories):
            problems.append(f"{where}.when.categories: unknown {sorted(cats - set(categories))}")
        facts = tuple(when.get("facts") or [])
        if set(facts) - set(FACTS):
            problems.append(f"{where}.when.facts: unknown {sorted(set(facts) - set(FACTS))}")
        if starts in FACTS and starts not in facts:
            problems.append(f"{where}: starts from {starts}, which `when.facts` must require")
        if starts == "latest_of_facts" and len(facts) < 2:
            problems.append(f"{where}: latest_of_facts needs two facts")
        if subject == "evidence" and when.get("posted_at") != "known":
            problems.append(f"{where}.when.posted_at: must be `known` (no clock from an unknown time)")
        steps = tuple(item.get("next_steps") or [])
        if set(steps) - set(chart_outcomes):
            problems.append(
                f"{where}.next_steps: not chart outcomes {sorted(set(steps) - set(chart_outcomes))}"
            )
        variants: list[Variant] = []
        for j, v in enumerate(item.get("variants") or []):
            vw = f"{where}.variants[{j}]"
            vwhen = v.get("when") or {}
            if set(vwhen) != {"private_sexual_image"} or vwhen["private_sexual_image"] is not True:
                problems.append(f"{vw}.when: only `private_sexual_image: true` is understood")
                continue
            vp = _span(v.get("period"), f"{vw}.period", problems)
            vr = _span(v.get("remind_before"), f"{vw}.remind_before", problems)
            vsource = _https(v.get("source"), f"{vw}.source", problems)
            if not isinstance(v.get("law_ja"), str):
                problems.append(f"{vw}.law_ja: required")
            if vp and vr:
                variants.append(Variant(True, vp, vr, str(v.get("law_ja") or ""), vsource))
        if variants and inquiry != "removal":
            problems.append(f"{where}.variants: only for removal inquiries")
        if period is None or remind is None or not isinstance(checked, date):
            continue
        rules.append(
            ClockRule(
                code=code,
                name_ja=str(item.get("name_ja")),
                name_en=str(item.get("name_en")),
                law_ja=str(item.get("law_ja")),
                subject=subject,
                starts=str(starts),
                period=period,
                counting=str(counting),
                basis=str(basis),
                remind_before=remind,
                source=source,
                checked=checked,
                approximate=item.get("approximate") is True,
                request_kinds=kinds,
                target=target,
                inquiry=inquiry,
                posted_at_known=subject == "evidence",
                categories=cats,
                facts=facts,
                urgent_within=urgent,
                next_steps=steps,
                variants=tuple(variants),
            )
        )
    if problems:
        raise ClockRulesError(problems)
    return ClockRules(str(version), tuple(rules))


# -- counting -----------------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def last_day(start: date, span: Span, counting: str, holidays: HolidayCalendar | None) -> date:
    """The last day of a period that starts the day after `start` (初日不算入)."""
    if counting == "business":
        if holidays is None:
            raise ValueError("business-day counting needs the holiday calendar")
        return add_business_days(start, span.count, holidays)
    if span.unit == "days":
        return start + timedelta(days=span.count)
    months = span.count if span.unit == "months" else span.count * 12
    return _add_months(start, months)


def end_of(start: datetime | date, span: Span, counting: str, holidays: HolidayCalendar | None) -> datetime:
    """The instant a period that begins with `start` runs out: the end (24:00 JST) of its last day."""
    day = start.astimezone(JST).date() if isinstance(start, datetime) else start
    end = last_day(day, span, counting, holidays)
    return datetime.combine(end + timedelta(days=1), time(0), tzinfo=JST)


def before(instant: datetime, span: Span) -> datetime:
    """`span` before `instant` (for reminders; months and years on the calendar, in Japan time)."""
    if span.unit == "days":
        return instant - timedelta(days=span.count)
    local = instant.astimezone(JST)
    months = span.count if span.unit == "months" else span.count * 12
    back = _add_months(local.date(), -months)
    return datetime.combine(back, local.timetz())


# -- what applies -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestFacts:
    id: uuid.UUID
    kind: str
    sent_at: datetime | None
    received_at: datetime | None
    designated_since: date | None  # the target service's designation, None when not designated or unknown
    inquiry: str | None
    private_sexual_image: bool
    pending: bool  # still waiting for what the clock measures


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    id: uuid.UUID
    posted_at: datetime | None
    acted: bool  # a disclosure step concerning it has been sent


@dataclass(frozen=True, slots=True)
class CaseFacts:
    id: uuid.UUID
    categories: frozenset[str]
    offender_known_on: date | None
    damage_known_on: date | None


@dataclass(frozen=True, slots=True)
class ComputedClock:
    rule: str
    subject: str  # request | evidence | consultation
    subject_id: uuid.UUID
    starts_at: datetime
    due_at: datetime
    remind_at: datetime
    settled: bool = False  # what the clock measured happened (an answer, a reply, a disclosure step)
    variant: str | None = None
    law_ja: str = ""
    source: str = ""

    def key(self) -> tuple[str, str, uuid.UUID]:
        return (self.rule, self.subject, self.subject_id)


@dataclass(frozen=True, slots=True)
class CaseClockInput:
    case: CaseFacts
    evidence: Sequence[EvidenceFacts] = ()
    requests: Sequence[RequestFacts] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def _clock(
    rule: ClockRule,
    subject_id: uuid.UUID,
    start: datetime | date,
    holidays: HolidayCalendar | None,
    *,
    settled: bool,
    variant: Variant | None = None,
) -> ComputedClock | None:
    """None for a start so far from now that its end is off the calendar (year 1 or 9999): no clock."""
    try:
        return _computed(rule, subject_id, start, holidays, settled=settled, variant=variant)
    except (OverflowError, ValueError):
        return None


def _computed(
    rule: ClockRule,
    subject_id: uuid.UUID,
    start: datetime | date,
    holidays: HolidayCalendar | None,
    *,
    settled: bool,
    variant: Variant | None = None,
) -> ComputedClock:
    period = variant.period if variant else rule.period
    remind = variant.remind_before if variant else rule.remind_before
    due = end_of(start, period, rule.counting, holidays)
    starts_at = start if isinstance(start, datetime) else datetime.combine(start, time(0), tzinfo=JST)
    for instant in (starts_at, due):
        instant.astimezone(UTC)  # stored in UTC: an instant that has none (year 1, 10000) raises here
    return ComputedClock(
        rule=rule.code,
        subject=rule.subject,
        subject_id=subject_id,
        starts_at=starts_at,
        due_at=due,
        remind_at=before(due, remind),
        settled=settled,
        variant="private_sexual_image" if variant else None,
        law_ja=variant.law_ja if variant else rule.law_ja,
        source=variant.source if variant else rule.source,
    )


def request_clocks(
    rules: ClockRules, r: RequestFacts, holidays: HolidayCalendar | None = None
) -> list[ComputedClock]:
    out = []
    for rule in rules.for_subject("request"):
        if r.kind not in rule.request_kinds:
            continue
        start = r.sent_at if rule.starts == "sent_at" else r.received_at
        if start is None:
            continue
        if rule.target == "designated_service":
            # Designation is per service and dated: a request sent before the designation has no clock.
            if r.designated_since is None or start.astimezone(JST).date() < r.designated_since:
                continue
        if rule.inquiry is not None and r.inquiry != rule.inquiry:
            continue
        variant = next((v for v in rule.variants if v.private_sexual_image and r.private_sexual_image), None)
        clock = _clock(rule, r.id, start, holidays, settled=not r.pending, variant=variant)
        if clock is not None:
            out.append(clock)
    return out


def evidence_clocks(
    rules: ClockRules, e: EvidenceFacts, holidays: HolidayCalendar | None = None
) -> list[ComputedClock]:
    if e.posted_at is None:
        return []
    clocks = [
        _clock(rule, e.id, e.posted_at, holidays, settled=e.acted) for rule in rules.for_subject("evidence")
    ]
    return [k for k in clocks if k is not None]


def case_clocks(
    rules: ClockRules, c: CaseFacts, holidays: HolidayCalendar | None = None
) -> list[ComputedClock]:
    out = []
    known = {"offender_known_on": c.offender_known_on, "damage_known_on": c.damage_known_on}
    for rule in rules.for_subject("consultation"):
        if rule.categories and not rule.categories & c.categories:
            continue
        if any(known[f] is None for f in rule.facts):
            continue
        if rule.starts == "latest_of_facts":
            start = max(d for f in rule.facts if (d := known[f]) is not None)
        else:
            day = known[rule.starts]
            assert day is not None
            start = day
        clock = _clock(rule, c.id, start, holidays, settled=False)
        if clock is not None:
            out.append(clock)
    return out


def all_clocks(
    rules: ClockRules, data: CaseClockInput, holidays: HolidayCalendar | None = None
) -> list[ComputedClock]:
    out = case_clocks(rules, data.case, holidays)
    for e in data.evidence:
        out += evidence_clocks(rules, e, holidays)
    for r in data.requests:
        out += request_clocks(rules, r, holidays)
    return out


def time_to_act(rules: ClockRules, clocks: Sequence[ComputedClock]) -> datetime | None:
    """The earliest end of an unsettled evidence clock (the access logs): the disclosure or preservation
    step should be taken before it."""
    ends = [k.due_at for k in clocks if k.subject == "evidence" and not k.settled]
    return min(ends) if ends else None


def is_urgent(rules: ClockRules, clocks: Sequence[ComputedClock], now: datetime) -> bool:
    """Whether an unsettled clock with an `urgent_within` is that close to its end (or past it)."""
    for k in clocks:
        rule = rules.rule(k.rule)
        if rule is None or rule.urgent_within is None or k.settled:
            continue
        if before(k.due_at, rule.urgent_within) <= now:
            return True
    return False
