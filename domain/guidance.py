"""Guidance shared by the my-page, LINE and the chatbot: the contact-desk chart and free-text triage, with
desk details always taken from the current directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.chart import ChartStep, walk
from domain.desks import DeskDirectory
from domain.errors import RateLimited
from domain.knowledge_model import Desk, Guide, Knowledge
from domain.ports import Clock, Throttle
from domain.triage import CategorySuggestion, TriageRules, UrgencyFlag

MAX_ANSWERS = 50


@dataclass(frozen=True, slots=True)
class WalkResult:
    step: ChartStep
    desks: list[Desk]
    guides: list[Guide]


@dataclass(frozen=True, slots=True)
class TriageAdvice:
    categories: list[CategorySuggestion]
    urgency: list[UrgencyFlag]
    desks: list[Desk]
    guides: list[Guide]
    rules_version: str


class GuidanceService:
    def __init__(
        self,
        knowledge: Knowledge,
        desks: DeskDirectory,
        triage: TriageRules,
        throttle: Throttle,
        clock: Clock,
    ) -> None:
        self.knowledge = knowledge
        self.desks = desks
        self.rules = triage
        self.throttle = throttle
        self.clock = clock

    def _guides(self, slugs: Sequence[str]) -> list[Guide]:
        return [g for g in (self.knowledge.guide(s) for s in slugs) if g is not None]

    async def walk_chart(self, answers: Sequence[str]) -> WalkResult:
        step = walk(self.knowledge.chart, list(answers)[:MAX_ANSWERS])
        if not step.done:
            return WalkResult(step, [], [])
        return WalkResult(step, await self.desks.resolve(step.node.desks), self._guides(step.node.guides))

    async def triage(self, text: str, *, address: str | None) -> TriageAdvice:
        """Public and anonymous, so rate-limited per client address. The text is neither stored nor logged."""
        if address:
            wait = await self.throttle.attempt(["triage:" + address], now=self.clock.now())
            if wait:
                raise RateLimited(wait, "too_many_requests")
        result = self.rules.triage(text)
        return TriageAdvice(
            categories=result.categories,
            urgency=result.urgency,
            desks=await self.desks.resolve(result.desk_codes),
            guides=self._guides(result.guide_slugs),
            rules_version=result.rules_version,
        )
