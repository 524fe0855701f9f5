"""Retention in SQL: which ended cases are past their period, legal holds, and wiping what a shredded case wrote
(issue 17 §2)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, or_, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from domain.case_keys import CaseKeyDestroyed
from domain.consultations import Status
from domain.retention import Expired, LegalHold
from infra.crypto import opened_text, seal_text
from infra.db.case_keys import SqlCaseKeys
from infra.db.engine import affected
from infra.db.locks import lock_consultation
from infra.db.tables import (
    CaseKeyRow,
    ConsultationRow,
    EvidenceRow,
    IdempotencyRow,
    LegalHoldRow,
    MessageRow,
    ReferralRow,
)
from infra.db.tables_custody import CustodyLinkRow
from infra.db.tables_erasure import ErasureRequestRow, PendingFileDeleteRow
from infra.db.tables_letters import LetterReviewRow, LetterRow, LetterVersionRow
from infra.db.tables_quality import (
    AnswerDraftRow,
    AnswerReviewRow,
    AnswerVersionRow,
    AuditEventRow,
    CouncilFindingRow,
    CouncilSampleItemRow,
)
from infra.db.tables_requests import CaseClockRow, RequestEventRow, RequestRow

C, H, K, P = ConsultationRow, LegalHoldRow, CaseKeyRow, PendingFileDeleteRow


def _past(cutoffs: dict[Status, datetime]) -> ColumnElement[bool]:
    return or_(
        *(
            and_(col(C.status) == status.value, col(C.closed_at) < cutoff)
            for status, cutoff in cutoffs.items()
        )
    )


SHREDDED = exists().where(col(K.consultation_id) == col(C.id), col(K.wrapped).is_(None))
HELD = exists().where(col(H.consultation_id) == col(C.id), col(H.lifted_at).is_(None))
# A hold's reason is sealed with its case's key (issue 17 §1): readable while it holds, since a hold keeps the
# case from being shredded; a lifted hold's reason goes with the case when it is shredded later (emptied like
# the other texts; who placed and lifted it, and when, stay).
HOLD_REASON = "legal_hold.reason"


class SqlRetention:
    def __init__(self, db: AsyncSession, keys: SqlCaseKeys) -> None:
        self.db = db
        self.keys = keys

    async def lock_case(self, consultation_id: uuid.UUID) -> None:
        await lock_consultation(self.db, consultation_id)

    async def hold(self, consultation_id: uuid.UUID) -> LegalHold | None:
        # The case's wrapped key comes in the same statement (the retention and erasure passes ask this of
        # every case they are about to shred: no statement of its own for the key).
        found = (
            await self.db.execute(
                select(H, col(K.kek_id), col(K.wrapped))
                .outerjoin(K, col(K.consultation_id) == col(H.consultation_id))
                .where(col(H.consultation_id) == consultation_id, col(H.lifted_at).is_(None))
            )
        ).one_or_none()
        if found is None:
            return None
        row, kek, wrapped = found
        key = self.keys.opened(consultation_id, kek, wrapped) if wrapped is not None else None
        try:
            reason = opened_text(key, row.reason, HOLD_REASON, row.id) or ""
        except CaseKeyDestroyed:
            # Not reachable through the service (a held case is never shredded); the hold still holds.
            reason = ""
        return LegalHold(row.consultation_id, reason, row.placed_by, row.placed_at)

    async def place_hold(self, hold: LegalHold) -> None:
        key = await self.keys.for_consultation(hold.consultation_id)  # opened by the case's read already
        hold_id = uuid.uuid4()
        self.db.add(
            H(
                id=hold_id,
                consultation_id=hold.consultation_id,
                reason=seal_text(key, hold.reason, field=HOLD_REASON, row_id=hold_id),
                placed_by=hold.placed_by,
                placed_at=hold.placed_at,
            )
        )
        await self.db.flush()

    async def lift_hold(self, consultation_id: uuid.UUID, lifted_by: uuid.UUID, at: datetime) -> bool:
        result = await self.db.execute(
            update(H)
            .where(col(H.consultation_id) == consultation_id, col(H.lifted_at).is_(None))
            .values(lifted_by=lifted_by, lifted_at=at)
        )
        return affected(result) > 0

    async def expired(self, cutoffs: dict[Status, datetime], *, limit: int) -> list[Expired]:
        rows = await self.db.execute(
            select(col(C.id), col(C.status), col(C.closed_at))
            .where(_past(cutoffs), ~SHREDDED, ~HELD)
            .order_by(col(C.closed_at), col(C.id))
            .limit(limit)
        )
        # closed_at is set whenever a case closes or is withdrawn; the cutoff comparison excludes NULL anyway.
        return [Expired(cid, Status(status), closed_at) for cid, status, closed_at in rows if closed_at]

    async def held_expired(self, cutoffs: dict[Status, datetime]) -> int:
        query = select(func.count()).select_from(C).where(_past(cutoffs), ~SHREDDED, HELD)
        return int((await self.db.execute(query)).scalar_one())

    # -- erasure and the files still to delete (issue 17 §2/§3) ----------------------------------------

    async def owner_erased(self, consultation_id: uuid.UUID) -> bool:
        E = ErasureRequestRow
        query = select(
            exists().where(
                col(C.id) == consultation_id,
                col(E.user_id) == col(C.owner_id),
                col(E.completed_at).is_not(None),
            )
        )
        return bool((await self.db.execute(query)).scalar())

    async def queue_file_deletes(self, keys: Sequence[str], now: datetime) -> None:
        known = (
            set(
                (
                    await self.db.execute(
                        select(col(P.storage_key)).where(col(P.storage_key).in_(list(keys)))
                    )
                ).scalars()
            )
            if keys
            else set()
        )
        for key in dict.fromkeys(keys):
            if key not in known:
                self.db.add(P(storage_key=key, queued_at=now))
        await self.db.flush()

    async def pending_file_deletes(self, limit: int) -> list[str]:
        query = select(col(P.storage_key)).order_by(col(P.queued_at), col(P.storage_key)).limit(limit)
        return list((await self.db.execute(query)).scalars())

    async def file_deletes_done(self, deleted: Sequence[str], refused: Sequence[str]) -> None:
        if deleted:
            await self.db.execute(delete(P).where(col(P.storage_key).in_(list(deleted))))
        if refused:
            await self.db.execute(
                update(P).where(col(P.storage_key).in_(list(refused))).values(attempts=col(P.attempts) + 1)
            )

    async def forget_file_hashes(self, consultation_id: uuid.UUID) -> None:
        # The trail's records of the case's files written before they held keyed digests (bare SHA-256). The
        # audit events are not chained: the hashes go. The custody links are hashed into their chain and stay.
        evidence = select(col(CustodyLinkRow.object_id)).where(
            col(CustodyLinkRow.consultation_id) == consultation_id,
            col(CustodyLinkRow.object_type) == "evidence",
        )
        A = AuditEventRow
        rows = await self.db.execute(
            select(col(A.id), col(A.detail)).where(
                col(A.object_type) == "evidence", col(A.object_id).in_(evidence)
            )
        )
        for event_id, detail in list(rows):
            if detail and ({"sha256", "copy_sha256"} & set(detail)):
                kept = {k: v for k, v in detail.items() if k not in ("sha256", "copy_sha256")}
                await self.db.execute(update(A).where(col(A.id) == event_id).values(detail=kept))

    async def wipe_texts(self, consultation_id: uuid.UUID) -> list[str]:
        """What the case's people wrote, gone from the rows (sealed or, for rows older than encryption, not);
        returns the storage keys of its files, for the caller to delete once this commits."""
        files = await self.db.execute(
            select(col(EvidenceRow.file_key), col(EvidenceRow.file_original_key)).where(
                col(EvidenceRow.consultation_id) == consultation_id
            )
        )
        keys = [k for pair in files for k in pair if k]
        await self.db.execute(
            update(C)
            .where(col(C.id) == consultation_id)
            .values(title="", narrative="", platform_other=None, tried=None)
        )
        await self.db.execute(
            update(MessageRow).where(col(MessageRow.consultation_id) == consultation_id).values(body="")
        )
        await self.db.execute(
            update(RequestRow)
            .where(col(RequestRow.consultation_id) == consultation_id)
            .values(notes=None, advice=None, target_name=None, reference_number=None)
        )
        drafts = select(col(AnswerDraftRow.id)).where(col(AnswerDraftRow.consultation_id) == consultation_id)
        await self.db.execute(
            update(AnswerVersionRow)
            .where(col(AnswerVersionRow.draft_id).in_(drafts))
            .values(body="", template_values=None)
        )
        await self.db.execute(
            update(EvidenceRow)
            .where(col(EvidenceRow.consultation_id) == consultation_id)
            .values(
                url=None,
                poster_account=None,
                excerpt=None,
                notes=None,
                upload_slot_reason=None,
                # A picture's perceptual hash identifies it for good (an intimate image above all).
                image_pdq=None,
                image_sha256=None,
                # The files' SHA-256 identify them as surely (issue 17 §2 review): gone with the files.
                file_sha256=None,
                file_copy_sha256=None,
            )
        )
        await self.db.execute(
            update(AnswerReviewRow).where(col(AnswerReviewRow.draft_id).in_(drafts)).values(advice=None)
        )
        letters = select(col(LetterRow.id)).where(col(LetterRow.consultation_id) == consultation_id)
        await self.db.execute(
            update(LetterVersionRow).where(col(LetterVersionRow.letter_id).in_(letters)).values(content={})
        )
        await self.db.execute(
            update(LetterReviewRow).where(col(LetterReviewRow.letter_id).in_(letters)).values(advice=None)
        )
        requests = select(col(RequestRow.id)).where(col(RequestRow.consultation_id) == consultation_id)
        await self.db.execute(
            update(RequestEventRow).where(col(RequestEventRow.request_id).in_(requests)).values(note=None)
        )
        await self.db.execute(
            update(ReferralRow).where(col(ReferralRow.consultation_id) == consultation_id).values(reason="")
        )
        # A case is shredded only with no hold in force: these are lifted holds; who and when stay.
        await self.db.execute(update(H).where(col(H.consultation_id) == consultation_id).values(reason=""))
        # The council's comments on it, which it reached through a sample's pseudonym.
        items = select(col(CouncilSampleItemRow.sample_id), col(CouncilSampleItemRow.pseudonym)).where(
            col(CouncilSampleItemRow.consultation_id) == consultation_id
        )
        await self.db.execute(
            update(CouncilFindingRow)
            .where(tuple_(col(CouncilFindingRow.sample_id), col(CouncilFindingRow.pseudonym)).in_(items))
            .values(comment=None)
        )
        # The stored answers of the creates made in it (kept a day, sealed with a key that is not the case's).
        made = union_all(
            select(col(C.id)).where(col(C.id) == consultation_id),
            *(
                select(col(table.id)).where(col(table.consultation_id) == consultation_id)
                for table in (MessageRow, EvidenceRow, RequestRow, LetterRow, AnswerDraftRow, ReferralRow)
            ),
        )
        await self.db.execute(delete(IdempotencyRow).where(col(IdempotencyRow.resource_id).in_(made)))
        # Its clocks are settled: no reminder goes out, no overdue entry names it.
        await self.db.execute(
            update(CaseClockRow)
            .where(col(CaseClockRow.consultation_id) == consultation_id)
            .values(settled=True)
        )
        return keys
