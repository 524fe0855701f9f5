"""Oversight: the versioned manual and templates, supervisor views, the promotion council's anonymised
verification (samples, findings, proposals) and the trail of who did what."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.actors import Actor
from domain.anonymise import MASKS, Masker, suppress_small
from domain.calendar import JST
from domain.consultations import Cursor, MessageKind
from domain.errors import Conflict, InvalidState, NotFound, ValidationFailed
from domain.policy import (
    ANSWER_WRITERS,
    AUDITORS,
    COUNCIL,
    COUNCIL_READERS,
    STAFF,
    SUPERVISORS,
    Visibility,
    audit_visibility,
    ensure_role,
    sample_visibility,
)
from domain.ports import Clock, QualityUnitOfWork, UnitOfWorkFactory

RUBRIC = ("accuracy", "timeliness", "tone", "referral_fit")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which object, when: ids and codes only, never case text."""

    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_role: str | None
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ManualEntry:
    kind: str  # section | template
    code: str
    version: int
    title_ja: str
    title_en: str
    body_ja: str
    created_at: datetime
    created_by: uuid.UUID | None
    note: str | None = None
    sections: tuple[str, ...] = ()  # templates: the sections they draw on


@dataclass(frozen=True, slots=True)
class StaleUse:
    consultation_id: uuid.UUID
    draft_id: uuid.UUID
    draft_state: str
    used_version: int
    current_version: int


@dataclass(slots=True)
class Proposal:
    id: uuid.UUID
    section_code: str
    based_on_version: int
    proposed_body: str
    rationale: str
    member_id: uuid.UUID
    state: str  # open | accepted | rejected
    created_at: datetime
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = None
    resulting_version: int | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    id: uuid.UUID
    period_from: datetime
    period_to: datetime
    method: str
    size: int
    created_by: uuid.UUID
    created_at: datetime
    items: tuple[tuple[str, uuid.UUID], ...] = ()  # (pseudonym, consultation id); ids never leave the domain


@dataclass(frozen=True, slots=True)
class Finding:
    id: uuid.UUID
    sample_id: uuid.UUID
    pseudonym: str
    member_id: uuid.UUID
    scores: dict[str, int]
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AnonymisedCase:
    pseudonym: str
    month: str
    channel: str
    relation: str
    categories: list[str]
    desired_outcomes: list[str]
    platforms: list[str]
    victim_is_minor: bool | None
    urgency_flags: list[str]
    narrative: str
    tried: str | None
    timeline: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    referrals: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None or self.end <= self.start:
            raise ValidationFailed("invalid_period", field="from/to")


SUPPRESS_BELOW = 5


def ensure_closed_month(period: Period, now: datetime) -> None:
    """`from` the first instant of a month (Japan time), `to` the first of the next, which has come."""
    start = period.start.astimezone(JST)
    if start != datetime(start.year, start.month, 1, tzinfo=JST):
        raise ValidationFailed("period_not_a_closed_month", field="from")
    following = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=JST)
    if period.end != following or following > now:
        raise ValidationFailed("period_not_a_closed_month", field="to")


@dataclass(slots=True)
class Overview:
    workload: list[dict[str, Any]] = field(default_factory=list)
    overdue_first_answers: int = 0
    review: dict[str, Any] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    by_month: dict[str, int] = field(default_factory=dict)


class ManualRepository(Protocol):
    """The versioned manual sections and answer templates (every version kept)."""

    async def current(self, kind: str) -> list[ManualEntry]: ...

    async def versions(self, kind: str, code: str) -> list[ManualEntry]:
        """Oldest first."""

    async def add(self, entry: ManualEntry) -> bool:
        """Store a new version; False if that version number exists (a concurrent edit)."""


class CouncilRepository(Protocol):
    async def add_sample(self, sample: Sample) -> None: ...

    async def sample(self, sample_id: uuid.UUID) -> Sample | None: ...

    async def samples(self, *, after: Cursor | None = None, limit: int | None = None) -> list[Sample]: ...

    async def add_finding(self, f: Finding) -> None: ...

    async def findings(
        self, sample_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Finding]:
        """Oldest first by (created_at, id); with `after`, those after that position; at most `limit`."""
        ...

    async def add_proposal(self, p: Proposal) -> None: ...

    async def proposal(self, proposal_id: uuid.UUID) -> Proposal | None: ...

    async def proposals(self, *, after: Cursor | None = None, limit: int | None = None) -> list[Proposal]: ...

    async def save_proposal(self, p: Proposal) -> None: ...


