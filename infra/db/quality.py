"""Repositories of the quality loop, the supervisors' SQL aggregates, and the audit trail."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Executable, and_, bindparam, case, func, insert, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.actors import Actor
from domain.answers import AnswerDraft, AnswerVersion, DraftState, ManualRef, Review
from domain.case_keys import CaseKey, CaseKeyDestroyed
from domain.consultations import OPEN_STATUSES, Cursor, Status
from domain.policy import Visibility
from domain.ports import Clock
from domain.quality import AuditEvent, Finding, ManualEntry, Overview, Proposal, Sample, StaleUse
from infra.crypto import opened_json, opened_text, seal_json, seal_text
from infra.db import visibility as visible
from infra.db.case_keys import SqlCaseKeys
from infra.db.custody import SqlCustody
from infra.db.engine import WHOLE_TRANSACTION, affected, one_statement_commits
from infra.db.paging import keyset
from infra.db.tables import (
    ConsultationCategoryRow,
    ConsultationRow,
    ConsultationTransitionRow,
    UserRow,
)
from infra.db.tables_custody import CustodyPendingRow
from infra.db.tables_quality import (
    AnswerDraftRow,
    AnswerReviewRow,
    AnswerVersionRow,
    AuditEventRow,
    CouncilFindingRow,
    CouncilSampleItemRow,
    CouncilSampleRow,
    ManualProposalRow,
    ManualSectionRow,
)
from infra.db.types import table_of

C = ConsultationRow
REVIEW_ADVICE = "answer_review.advice"


class SqlAnswers:
    """Answer drafts; each version's text and each review's advice are sealed with its case's key (issue 17
    §1)."""

    def __init__(self, db: AsyncSession, keys: SqlCaseKeys) -> None:
        self.db = db
        self.keys = keys

    async def add(self, draft: AnswerDraft) -> None:
        self.db.add(
            AnswerDraftRow(
                id=draft.id,
                consultation_id=draft.consultation_id,
                author_id=draft.author_id,
                state=draft.state.value,
                review_reasons=draft.review_reasons,
                created_at=draft.created_at,
                updated_at=draft.updated_at,
                version=draft.version,
            )
        )
        await self.db.flush()

    async def _hydrate(self, rows: Sequence[AnswerDraftRow]) -> list[AnswerDraft]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        case_of = {r.id: r.consultation_id for r in rows}
        keys = await self.keys.of_many([r.consultation_id for r in rows])
        versions: dict[uuid.UUID, list[AnswerVersion]] = {i: [] for i in ids}
        for v in (
            await self.db.execute(
                select(AnswerVersionRow)
                .where(col(AnswerVersionRow.draft_id).in_(ids))
                .order_by(col(AnswerVersionRow.number))
            )
        ).scalars():
            template = ManualRef(v.template_code, v.template_version or 0) if v.template_code else None
            versions[v.draft_id].append(
                AnswerVersion(
                    v.id,
                    v.draft_id,
                    v.number,
                    opened_text(keys.get(case_of[v.draft_id]), v.body, "answer_version.body", v.id) or "",
                    v.author_id,
                    v.created_at,
                    tuple(ManualRef(r["code"], int(r["version"])) for r in v.manual_refs),
                    template,
                    dict(
                        opened_json(
                            keys.get(case_of[v.draft_id]),
                            v.template_values,
                            "answer_version.template_values",
                            v.id,
                        )
                        or {}
                    ),
                )
            )
        reviews: dict[uuid.UUID, list[Review]] = {i: [] for i in ids}
        for r in (
            await self.db.execute(
                select(AnswerReviewRow)
                .where(col(AnswerReviewRow.draft_id).in_(ids))
                .order_by(col(AnswerReviewRow.created_at))
            )
        ).scalars():
            advice = opened_text(keys.get(case_of[r.draft_id]), r.advice, REVIEW_ADVICE, r.id)
            reviews[r.draft_id].append(
                Review(r.id, r.draft_id, r.version_number, r.reviewer_id, r.decision, advice, r.created_at)
            )
        return [
            AnswerDraft(
                r.id,
                r.consultation_id,
                r.author_id,
                DraftState(r.state),
                list(r.review_reasons),
                r.created_at,
                r.updated_at,
                r.submitted_at,
                r.published_at,
                r.message_id,
                r.version,
                versions[r.id],
                reviews[r.id],
            )
            for r in rows
        ]

    async def get(self, draft_id: uuid.UUID, visibility: Visibility) -> AnswerDraft | None:
        query = select(AnswerDraftRow).where(
            col(AnswerDraftRow.id) == draft_id, visible.answer_drafts(visibility)
        )
        row = (await self.db.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
        found = await self._hydrate([row] if row else [])
        return found[0] if found else None

    async def for_consultation(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[AnswerDraft]:
        D = AnswerDraftRow
        query = keyset(
            select(D).where(col(D.consultation_id) == consultation_id),
            col(D.created_at),
            col(D.id),
            after,
            limit,
        )
        return await self._hydrate((await self.db.execute(query)).scalars().all())

    async def awaiting_review(
        self, visibility: Visibility, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[AnswerDraft]:
        """Longest waiting first: by the time the draft was sent for review."""
        D = AnswerDraftRow
        waiting_since = func.coalesce(col(D.submitted_at), col(D.created_at))
        query = select(D).where(
            col(D.state) == DraftState.awaiting_review.value,
            visible.answer_drafts(visibility),
        )
        return await self._hydrate(
            (await self.db.execute(keyset(query, waiting_since, col(D.id), after, limit))).scalars().all()
        )

    async def save_state(self, draft: AnswerDraft, expected_version: int) -> bool:
        result = await self.db.execute(
            update(AnswerDraftRow)
            .where(col(AnswerDraftRow.id) == draft.id, col(AnswerDraftRow.version) == expected_version)
            .values(
                state=draft.state.value,
                review_reasons=draft.review_reasons,
                updated_at=draft.updated_at,
                submitted_at=draft.submitted_at,
                published_at=draft.published_at,
                message_id=draft.message_id,
                version=draft.version,
            )
        )
        return affected(result) == 1

    async def add_version(self, version: AnswerVersion) -> None:
        draft = await self.db.get(AnswerDraftRow, version.draft_id)  # in this unit of work already: no query
        assert draft is not None, "a version belongs to a draft added or read before"
        key = await self.keys.for_consultation(draft.consultation_id)
        self.db.add(
            AnswerVersionRow(
                id=version.id,
                draft_id=version.draft_id,
                number=version.number,
                body=seal_text(key, version.body, field="answer_version.body", row_id=version.id),
                author_id=version.author_id,
                created_at=version.created_at,
                manual_refs=[{"code": r.code, "version": r.version} for r in version.manual_refs],
                template_code=version.template.code if version.template else None,
                template_version=version.template.version if version.template else None,
                template_values=(
                    seal_json(
                        key,
                        dict(version.template_values),
                        field="answer_version.template_values",
                        row_id=version.id,
                    )
                    if version.template_values
                    else None
                ),
            )
        )
        await self.db.flush()

    async def add_review(self, review: Review) -> None:
        draft = await self.db.get(AnswerDraftRow, review.draft_id)  # in this unit of work already: no query
        assert draft is not None, "a review is of a draft read before"
        key = await self.keys.for_consultation(draft.consultation_id)
        self.db.add(
            AnswerReviewRow(
                id=review.id,
                draft_id=review.draft_id,
                version_number=review.version_number,
                reviewer_id=review.reviewer_id,
                decision=review.decision,
                advice=seal_text(key, review.advice, field=REVIEW_ADVICE, row_id=review.id),
                created_at=review.created_at,
            )
        )
        await self.db.flush()


def _entry(row: ManualSectionRow) -> ManualEntry:
    return ManualEntry(
        row.kind,
        row.code,
        row.version,
        row.title_ja,
        row.title_en,
        row.body_ja,
        row.created_at,
        row.created_by,
        row.note,
        tuple(row.sections),
    )


class SqlManual:
    M = ManualSectionRow

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def current(self, kind: str) -> list[ManualEntry]:
        M = self.M
        newest = (
            select(col(M.code), func.max(col(M.version)).label("v"))
            .where(col(M.kind) == kind)
            .group_by(col(M.code))
            .subquery()
        )
        rows = await self.db.execute(
            select(M)
            .join(newest, and_(col(M.code) == newest.c.code, col(M.version) == newest.c.v))
            .where(col(M.kind) == kind)
            .order_by(col(M.code))
        )
        return [_entry(r) for r in rows.scalars()]

    async def versions(self, kind: str, code: str) -> list[ManualEntry]:
        M = self.M
        rows = await self.db.execute(
            select(M).where(col(M.kind) == kind, col(M.code) == code).order_by(col(M.version))
        )
        return [_entry(r) for r in rows.scalars()]

    async def add(self, entry: ManualEntry) -> bool:
        try:
            async with self.db.begin_nested():
                self.db.add(
                    ManualSectionRow(
                        id=uuid.uuid4(),
                        kind=entry.kind,
                        code=entry.code,
                        version=entry.version,
                        title_ja=entry.title_ja,
                        title_en=entry.title_en,
                        body_ja=entry.body_ja,
                        sections=list(entry.sections),
                        created_at=entry.created_at,
                        created_by=entry.created_by,
                        note=entry.note,
                    )
                )
        except IntegrityError:
            return False
        return True


class SqlManualCatalogue:
    """The current version of each code, for drafts to record what they used (own short session)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory

    async def current_versions(self, kind: str, codes: Sequence[str]) -> dict[str, int]:
        if not codes:
            return {}
        M = ManualSectionRow
        async with self.factory() as db:
            rows = await db.execute(
                select(col(M.code), func.max(col(M.version)))
                .where(col(M.kind) == kind, col(M.code).in_(list(codes)))
                .group_by(col(M.code))
            )
            return {code: int(v) for code, v in rows}


