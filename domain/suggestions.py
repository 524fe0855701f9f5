"""Answer templates suggested for a case and filled from it (issue 15 §4): the platform, the post's URL, the
desk's name and phone from the directory, and the deadline from the case's clocks. A placeholder the case
cannot fill stays as written ({deadline}) and is listed as unfilled: the consultant fills it, nothing is
guessed. The values a draft was filled with are recorded with its version (domain/answers.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from domain.actors import Actor
from domain.calendar import JST
from domain.clocks import ClockRules
from domain.consultations import Consultation, ConsultationService
from domain.knowledge_model import Desk, Knowledge
from domain.policy import Visibility, consultation_visibility, ensure_may_work
from domain.ports import DeskUnitOfWork, SuggestionUnitOfWork
from domain.quality import ManualEntry
from domain.requests import RequestService

PLACEHOLDER = re.compile(r"{(\w+)}")
WEEKDAYS = "月火水木金土日"


class SuggestionRulesError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class TemplateUse:
    code: str
    categories: frozenset[str]
    outcomes: frozenset[str]
    deadline_rule: str | None = None
    desk: str | None = None


def uses_from_raw(
    raw: Mapping[str, Any],
    *,
    templates: Sequence[str],
    categories: Mapping[str, str | None],  # code → parent group (None for a group)
    outcomes: Sequence[str],
    rules: ClockRules,
    desks: Sequence[str],
) -> tuple[TemplateUse, ...]:
    problems: list[str] = []
    uses: list[TemplateUse] = []
    seen: set[str] = set()
    for i, item in enumerate(raw.get("templates") or []):
        code = str(item.get("code") or "")
        where = f"templates[{i}] {code}"
        if code not in templates:
            problems.append(f"{where}: not a manual template")
        if code in seen:
            problems.append(f"{where}: duplicate")
        seen.add(code)
        cats, outs = set(), set()
        for t in item.get("case_types") or []:
            if isinstance(t, str) and t.startswith("outcome:"):
                outs.add(t.removeprefix("outcome:"))
            else:
                cats.add(str(t))
        if not cats and not outs:
            problems.append(f"{where}: case_types required")
        if cats - set(categories):
            problems.append(f"{where}: unknown categories {sorted(cats - set(categories))}")
        if outs - set(outcomes):
            problems.append(f"{where}: unknown outcomes {sorted(outs - set(outcomes))}")
        deadline = item.get("deadline")
        if deadline is not None and rules.rule(str(deadline)) is None:
            problems.append(f"{where}: deadline {deadline} is not a clock rule")
        desk = item.get("desk")
        if desk is not None and desk not in desks:
            problems.append(f"{where}: unknown desk {desk}")
        # A group covers its leaves.
        covered = set(cats) | {leaf for leaf, parent in categories.items() if parent in cats}
        uses.append(TemplateUse(code, frozenset(covered), frozenset(outs), deadline, desk))
    if problems:
        raise SuggestionRulesError(problems)
    return tuple(uses)


@dataclass(frozen=True, slots=True)
class Suggestion:
    template: ManualEntry
    score: int
    body: str
    values: Mapping[str, str]
    unfilled: tuple[str, ...]


def fill(body: str, values: Mapping[str, str]) -> str:
    """Each known placeholder replaced; any other left exactly as written."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def japanese_date(due_at: Any) -> str:
    """The last day of a period (it ends at 24:00 JST of that day), as a consulter reads it."""
    last = (due_at.astimezone(JST) - timedelta(microseconds=1)).date()
    return f"{last.year}年{last.month}月{last.day}日({WEEKDAYS[last.weekday()]})"


def score(use: TemplateUse, c: Consultation) -> int:
    return 2 * len(use.categories & set(c.categories)) + len(use.outcomes & set(c.desired_outcomes))


class DeskResolver(Protocol):
    async def resolve(self, codes: Sequence[str], *, uow: DeskUnitOfWork | None = None) -> Sequence[Desk]: ...


class TemplateValues:
    """What a case fills a template with. It needs no answer or request service, so the composition root
    builds it first and gives it to both the answer service (a draft records its values) and the suggestions."""

    def __init__(self, knowledge: Knowledge, desks: DeskResolver, uses: Sequence[TemplateUse]) -> None:
        self.knowledge = knowledge
        self.desks = desks
        self.uses = {u.code: u for u in uses}

    async def __call__(
        self, uow: SuggestionUnitOfWork, c: Consultation, template_code: str, visibility: Visibility
    ) -> dict[str, str]:
        """What the case fills a template with, read in the caller's unit of work with the caller's
        visibility of the case (domain/policy.py consultation_visibility: its requests, evidence, clocks)."""
        use = self.uses.get(template_code)
        knowledge = self.knowledge
        values: dict[str, str] = {}
        owner = await uow.users.get(c.owner_id)
        if owner is not None and owner.display_name:
            values["consulter_name"] = owner.display_name
        chain = [c.id, *await uow.requests.earlier_chain(c.id)]
        requests = await uow.requests.for_consultations(chain, visibility, through=c.id)
        platform_name = None
        for r in requests:
            if r.target.platform:
                p = knowledge.platform(r.target.platform)
                s = p.service(r.target.service) if p and r.target.service else None
                platform_name = (s.name_ja if s else None) or (p.name_ja if p else None)
                break
            if r.target.name:
                platform_name = r.target.name
                break
        if platform_name is None and c.platforms:
            p = knowledge.platform(c.platforms[0])
            platform_name = p.name_ja if p else None
        platform_name = platform_name or c.platform_other
        if platform_name:
            values["platform"] = platform_name
        evidence = await uow.consultations.evidence(c.id, visibility)
        url = next((e.url for e in evidence if e.url), None)
        if url:
            values["url"] = url
        if use is not None and use.desk:
            desks = await self.desks.resolve([use.desk], uow=uow)
            if desks:
                values["desk_name"] = desks[0].name_ja
                if desks[0].phone:
                    values["desk_phone"] = desks[0].phone
        if use is not None and use.deadline_rule:
            stored = await uow.requests.clocks(chain, visibility, through=c.id)
            clocks = [s.clock for s in stored if s.clock.rule == use.deadline_rule]
            open_ = [k for k in clocks if not k.settled] or clocks
            if open_:
                values["deadline"] = japanese_date(min(k.due_at for k in open_))
        return values


class SuggestionService:
    def __init__(self, requests: RequestService, values: TemplateValues) -> None:
        self.requests = requests
        self.values = values
        self.uses = values.uses

    @property
    def consultations(self) -> ConsultationService:
        return self.requests.consultations

    async def suggest(self, actor: Actor, consultation_id: uuid.UUID) -> list[Suggestion]:
        """For the staff working the case: the templates that fit it, best first, filled from it."""
        async with self.consultations.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            ensure_may_work(actor, c)
            current = {e.code: e for e in await uow.manual.current("template")}
            ranked = sorted(
                ((score(u, c), u) for u in self.uses.values() if u.code in current),
                key=lambda x: -x[0],
            )
            out = []
            for points, use in ranked:
                if points == 0:
                    continue
                entry = current[use.code]
                values = await self.values(uow, c, use.code, consultation_visibility(actor))
                used = list(dict.fromkeys(PLACEHOLDER.findall(entry.body_ja)))
                values = {k: v for k, v in values.items() if k in used}
                out.append(
                    Suggestion(
                        entry,
                        points,
                        fill(entry.body_ja, values),
                        values,
                        tuple(p for p in used if p not in values),
                    )
                )
        return out
