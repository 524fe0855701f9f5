"""Answers: a consultant drafts, rules kept as data decide whether the legal advisor must review it first,
the advisor approves or returns it with advice, and only an approved or review-exempt answer is published.
Every version is immutable and records the manual sections and template (with versions) it used."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from domain.actors import Actor
from domain.consultations import OPEN_STATUSES, Consultation, ConsultationService, Cursor
from domain.errors import InvalidState, NotFound, PreconditionFailed, ValidationFailed
from domain.policy import (
    Visibility,
    answer_visibility,
    consultation_visibility,
    ensure_legal_advisor,
    ensure_may_work,
    review_visibility,
)
from domain.ports import AnswerUnitOfWork, UnitOfWorkFactory


class DraftState(enum.StrEnum):
    draft = "draft"
    awaiting_review = "awaiting_review"
    returned = "returned"
    approved = "approved"
    published = "published"


EDITABLE = frozenset({DraftState.draft, DraftState.returned})


@dataclass(frozen=True, slots=True)
class ReviewRule:
    code: str
    reason_ja: str
    reason_en: str
    categories: frozenset[str] = frozenset()
    desired_outcomes: frozenset[str] = frozenset()
    urgency_flags: frozenset[str] = frozenset()
    victim_is_minor: bool | None = None

    def applies(self, c: Consultation) -> bool:
        return bool(
            self.categories.intersection(c.categories)
            or self.desired_outcomes.intersection(c.desired_outcomes)
            or self.urgency_flags.intersection(c.urgency_flags)
            or (self.victim_is_minor is not None and c.victim_is_minor == self.victim_is_minor)
        )


def review_rules_from_raw(raw: Mapping[str, Any]) -> tuple[ReviewRule, ...]:
    rules = []
    for item in raw.get("rules", []):
        when = item.get("when") or {}
        unknown = set(when) - {"categories", "desired_outcomes", "urgency_flags", "victim_is_minor"}
        if unknown or not when:
            raise ValueError(f"review rule {item.get('code')}: bad conditions {sorted(unknown)}")
        rules.append(
            ReviewRule(
                code=str(item["code"]),
                reason_ja=str(item["reason_ja"]),
                reason_en=str(item["reason_en"]),
                categories=frozenset(when.get("categories", [])),
                desired_outcomes=frozenset(when.get("desired_outcomes", [])),
                urgency_flags=frozenset(when.get("urgency_flags", [])),
                victim_is_minor=when.get("victim_is_minor"),
            )
        )
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class ManualRef:
    code: str
    version: int


@dataclass(frozen=True, slots=True)
class AnswerVersion:
    id: uuid.UUID
    draft_id: uuid.UUID
    number: int
    body: str
    author_id: uuid.UUID
    created_at: datetime
    manual_refs: tuple[ManualRef, ...] = ()
    template: ManualRef | None = None
    # What the case filled the template's placeholders with when this version was written (issue 15 §4).
    template_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Review:
    id: uuid.UUID
    draft_id: uuid.UUID
    version_number: int
    reviewer_id: uuid.UUID
    decision: str  # approved | returned
    advice: str | None
    created_at: datetime


@dataclass(slots=True)
class AnswerDraft:
    id: uuid.UUID
    consultation_id: uuid.UUID
    author_id: uuid.UUID
    state: DraftState
    review_reasons: list[str]
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    published_at: datetime | None = None
    message_id: uuid.UUID | None = None
    version: int = 1
    versions: list[AnswerVersion] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reasons)

    @property
    def latest(self) -> AnswerVersion:
        return self.versions[-1]


@dataclass(frozen=True, slots=True)
class QueueEntry:
    draft: AnswerDraft
    consultation: Consultation
    waiting_seconds: int


class AnswerRepository(Protocol):
    async def add(self, draft: AnswerDraft) -> None: ...

    async def get(self, draft_id: uuid.UUID, visibility: Visibility) -> AnswerDraft | None: ...

    async def for_consultation(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[AnswerDraft]: ...

    async def save_state(self, draft: AnswerDraft, expected_version: int) -> bool: ...

    async def add_version(self, version: AnswerVersion) -> None: ...

    async def add_review(self, review: Review) -> None: ...

    async def awaiting_review(
        self, visibility: Visibility, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[AnswerDraft]:
        """Longest waiting first (by submitted_at, else created_at, then id), `limit` after the cursor."""
        ...


class ManualCatalogue(Protocol):
    async def current_versions(self, kind: str, codes: Sequence[str]) -> dict[str, int]: ...


class AnswerService:
    def __init__(
        self,
        consultations: ConsultationService,
        rules: Sequence[ReviewRule],
        manual: ManualCatalogue,
        template_values: Callable[
            [AnswerUnitOfWork, Consultation, str, Visibility], Awaitable[dict[str, str]]
        ]
        | None = None,
    ) -> None:
        self.consultations = consultations
        self.rules = tuple(rules)
        self.manual = manual
        # The values a case fills a template with (domain/suggestions.py TemplateValues); none, none recorded.
        self.template_values = template_values

    async def _values(
        self, uow: AnswerUnitOfWork, actor: Actor, c: Consultation, template: ManualRef | None
    ) -> dict[str, str]:
        if template is None or self.template_values is None:
            return {}
        return await self.template_values(uow, c, template.code, consultation_visibility(actor))

    @property
    def uow(self) -> UnitOfWorkFactory[AnswerUnitOfWork]:
        return self.consultations.uow

    def _now(self) -> datetime:
        return self.consultations.clock.now()

    def reasons(
        self, c: Consultation, requested: bool, body: str = "", earlier: Sequence[str] = ()
    ) -> list[str]:
        """Why this answer needs the legal advisor, decided from the case as it is now and the answer's text:
        at creation, at every revision, at submit and again at publish (issue 13.13: a category added or a
        text revised after creation must not let a draft slip past review). The case's urgency flags are
        those of intake plus what its current text, categories and the answer's text raise now; reasons found
        earlier are kept (a reason never silently goes away)."""
        facts = {"minor": "victim_is_minor"} if c.victim_is_minor else {}
        text = "\n".join(x for x in (c.title, c.narrative, c.tried or "", body) if x)
        flags = {
            f.flag
            for f in self.consultations.triage.detect_urgency(text, categories=c.categories, facts=facts)
        }
        now = replace(c, urgency_flags=sorted(set(c.urgency_flags) | flags))
        found = [r.code for r in self.rules if r.applies(now)]
        return list(dict.fromkeys([*earlier, *found, *(["requested"] if requested else [])]))

    async def _refs(
        self, sections: Sequence[str], template: str | None
    ) -> tuple[tuple[ManualRef, ...], ManualRef | None]:
        current = await self.manual.current_versions("section", sections)
        if set(sections) - set(current):
            raise ValidationFailed("unknown_code", field="manual_sections")
        template_ref = None
        if template is not None:
            found = await self.manual.current_versions("template", [template])
            if template not in found:
                raise ValidationFailed("unknown_code", field="template")
            template_ref = ManualRef(template, found[template])
        return tuple(ManualRef(code, current[code]) for code in dict.fromkeys(sections)), template_ref

    async def _load_for_author(
        self, uow: AnswerUnitOfWork, actor: Actor, consultation_id: uuid.UUID
    ) -> Consultation:
        c = await self.consultations.load_visible(uow, actor, consultation_id)
        ensure_may_work(actor, c)
        return c

    async def _draft(
        self, uow: AnswerUnitOfWork, actor: Actor, c: Consultation, draft_id: uuid.UUID
    ) -> AnswerDraft:
        draft = await uow.answers.get(draft_id, answer_visibility(actor))
        if draft is None or draft.consultation_id != c.id:
            raise NotFound("draft_not_found")
        return draft

    async def create(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        body: str,
        sections: Sequence[str],
        template: str | None,
        request_review: bool,
    ) -> AnswerDraft:
        refs, template_ref = await self._refs(sections, template)
        now = self._now()
        async with self.uow() as uow:
            c = await self._load_for_author(uow, actor, consultation_id)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            draft = AnswerDraft(
                uuid.uuid4(),
                c.id,
                actor.require_user_id(),
                DraftState.draft,
                self.reasons(c, request_review, body),
                now,
                now,
            )
            await uow.answers.add(draft)
            version = AnswerVersion(
                uuid.uuid4(),
                draft.id,
                1,
                body,
                draft.author_id,
                now,
                refs,
                template_ref,
                await self._values(uow, actor, c, template_ref),
            )
            await uow.answers.add_version(version)
            draft.versions.append(version)
            await uow.commit()
        return draft

    async def revise(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        draft_id: uuid.UUID,
        body: str,
        sections: Sequence[str],
        template: str | None,
    ) -> AnswerDraft:
        refs, template_ref = await self._refs(sections, template)
        now = self._now()
        async with self.uow() as uow:
            c = await self._load_for_author(uow, actor, consultation_id)
            draft = await self._draft(uow, actor, c, draft_id)
            if draft.state not in EDITABLE:
                raise InvalidState("draft_not_editable", state=draft.state.value)
            version = AnswerVersion(
                uuid.uuid4(),
                draft.id,
                draft.latest.number + 1,
                body,
                actor.require_user_id(),
                now,
                refs,
                template_ref,
                await self._values(uow, actor, c, template_ref),
            )
            await uow.answers.add_version(version)
            draft.versions.append(version)
            draft.review_reasons = self.reasons(c, False, version.body, draft.review_reasons)
            await self._set_state(uow, draft, DraftState.draft, now)
            await uow.commit()
        return draft

    async def _set_state(
        self, uow: AnswerUnitOfWork, draft: AnswerDraft, state: DraftState, now: datetime
    ) -> None:
        expected = draft.version
        draft.state, draft.updated_at, draft.version = state, now, expected + 1
        if not await uow.answers.save_state(draft, expected):
            raise PreconditionFailed("stale_version")

    async def get(self, actor: Actor, consultation_id: uuid.UUID, draft_id: uuid.UUID) -> AnswerDraft:
        async with self.uow() as uow:
            c = await self._load_for_author(uow, actor, consultation_id)
            return await self._draft(uow, actor, c, draft_id)

    async def list_for(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[AnswerDraft]:
        """Oldest first, `limit` after the cursor."""
        async with self.uow() as uow:
            c = await self._load_for_author(uow, actor, consultation_id)
            return await uow.answers.for_consultation(c.id, after=after, limit=limit)

    async def submit(self, actor: Actor, consultation_id: uuid.UUID, draft_id: uuid.UUID) -> AnswerDraft:
        """Send to the legal advisor. Allowed for any draft: a consultant may always ask for advice."""
        now = self._now()
        async with self.uow() as uow:
            c = await self._load_for_author(uow, actor, consultation_id)
            draft = await self._draft(uow, actor, c, draft_id)
            if draft.state not in EDITABLE:
                raise InvalidState(
                    "invalid_transition", from_status=draft.state.value, to_status="awaiting_review"
                )
            draft.review_reasons = self.reasons(c, False, draft.latest.body, draft.review_reasons) or [
                "requested"
            ]
            draft.submitted_at = now
            await self._set_state(uow, draft, DraftState.awaiting_review, now)
            await uow.audit.record(
                actor,
                "answer.submitted_for_review",
                "answer_draft",
                draft.id,
                consultation_id=draft.consultation_id,
            )
            await uow.commit()
        return draft

    async def publish(self, actor: Actor, consultation_id: uuid.UUID, draft_id: uuid.UUID) -> AnswerDraft:
        """Only an approved draft, or one no rule sends to review, reaches the consulter."""
        now = self._now()
        async with self.uow() as uow:
            c = await self._load_for_author(uow, actor, consultation_id)
            draft = await self._draft(uow, actor, c, draft_id)
            if draft.state is DraftState.approved:
                pass  # the advisor approved this very text (a revision sends it back to draft)
            elif draft.state in EDITABLE:
                # Decided again now: the case or the text may have changed since the draft was written.
                reasons = self.reasons(c, False, draft.latest.body, draft.review_reasons)
                if reasons:
                    raise InvalidState("review_required", reasons=reasons)
            else:
                raise InvalidState("invalid_transition", from_status=draft.state.value, to_status="published")
            message = await self.consultations.publish_answer(uow, actor, c, draft.latest.body)
            draft.message_id, draft.published_at = message.id, now
            await self._set_state(uow, draft, DraftState.published, now)
            await uow.audit.record(
                actor, "answer.published", "answer_draft", draft.id, consultation_id=draft.consultation_id
            )
            await uow.commit()
        return draft

    # -- the legal advisor ----------------------------------------------------------------------

    async def queue(
        self, actor: Actor, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[QueueEntry]:
        """Longest waiting first, `limit` after the cursor."""
        ensure_legal_advisor(actor)
        now = self._now()
        async with self.uow() as uow:
            drafts = await uow.answers.awaiting_review(review_visibility(actor), after=after, limit=limit)
            # One lookup for the whole queue (it was one per item).
            cases = await uow.consultations.many(
                [d.consultation_id for d in drafts], review_visibility(actor)
            )
            entries = []
            for draft in drafts:
                waited = int((now - (draft.submitted_at or draft.created_at)).total_seconds())
                entries.append(QueueEntry(draft, cases[draft.consultation_id], waited))
        return entries

    async def for_review(self, actor: Actor, draft_id: uuid.UUID) -> tuple[AnswerDraft, Consultation]:
        """The advisor reads the draft with its consultation, only while it waits for review."""
        ensure_legal_advisor(actor)
        async with self.uow() as uow:
            draft = await uow.answers.get(draft_id, review_visibility(actor))
            if draft is None or draft.state is not DraftState.awaiting_review:
                raise NotFound("draft_not_found")
            c = await uow.consultations.get(draft.consultation_id, review_visibility(actor))
            if c is None:
                raise NotFound("draft_not_found")
            await uow.audit.record(actor, "consultation.read_for_review", "consultation", c.id)
            await uow.commit()
        return draft, c

    async def decide(
        self, actor: Actor, draft_id: uuid.UUID, approve: bool, advice: str | None
    ) -> AnswerDraft:
        ensure_legal_advisor(actor)
        if not approve and not (advice and advice.strip()):
            raise ValidationFailed("advice_required", field="advice")
        now = self._now()
        async with self.uow() as uow:
            draft = await uow.answers.get(draft_id, review_visibility(actor))
            if draft is None or draft.state is not DraftState.awaiting_review:
                raise NotFound("draft_not_found")
            review = Review(
                uuid.uuid4(),
                draft.id,
                draft.latest.number,
                actor.require_user_id(),
                "approved" if approve else "returned",
                advice or None,
                now,
            )
            await uow.answers.add_review(review)
            draft.reviews.append(review)
            await self._set_state(uow, draft, DraftState.approved if approve else DraftState.returned, now)
            await uow.audit.record(
                actor,
                f"answer.review_{review.decision}",
                "answer_draft",
                draft.id,
                consultation_id=draft.consultation_id,
            )
            await uow.commit()
        return draft