FINDING_COMMENT = "council_finding.comment"


def _comment(keys: dict[uuid.UUID, CaseKey], case_id: uuid.UUID | None, r: CouncilFindingRow) -> str | None:
    """A finding's comment; none once its case is shredded (retention empties it; the scores stay)."""
    try:
        return opened_text(keys.get(case_id) if case_id else None, r.comment, FINDING_COMMENT, r.id)
    except CaseKeyDestroyed:
        return None


class SqlCouncil:
    """Samples of anonymised cases and the council's findings on them. A finding names its case only by the
    sample's pseudonym, yet its comment speaks of that case: it is sealed with the case's key (issue 17 §1),
    found through the sample item, so shredding the case leaves the comment unreadable."""

    def __init__(self, db: AsyncSession, keys: SqlCaseKeys) -> None:
        self.db = db
        self.keys = keys

    async def _cases_of(self, sample_id: uuid.UUID) -> dict[str, uuid.UUID]:
        rows = await self.db.execute(
            select(col(CouncilSampleItemRow.pseudonym), col(CouncilSampleItemRow.consultation_id)).where(
                col(CouncilSampleItemRow.sample_id) == sample_id
            )
        )
        return {p: cid for p, cid in rows}

    async def add_sample(self, sample: Sample) -> None:
        self.db.add(
            CouncilSampleRow(
                id=sample.id,
                period_from=sample.period_from,
                period_to=sample.period_to,
                method=sample.method,
                size=sample.size,
                created_by=sample.created_by,
                created_at=sample.created_at,
            )
        )
        await self.db.flush()
        for pseudonym, cid in sample.items:
            self.db.add(CouncilSampleItemRow(sample_id=sample.id, pseudonym=pseudonym, consultation_id=cid))
        await self.db.flush()

    async def _sample(self, row: CouncilSampleRow) -> Sample:
        items = (
            await self.db.execute(
                select(col(CouncilSampleItemRow.pseudonym), col(CouncilSampleItemRow.consultation_id))
                .where(col(CouncilSampleItemRow.sample_id) == row.id)
                .order_by(col(CouncilSampleItemRow.pseudonym))
            )
        ).all()
        return Sample(
            row.id,
            row.period_from,
            row.period_to,
            row.method,
            row.size,
            row.created_by,
            row.created_at,
            tuple((p, cid) for p, cid in items),
        )

    async def sample(self, sample_id: uuid.UUID) -> Sample | None:
        row = await self.db.get(CouncilSampleRow, sample_id)
        return await self._sample(row) if row else None

    async def samples(self, *, after: Cursor | None = None, limit: int | None = None) -> list[Sample]:
        S = CouncilSampleRow
        query = keyset(select(S), col(S.created_at), col(S.id), after, limit, newest_first=True)
        return [await self._sample(r) for r in (await self.db.execute(query)).scalars().all()]

    async def add_finding(self, f: Finding) -> None:
        case = (await self._cases_of(f.sample_id)).get(f.pseudonym)
        assert case is not None, "a finding is on a case of its sample (the service checks the pseudonym)"
        key = await self.keys.for_consultation(case)
        self.db.add(
            CouncilFindingRow(
                id=f.id,
                sample_id=f.sample_id,
                pseudonym=f.pseudonym,
                member_id=f.member_id,
                comment=seal_text(key, f.comment, field=FINDING_COMMENT, row_id=f.id),
                created_at=f.created_at,
                **f.scores,
            )
        )
        await self.db.flush()

    async def findings(
        self, sample_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Finding]:
        F = CouncilFindingRow
        query = select(F).where(col(F.sample_id) == sample_id)
        rows = await self.db.execute(keyset(query, col(F.created_at), col(F.id), after, limit))
        cases = await self._cases_of(sample_id)
        keys = await self.keys.of_many(list(cases.values()))
        return [
            Finding(
                r.id,
                r.sample_id,
                r.pseudonym,
                r.member_id,
                {
                    "accuracy": r.accuracy,
                    "timeliness": r.timeliness,
                    "tone": r.tone,
                    "referral_fit": r.referral_fit,
                },
                _comment(keys, cases.get(r.pseudonym), r),
                r.created_at,
            )
            for r in rows.scalars()
        ]

    @staticmethod
    def _proposal(r: ManualProposalRow) -> Proposal:
        return Proposal(
            r.id,
            r.section_code,
            r.based_on_version,
            r.proposed_body,
            r.rationale,
            r.member_id,
            r.state,
            r.created_at,
            r.decided_by,
            r.decided_at,
            r.resulting_version,
        )

    async def add_proposal(self, p: Proposal) -> None:
        self.db.add(
            ManualProposalRow(
                id=p.id,
                section_code=p.section_code,
                based_on_version=p.based_on_version,
                proposed_body=p.proposed_body,
                rationale=p.rationale,
                member_id=p.member_id,
                state=p.state,
                created_at=p.created_at,
            )
        )
        await self.db.flush()

    async def proposal(self, proposal_id: uuid.UUID) -> Proposal | None:
        row = await self.db.get(ManualProposalRow, proposal_id)
        return self._proposal(row) if row else None

    async def proposals(self, *, after: Cursor | None = None, limit: int | None = None) -> list[Proposal]:
        P = ManualProposalRow
        query = keyset(select(P), col(P.created_at), col(P.id), after, limit, newest_first=True)
        return [self._proposal(r) for r in (await self.db.execute(query)).scalars()]

    async def save_proposal(self, p: Proposal) -> None:
        await self.db.execute(
            update(ManualProposalRow)
            .where(col(ManualProposalRow.id) == p.id)
            .values(
                state=p.state,
                decided_by=p.decided_by,
                decided_at=p.decided_at,
                resulting_version=p.resulting_version,
            )
        )