class QualityRepository(Protocol):
    """Supervisor views, aggregated by the database."""

    async def overview(self, start: datetime, end: datetime, now: datetime) -> Overview: ...

    async def period_counts(self, start: datetime, end: datetime) -> Overview:
        """Only the breakdowns of the cases opened in the period (by_status, by_category, by_channel,
        by_month); the rest of the Overview left empty."""
        ...

    async def closed_in(self, start: datetime, end: datetime) -> list[tuple[uuid.UUID, str]]: ...

    async def identifiers_of(self, user_id: uuid.UUID) -> list[str]: ...

    async def stale_uses(self, code: str, current: int) -> list[StaleUse]: ...

    async def trail(
        self,
        visibility: Visibility,
        object_type: str | None,
        object_id: str | None,
        *,
        after: Cursor | None = None,
        limit: int,
    ) -> list[AuditEvent]:
        """Newest first (by time, then id), `limit` after the cursor."""
        ...


class QualityService:
    def __init__(
        self, uow: UnitOfWorkFactory[QualityUnitOfWork], clock: Clock, masker: Masker | None = None
    ) -> None:
        self.uow = uow
        self.clock = clock
        # The council's masking; the container gives it the morphological analyser (infra/morphology.py).
        self.masker = masker or Masker()

    # -- the manual -----------------------------------------------------------------------------

    async def manual(self, actor: Actor, kind: str) -> list[ManualEntry]:
        ensure_role(actor, STAFF)
        async with self.uow() as uow:
            return await uow.manual.current(kind)

    async def manual_entry(self, actor: Actor, kind: str, code: str) -> list[ManualEntry]:
        """All versions of one section or template, oldest first."""
        ensure_role(actor, STAFF)
        async with self.uow() as uow:
            found = await uow.manual.versions(kind, code)
        if not found:
            raise NotFound("manual_entry_not_found")
        return found

    async def revise_section(
        self,
        actor: Actor,
        code: str,
        body: str,
        note: str | None,
        *,
        title_ja: str | None = None,
        proposal_id: uuid.UUID | None = None,
    ) -> ManualEntry:
        ensure_role(actor, SUPERVISORS)
        now = self.clock.now()
        async with self.uow() as uow:
            versions = await uow.manual.versions("section", code)
            if not versions:
                raise NotFound("manual_entry_not_found")
            current = versions[-1]
            entry = ManualEntry(
                "section",
                code,
                current.version + 1,
                title_ja or current.title_ja,
                current.title_en,
                body,
                now,
                actor.user_id,
                note,
            )
            if not await uow.manual.add(entry):
                raise Conflict("concurrent_revision")
            if proposal_id is not None:
                proposal = await uow.council.proposal(proposal_id)
                if proposal is None or proposal.section_code != code:
                    raise NotFound("proposal_not_found")
                if proposal.state != "open":
                    raise InvalidState("proposal_decided")
                proposal.state, proposal.decided_by, proposal.decided_at = "accepted", actor.user_id, now
                proposal.resulting_version = entry.version
                await uow.council.save_proposal(proposal)
            await uow.audit.record(
                actor,
                "manual.revised",
                "manual_section",
                code,
                {"version": entry.version, "proposal": str(proposal_id) if proposal_id else None},
            )
            await uow.commit()
        return entry

    async def stale_uses(self, actor: Actor, code: str) -> list[StaleUse]:
        """Open consultations' drafts and answers that used an older version of this section."""
        ensure_role(actor, ANSWER_WRITERS)
        async with self.uow() as uow:
            versions = await uow.manual.versions("section", code)
            if not versions:
                raise NotFound("manual_entry_not_found")
            return await uow.quality.stale_uses(code, versions[-1].version)

    async def sync_reference(self, sections: Sequence[ManualEntry], templates: Sequence[ManualEntry]) -> int:
        """Load the manual file: a new or changed entry becomes a new version (API edits are kept unless the
        file changes that entry)."""
        written = 0
        async with self.uow() as uow:
            for entry in [*sections, *templates]:
                history = await uow.manual.versions(entry.kind, entry.code)
                from_file = [v for v in history if v.created_by is None]
                same = from_file and (
                    from_file[-1].title_ja,
                    from_file[-1].body_ja,
                    from_file[-1].sections,
                ) == (entry.title_ja, entry.body_ja, entry.sections)
                if same:
                    continue
                number = history[-1].version + 1 if history else 1
                await uow.manual.add(
                    ManualEntry(
                        entry.kind,
                        entry.code,
                        number,
                        entry.title_ja,
                        entry.title_en,
                        entry.body_ja,
                        self.clock.now(),
                        None,
                        "reference data",
                        entry.sections,
                    )
                )
                written += 1
            await uow.commit()
        return written

    # -- supervisors ----------------------------------------------------------------------------

    async def overview(self, actor: Actor, period: Period) -> Overview:
        ensure_role(actor, SUPERVISORS)
        async with self.uow() as uow:
            stats = await uow.quality.overview(period.start, period.end, self.clock.now())
            await uow.audit.record(actor, "supervision.overview", "period", period.start.date().isoformat())
            await uow.commit()
        return stats

    # -- the council ----------------------------------------------------------------------------

    async def draw_sample(
        self, actor: Actor, period: Period, size: int, method: str, seed: int | None = None
    ) -> Sample:
        """Random, or stratified by primary category (proportional, at least one per stratum that has
        cases), over consultations closed in the period."""
        ensure_role(actor, SUPERVISORS)
        if method not in ("random", "stratified") or not 1 <= size <= 200:
            raise ValidationFailed("invalid_sample", field="method/size")
        rng = random.Random(seed)  # noqa: S311 - sampling for review, not security
        async with self.uow() as uow:
            population = await uow.quality.closed_in(period.start, period.end)
            if method == "random":
                chosen = rng.sample(population, min(size, len(population)))
            else:
                strata: dict[str, list[tuple[uuid.UUID, str]]] = defaultdict(list)
                for cid, category in population:
                    strata[category].append((cid, category))
                chosen = []
                for _, members in sorted(strata.items()):
                    share = max(1, round(size * len(members) / max(1, len(population))))
                    chosen += rng.sample(members, min(share, len(members)))
                chosen = chosen[:size]
            sample_id = uuid.uuid4()
            items = tuple(
                (f"S{i + 1:03d}", cid) for i, (cid, _) in enumerate(rng.sample(chosen, len(chosen)))
            )
            sample = Sample(
                sample_id,
                period.start,
                period.end,
                method,
                len(items),
                actor.require_user_id(),
                self.clock.now(),
                items,
            )
            await uow.council.add_sample(sample)
            await uow.audit.record(
                actor,
                "council.sample_drawn",
                "council_sample",
                sample.id,
                {"size": sample.size, "method": method},
            )
            await uow.commit()
        return sample

    async def samples(
        self, actor: Actor, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Sample]:
        """Newest first, `limit` after the cursor."""
        ensure_role(actor, COUNCIL_READERS)
        async with self.uow() as uow:
            return await uow.council.samples(after=after, limit=limit)

    async def _sample(self, uow: QualityUnitOfWork, sample_id: uuid.UUID) -> Sample:
        sample = await uow.council.sample(sample_id)
        if sample is None:
            raise NotFound("sample_not_found")
        return sample

    async def anonymised_case(self, actor: Actor, sample_id: uuid.UUID, pseudonym: str) -> AnonymisedCase:
        ensure_role(actor, COUNCIL_READERS)
        async with self.uow() as uow:
            sample = await self._sample(uow, sample_id)
            cid = dict(sample.items).get(pseudonym)
            if cid is None:
                raise NotFound("sample_item_not_found")
            c = await uow.consultations.get(cid, sample_visibility(actor))
            assert c is not None, "a sampled consultation exists (foreign key)"
            known = await uow.quality.identifiers_of(c.owner_id)
            # The sampled case's parts, with the sample's visibility (the case itself came with it).
            seen = sample_visibility(actor)
            messages = await uow.consultations.messages(
                c.id, [MessageKind.consulter, MessageKind.answer], seen
            )
            evidence = await uow.consultations.evidence(c.id, seen)
            transitions = await uow.consultations.transitions(c.id)
            referrals = await uow.referrals.for_consultation(c.id, seen)
            await uow.audit.record(
                actor,
                "council.case_read",
                "council_sample",
                sample_id,
                {"item": pseudonym},
                consultation_id=c.id,
            )
            await uow.commit()
        known += [e.poster_account for e in evidence if e.poster_account]
        texts = [
            c.title,
            c.narrative,
            c.tried,
            *(m.body for m in messages),
            *(x for e in evidence for x in (e.excerpt, e.notes)),
        ]
        known += sorted(self.masker.names_in(texts))
        start = c.created_at

        def mask(text: str | None) -> str | None:
            return self.masker.mask(text, known)

        def day(at: datetime) -> int:
            return (at - start).days

        case = AnonymisedCase(
            pseudonym=pseudonym,
            month=c.created_at.astimezone(JST).strftime("%Y-%m"),
            channel=c.channel,
            relation=c.relation,
            categories=c.categories,
            desired_outcomes=c.desired_outcomes,
            platforms=c.platforms,
            victim_is_minor=c.victim_is_minor,
            urgency_flags=c.urgency_flags,
            narrative=mask(f"{c.title}\n{c.narrative}") or "",
            tried=mask(c.tried),
            timeline=[
                {"to_status": t.to_status.value, "day": day(t.at), "by_staff": t.actor_id != c.owner_id}
                for t in transitions
            ],
            messages=[
                {
                    "from_staff": m.kind is MessageKind.answer,
                    "day": day(m.created_at),
                    "body": mask(m.body),
                }
                for m in messages
            ],
            evidence=[
                {
                    "platform": e.platform,
                    "has_file": e.file is not None,
                    # The council needs to know that a URL was given, never which one.
                    "url": MASKS["url"] if e.url else None,
                    "excerpt": mask(e.excerpt),
                    "notes": mask(e.notes),
                    "missing": [g.value for g in e.missing()],
                }
                for e in evidence
            ],
            referrals=[{"desk_code": r.desk_code, "state": r.state.value} for r in referrals],
        )
        return case

    async def record_finding(
        self, actor: Actor, sample_id: uuid.UUID, pseudonym: str, scores: dict[str, int], comment: str | None
    ) -> Finding:
        ensure_role(actor, COUNCIL)
        if set(scores) != set(RUBRIC) or not all(1 <= v <= 5 for v in scores.values()):
            raise ValidationFailed("invalid_scores", field="scores")
        async with self.uow() as uow:
            sample = await self._sample(uow, sample_id)
            if pseudonym not in dict(sample.items):
                raise NotFound("sample_item_not_found")
            finding = Finding(
                uuid.uuid4(),
                sample.id,
                pseudonym,
                actor.require_user_id(),
                scores,
                comment or None,
                self.clock.now(),
            )
            await uow.council.add_finding(finding)
            await uow.audit.record(
                actor, "council.finding_recorded", "council_sample", sample_id, {"item": pseudonym}
            )
            await uow.commit()
        return finding

    async def findings(
        self, actor: Actor, sample_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Finding]:
        ensure_role(actor, COUNCIL_READERS)
        async with self.uow() as uow:
            await self._sample(uow, sample_id)
            return await uow.council.findings(sample_id, after=after, limit=limit)

    async def propose(self, actor: Actor, section_code: str, body: str, rationale: str) -> Proposal:
        ensure_role(actor, COUNCIL)
        async with self.uow() as uow:
            versions = await uow.manual.versions("section", section_code)
            if not versions:
                raise ValidationFailed("unknown_code", field="section_code")
            proposal = Proposal(
                uuid.uuid4(),
                section_code,
                versions[-1].version,
                body,
                rationale,
                actor.require_user_id(),
                "open",
                self.clock.now(),
            )
            await uow.council.add_proposal(proposal)
            await uow.audit.record(actor, "council.proposal_made", "manual_section", section_code)
            await uow.commit()
        return proposal

    async def proposals(
        self, actor: Actor, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Proposal]:
        """Newest first, `limit` after the cursor."""
        ensure_role(actor, COUNCIL_READERS)
        async with self.uow() as uow:
            return await uow.council.proposals(after=after, limit=limit)

    async def reject_proposal(self, actor: Actor, proposal_id: uuid.UUID) -> Proposal:
        ensure_role(actor, SUPERVISORS)
        async with self.uow() as uow:
            proposal = await uow.council.proposal(proposal_id)
            if proposal is None:
                raise NotFound("proposal_not_found")
            if proposal.state != "open":
                raise InvalidState("proposal_decided")
            proposal.state, proposal.decided_by, proposal.decided_at = (
                "rejected",
                actor.user_id,
                self.clock.now(),
            )
            await uow.council.save_proposal(proposal)
            await uow.audit.record(actor, "council.proposal_rejected", "manual_proposal", proposal_id)
            await uow.commit()
        return proposal

    async def council_statistics(self, actor: Actor, period: Period) -> dict[str, dict[str, int | None]]:
        """What the council sees of one closed month: counts below five are suppressed, with whatever would let
        one be recomputed. One whole month that has ended, nothing else: two overlapping periods could be
        subtracted (a period and the same period a moment longer give the cases of that moment exactly), months
        never overlap. The breakdowns share the month's total; when it is withheld, everything is."""
        ensure_role(actor, COUNCIL_READERS)
        ensure_closed_month(period, self.clock.now())
        async with self.uow() as uow:
            stats = await uow.quality.period_counts(period.start, period.end)
        tables = {
            "by_status": stats.by_status,
            "by_category": stats.by_category,
            "by_channel": stats.by_channel,
            "by_month": stats.by_month,
        }
        if sum(stats.by_month.values()) < SUPPRESS_BELOW:
            return {name: dict.fromkeys(counts) for name, counts in tables.items()}
        return {name: suppress_small(counts) for name, counts in tables.items()}

    async def trail(
        self,
        actor: Actor,
        object_type: str | None,
        object_id: str | None,
        *,
        after: Cursor | None = None,
        limit: int,
    ) -> list[AuditEvent]:
        """Newest first, `limit` events after the cursor (a position of the same filter's earlier page)."""
        ensure_role(actor, AUDITORS)
        async with self.uow() as uow:
            return await uow.quality.trail(
                audit_visibility(actor), object_type, object_id, after=after, limit=limit
            )
