"""Erasure requests in SQL, and what carrying one out does to the account's rows (issue 17 §3)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.consultations import Cursor, Status
from domain.erasure import ErasureRequest
from domain.exports import ExportState
from infra.db.consents import SqlConsents
from infra.db.paging import keyset
from infra.db.repositories import SqlSessions
from infra.db.retention import SHREDDED
from infra.db.tables import (
    AuthSessionRow,
    ConsultationRow,
    EmailTokenRow,
    IdempotencyRow,
    RefreshTokenRow,
    UserRow,
)
from infra.db.tables_erasure import ErasureRequestRow
from infra.db.tables_exports import PersonalExportRow
from infra.db.tables_line import LineDeliveryRow, LineLinkNonceRow, LineUserRow

E = ErasureRequestRow
OPEN = (col(E.cancelled_at).is_(None), col(E.completed_at).is_(None))


def _request(row: ErasureRequestRow) -> ErasureRequest:
    return ErasureRequest(
        id=row.id,
        user_id=row.user_id,
        requested_at=row.requested_at,
        due_at=row.due_at,
        cancelled_at=row.cancelled_at,
        completed_at=row.completed_at,
        cases_kept=row.cases_kept,
    )


class SqlErasure:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def lock_user(self, user_id: uuid.UUID) -> None:
        await SqlConsents(self.db).lock(user_id)  # the account row stands for its requests too

    async def open_for(self, user_id: uuid.UUID) -> ErasureRequest | None:
        row = (await self.db.execute(select(E).where(col(E.user_id) == user_id, *OPEN))).scalar_one_or_none()
        return _request(row) if row else None

    async def latest_for(self, user_id: uuid.UUID) -> ErasureRequest | None:
        row = (
            await self.db.execute(
                select(E).where(col(E.user_id) == user_id).order_by(col(E.requested_at).desc()).limit(1)
            )
        ).scalar_one_or_none()
        return _request(row) if row else None

    async def add(self, r: ErasureRequest) -> None:
        self.db.add(E(id=r.id, user_id=r.user_id, requested_at=r.requested_at, due_at=r.due_at))
        await self.db.flush()

    async def update(self, r: ErasureRequest) -> None:
        await self.db.execute(
            update(E)
            .where(col(E.id) == r.id)
            .values(cancelled_at=r.cancelled_at, completed_at=r.completed_at, cases_kept=r.cases_kept)
        )

    async def pending(self, after: Cursor | None, limit: int) -> list[ErasureRequest]:
        query = keyset(select(E).where(*OPEN), col(E.requested_at), col(E.id), after, limit)
        return [_request(r) for r in (await self.db.execute(query)).scalars()]

    async def due(self, now: datetime, limit: int) -> list[ErasureRequest]:
        query = select(E).where(*OPEN, col(E.due_at) <= now).order_by(col(E.due_at), col(E.id)).limit(limit)
        return [_request(r) for r in (await self.db.execute(query)).scalars()]

    async def consultations_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        C = ConsultationRow
        query = select(col(C.id)).where(col(C.owner_id) == user_id, ~SHREDDED).order_by(col(C.id))
        return list((await self.db.execute(query)).scalars())

    async def status_of(self, consultation_id: uuid.UUID) -> Status | None:
        C = ConsultationRow
        found = (
            await self.db.execute(select(col(C.status)).where(col(C.id) == consultation_id))
        ).scalar_one_or_none()
        return None if found is None else Status(found)

    async def close_as_withdrawn(self, consultation_id: uuid.UUID, now: datetime) -> None:
        C = ConsultationRow
        await self.db.execute(
            update(C)
            .where(col(C.id) == consultation_id)
            .values(status=Status.withdrawn.value, closed_at=now, updated_at=now, version=C.version + 1)
        )

    async def anonymise_account(self, user_id: uuid.UUID, now: datetime) -> tuple[str, str] | None:
        user = await self.db.get(UserRow, user_id)
        if user is None:
            return None
        address, locale = user.email, user.locale
        await self.db.execute(
            update(UserRow)
            .where(col(UserRow.id) == user_id)
            .values(
                # Unique and unroutable: the address is free for a new registration, and names nobody.
                email=f"erased-{user_id.hex}@erased.invalid",
                password_hash=None,
                display_name=None,
                is_active=False,
                totp_secret=None,
                totp_enabled_at=None,
                email_verified_at=None,
                tokens_valid_after=now,
                updated_at=now,
                version=UserRow.version + 1,
            )
        )
        await SqlSessions(self.db).revoke_all_for_user(user_id, at=now, reason="erased")
        sessions = select(col(AuthSessionRow.id)).where(col(AuthSessionRow.user_id) == user_id)
        await self.db.execute(delete(RefreshTokenRow).where(col(RefreshTokenRow.session_id).in_(sessions)))
        await self.db.execute(delete(EmailTokenRow).where(col(EmailTokenRow.user_id) == user_id))
        await self.db.execute(delete(LineLinkNonceRow).where(col(LineLinkNonceRow.user_id) == user_id))
        # Nothing keeps the account tied to its LINE user id: the notices queued for it (sent or not, with the
        # LINE id beside the account's) and the LINE user row itself go. A LINE user who writes to the bot again
        # is a stranger to it, as on their first follow.
        line_ids = select(col(LineUserRow.line_user_id)).where(col(LineUserRow.user_id) == user_id)
        await self.db.execute(
            delete(LineDeliveryRow).where(
                or_(col(LineDeliveryRow.user_id) == user_id, col(LineDeliveryRow.line_user_id).in_(line_ids))
            )
        )
        await self.db.execute(delete(LineUserRow).where(col(LineUserRow.user_id) == user_id))
        # The stored answers of its creates not tied to a case (those tied to one go when the case is shredded).
        await self.db.execute(delete(IdempotencyRow).where(col(IdempotencyRow.principal_id) == user_id))
        # An export asked for or ready is never handed over now: expired, so the worker's sweep deletes its copy.
        await self.db.execute(
            update(PersonalExportRow)
            .where(
                col(PersonalExportRow.user_id) == user_id,
                col(PersonalExportRow.state).in_([ExportState.pending.value, ExportState.ready.value]),
            )
            .values(state=ExportState.expired.value, expires_at=now)
        )
        return address, locale