class SqlQuality:
    """Aggregates computed in SQL (GROUP BY, COUNT, AVG), never by loading case rows into Python."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _seconds_between(self, later: Any, earlier: Any) -> Any:
        if self.db.get_bind().dialect.name == "postgresql":
            return func.extract("epoch", later - earlier)
        return (func.julianday(later) - func.julianday(earlier)) * 86400

    def _month(self, column: Any) -> Any:
        if self.db.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone("Asia/Tokyo", column), "YYYY-MM")
        return func.strftime("%Y-%m", column, "+9 hours")

    async def _breakdowns(self, start: datetime, end: datetime) -> tuple[dict[str, int], ...]:
        """Cases opened in the period by status, by channel and by month (Japan time): ONE grouped read of the
        period's range of ix_consultation_period (index only), by all three at once; the few groups (at most
        statuses x channels x months) are then added up per breakdown. Three reads of the period's cases
        before, each of the heap or of a whole index; count(*), not count(DISTINCT id): a case is one row."""
        status, channel, month = col(C.status), col(C.channel), self._month(col(C.created_at))
        rows = await self.db.execute(
            select(status, channel, month, func.count())
            .where(col(C.created_at) >= start, col(C.created_at) < end)
            .group_by(status, channel, month)
        )
        by_status: dict[str, int] = {}
        by_channel: dict[str, int] = {}
        by_month: dict[str, int] = {}
        for s, ch, m, n in rows:
            for into, key in ((by_status, s), (by_channel, ch), (by_month, m)):
                into[str(key)] = into.get(str(key), 0) + int(n)
        return by_status, by_channel, by_month

    async def _by_category(self, start: datetime, end: datetime) -> dict[str, int]:
        """Cases opened in the period per category code: a category row carries its case's created_at, one row
        per case and code (that table's key), so the period is one range of ix_consultation_category_period."""
        CC = ConsultationCategoryRow
        code = col(CC.category_code)
        query = (
            select(code, func.count())
            .where(col(CC.created_at) >= start, col(CC.created_at) < end)
            .group_by(code)
        )
        return {str(k): int(n) for k, n in await self.db.execute(query)}

    async def period_counts(self, start: datetime, end: datetime) -> Overview:
        by_status, by_channel, by_month = await self._breakdowns(start, end)
        return Overview(
            by_status=by_status,
            by_category=await self._by_category(start, end),
            by_channel=by_channel,
            by_month=by_month,
        )

    async def overview(self, start: datetime, end: datetime, now: datetime) -> Overview:
        # The open cases are read once, grouped by assignee (unassigned ones too: their overdue first answers
        # count in the total), from the partial index of open cases (ix_consultation_open_workload, which holds
        # every column read here); the names come afterwards for the few staff found. Before, the workload and
        # the overdue total were two scans of the whole table (0.9 s and 0.55 s at 1 M cases).
        open_values = sorted(s.value for s in OPEN_STATUSES)
        overdue = and_(col(C.first_answered_at).is_(None), col(C.first_answer_due_at) < now)
        per_assignee = (
            await self.db.execute(
                select(col(C.assignee_id), func.count(), func.sum(case((overdue, 1), else_=0)))
                .where(col(C.status).in_(open_values))
                .group_by(col(C.assignee_id))
            )
        ).all()
        overdue_total = sum(int(o or 0) for _, _, o in per_assignee)
        assigned = {uid: (int(n), int(o or 0)) for uid, n, o in per_assignee if uid is not None}
        names = dict(
            (
                await self.db.execute(
                    select(col(UserRow.id), col(UserRow.display_name)).where(
                        col(UserRow.id).in_(list(assigned))
                    )
                )
            ).all()
            if assigned
            else []
        )
        D, R = AnswerDraftRow, AnswerReviewRow
        waiting = (
            await self.db.execute(
                select(func.count(col(D.id)), func.min(col(D.submitted_at))).where(
                    col(D.state) == DraftState.awaiting_review.value
                )
            )
        ).one()
        took = (
            await self.db.execute(
                select(
                    func.count(col(R.id)),
                    func.avg(self._seconds_between(col(R.created_at), col(D.submitted_at))),
                    func.max(self._seconds_between(col(R.created_at), col(D.submitted_at))),
                )
                .join(D, col(D.id) == col(R.draft_id))
                .where(col(R.created_at) >= start, col(R.created_at) < end)
            )
        ).one()
        oldest = waiting[1]
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        counts = await self.period_counts(start, end)
        return Overview(
            workload=[
                {"staff_id": uid, "display_name": names[uid], "open": n, "overdue": o}
                for uid, (n, o) in sorted(assigned.items(), key=lambda kv: (-kv[1][0], str(kv[0])))
                if uid in names
            ],
            overdue_first_answers=overdue_total,
            review={
                "waiting": int(waiting[0]),
                "oldest_waiting_seconds": int((now - oldest).total_seconds()) if oldest else 0,
                "reviewed_in_period": int(took[0]),
                "average_review_seconds": int(took[1] or 0),
                "longest_review_seconds": int(took[2] or 0),
            },
            by_status=counts.by_status,
            by_category=counts.by_category,
            by_channel=counts.by_channel,
            by_month=counts.by_month,
        )

    async def closed_in(self, start: datetime, end: datetime) -> list[tuple[uuid.UUID, str]]:
        """Consultations closed in the period, each with its first category (the stratum)."""
        T = ConsultationTransitionRow
        first_category = (
            select(func.min(col(ConsultationCategoryRow.category_code)))
            .where(col(ConsultationCategoryRow.consultation_id) == col(C.id))
            .scalar_subquery()
        )
        rows = await self.db.execute(
            select(col(C.id), func.coalesce(first_category, literal_column("'NONE'")))
            .where(
                col(C.status) == Status.closed.value,
                col(C.id).in_(
                    select(col(T.consultation_id)).where(
                        col(T.to_status) == Status.closed.value,
                        col(T.at) >= start,
                        col(T.at) < end,
                    )
                ),
            )
            .order_by(col(C.id))
        )
        return [(cid, str(cat)) for cid, cat in rows]

    async def identifiers_of(self, user_id: uuid.UUID) -> list[str]:
        user = await self.db.get(UserRow, user_id)
        if user is None:
            return []
        return [x for x in (user.email, user.display_name, user.email.split("@")[0]) if x]

    async def stale_uses(self, code: str, current: int) -> list[StaleUse]:
        D, V = AnswerDraftRow, AnswerVersionRow
        rows = await self.db.execute(
            select(col(D.consultation_id), col(D.id), col(D.state), col(V.manual_refs))
            .join(V, col(V.draft_id) == col(D.id))
            .join(C, col(C.id) == col(D.consultation_id))
            .where(
                or_(
                    col(C.status).in_([s.value for s in OPEN_STATUSES]),
                    col(D.state) != DraftState.published.value,
                )
            )
        )
        found: dict[uuid.UUID, StaleUse] = {}
        for cid, did, state, refs in rows:
            for ref in refs:
                if ref["code"] == code and int(ref["version"]) < current:
                    found[did] = StaleUse(cid, did, state, int(ref["version"]), current)
        return list(found.values())

    async def trail(
        self,
        visibility: Visibility,
        object_type: str | None,
        object_id: str | None,
        *,
        after: Cursor | None = None,
        limit: int,
    ) -> list[AuditEvent]:
        A = AuditEventRow
        query = select(A).where(visible.everything_or_nothing(visibility))
        if object_type:
            query = query.where(col(A.object_type) == object_type)
        if object_id:
            query = query.where(col(A.object_id) == object_id)
        query = keyset(query, col(A.at), col(A.id), after, limit, newest_first=True)
        return [
            AuditEvent(
                id=r.id,
                at=r.at,
                actor_id=r.actor_id,
                actor_role=r.actor_role,
                action=r.action,
                object_type=r.object_type,
                object_id=r.object_id,
                detail=r.detail,
            )
            for r in (await self.db.execute(query)).scalars()
        ]


class DbAuditLog:
    """The trail, written through the unit of work it belongs to: a record commits with the change (or the
    read) it describes and goes with its rollback, on the request's one connection. Ids and codes only,
    never case text. An event on a consultation's record is also appended to that consultation's chain of
    custody (infra/db/custody.py), in the same transaction."""

    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.custody = SqlCustody(db, clock)
        self.pending = False  # a record waits for the unit of work to commit (see SqlUnitOfWork.__aexit__)
        # This unit of work's records not yet written, as `audit_event` rows: written by `flush` at the commit
        # (or with the read's custody links by `commit_alone`), not through the ORM, whose object per record
        # was a sixth of a staff read's CPU. Nothing reads its own unit of work's records back.
        self.added: list[dict[str, Any]] = []

    async def record(
        self,
        actor: Actor,
        action: str,
        object_type: str,
        object_id: object,
        detail: dict[str, Any] | None = None,
        *,
        consultation_id: uuid.UUID | None = None,
    ) -> None:
        if consultation_id is None and object_type == "consultation" and isinstance(object_id, uuid.UUID):
            consultation_id = object_id
        self.added.append(
            {
                "id": uuid.uuid4(),
                "at": self.clock.now(),
                "actor_id": actor.user_id,
                "actor_role": actor.role.value if actor.role else None,
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id),
                "detail": detail or {},
            }
        )
        if consultation_id is not None:
            self.custody.append(actor, consultation_id, action, object_type, object_id, detail)
        self.pending = True

    async def flush(self) -> None:
        """Writes the records not yet written, in the unit of work's transaction (before its commit)."""
        added, self.added = self.added, []
        if added:
            await self.db.execute(insert(_AUDIT), added)

    def committed(self) -> None:
        self.pending = False
        self.added = []

    def discard(self) -> None:
        """Forgets the records and custody links not yet written (the unit of work rolled back)."""
        self.committed()
        self.custody.clear()

    async def commit_alone(self) -> bool:
        """Commits the unit of work in ONE statement, with no BEGIN and no COMMIT, when its records and their
        reads' custody links are all it writes (a staff read of a case): nothing added, changed or deleted in
        the session, no chain to extend under its head, and nothing written or locked yet
        (infra/db/engine.py `one_statement_commits`, which also says no on SQLite). The records and the
        links then go in one statement, `WITH audit_written AS (INSERT INTO audit_event …) INSERT INTO
        custody_pending …` (or the records' INSERT alone), atomic as any statement and committed when the
        server answers it, so before the response is sent; a failure raises here and the read answers an
        error. The rows are the same `flush` and `custody.flush` would write; the statement is built once for
        each number of records and links (`_written_alone`). Returns False, having written nothing, when the
        unit of work must commit as usual (the caller then does)."""
        db, added = self.db, self.added
        if not added or db.new or db.dirty or db.deleted:
            return False
        waiting = self.custody.waiting_rows()
        if waiting is None or not await one_statement_commits(db):
            return False
        values = {f"a{i}_{k}": v for i, row in enumerate(added) for k, v in row.items()}
        values.update({f"w{i}_{k}": v for i, row in enumerate(waiting) for k, v in row.items()})
        statement = _written_alone(len(added), len(waiting), tuple(waiting[0]) if waiting else ())
        await db.execute(statement, values, execution_options={WHOLE_TRANSACTION: True})
        self.custody.clear()
        await db.commit()  # ends the session's transaction; nothing was begun on the connection, nothing sent
        self.committed()
        return True


_AUDIT = table_of(AuditEventRow)
_WAITING = table_of(CustodyPendingRow)


@functools.cache
def _written_alone(records: int, links: int, link_columns: tuple[str, ...]) -> Executable:
    """`commit_alone`'s statement for this many records and custody links, its values bound by name
    (`a0_id`, …, `w0_consultation_id`, …)."""
    written = insert(_AUDIT).values(
        [{c.key: bindparam(f"a{i}_{c.key}", type_=c.type) for c in _AUDIT.columns} for i in range(records)]
    )
    if not links:
        return written
    return (
        insert(_WAITING)
        .values(
            [
                {k: bindparam(f"w{i}_{k}", type_=_WAITING.c[k].type) for k in link_columns}
                for i in range(links)
            ]
        )
        .add_cte(written.cte("audit_written"))
    )
