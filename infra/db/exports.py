"""Repository of personal exports: every read names the person, so another person's export is never found."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.exports import OPEN_STATES, ExportState, PersonalExport, StoredArchive
from infra.db.consents import SqlConsents
from infra.db.engine import affected
from infra.db.tables_exports import PersonalExportRow


def export_context(export_id: uuid.UUID) -> bytes:
    """The associated data of an export's sealed ZIP and of its wrapped key (binds both to the export)."""
    return b"madoguchi-personal-export:" + export_id.bytes


def export_of(row: PersonalExportRow) -> PersonalExport:
    stored = (
        StoredArchive(row.blob_key, row.kek_id or "", row.wrapped_key or b"", row.size or 0)
        if row.blob_key is not None
        else None
    )
    return PersonalExport(
        id=row.id,
        user_id=row.user_id,
        state=ExportState(row.state),
        requested_at=row.requested_at,
        ready_at=row.ready_at,
        expires_at=row.expires_at,
        downloaded_at=row.downloaded_at,
        stored=stored,
    )


class SqlExports:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, export: PersonalExport) -> None:
        self.db.add(
            PersonalExportRow(
                id=export.id,
                user_id=export.user_id,
                state=export.state.value,
                requested_at=export.requested_at,
                next_attempt_at=export.requested_at,
            )
        )

    async def get(self, export_id: uuid.UUID, user_id: uuid.UUID) -> PersonalExport | None:
        row = (
            await self.db.execute(
                select(PersonalExportRow).where(
                    col(PersonalExportRow.id) == export_id, col(PersonalExportRow.user_id) == user_id
                )
            )
        ).scalar_one_or_none()
        return export_of(row) if row is not None else None

    async def count_open(self, user_id: uuid.UUID) -> int:
        query = select(func.count()).where(
            col(PersonalExportRow.user_id) == user_id,
            col(PersonalExportRow.state).in_([s.value for s in OPEN_STATES]),
        )
        return int((await self.db.execute(query)).scalar_one())

    async def lock_user(self, user_id: uuid.UUID) -> None:
        await SqlConsents(self.db).lock(user_id)  # the account row stands for the person's exports too

    async def for_user(self, user_id: uuid.UUID) -> list[PersonalExport]:
        t = PersonalExportRow
        rows = await self.db.execute(
            select(t).where(col(t.user_id) == user_id).order_by(col(t.requested_at), col(t.id))
        )
        return [export_of(r) for r in rows.scalars()]

    async def mark_downloaded(self, export: PersonalExport) -> bool:
        t = PersonalExportRow
        result = await self.db.execute(
            update(t)
            .where(col(t.id) == export.id, col(t.state) == ExportState.ready.value)
            .values(state=ExportState.downloaded.value, downloaded_at=export.downloaded_at)
        )
        return affected(result) == 1

    async def mark_failed(self, export_id: uuid.UUID, expected: ExportState) -> bool:
        t = PersonalExportRow
        result = await self.db.execute(
            update(t)
            .where(col(t.id) == export_id, col(t.state) == expected.value)
            .values(state=ExportState.failed.value)
        )
        return affected(result) == 1

    async def expire(self, export_id: uuid.UUID, now: datetime) -> bool:
        t = PersonalExportRow
        result = await self.db.execute(
            update(t)
            .where(
                col(t.id) == export_id,
                col(t.state) == ExportState.ready.value,
                col(t.expires_at) <= now,
            )
            .values(state=ExportState.expired.value)
        )
        return affected(result) == 1

    async def forget_copy(self, export_id: uuid.UUID, blob_key: str) -> None:
        t = PersonalExportRow
        await self.db.execute(
            update(t)
            .where(col(t.id) == export_id, col(t.blob_key) == blob_key)
            .values(blob_key=None, kek_id=None, wrapped_key=None)
        )

    async def to_sweep(self, now: datetime, limit: int) -> list[PersonalExport]:
        t = PersonalExportRow
        query = (
            select(t)
            .where(
                or_(
                    and_(col(t.state) == ExportState.ready.value, col(t.expires_at) <= now),
                    and_(
                        col(t.state).in_(
                            [
                                ExportState.downloaded.value,
                                ExportState.expired.value,
                                ExportState.failed.value,
                            ]
                        ),
                        col(t.blob_key).is_not(None),
                    ),
                )
            )
            .order_by(col(t.requested_at))
            .limit(limit)
        )
        return [export_of(r) for r in (await self.db.execute(query)).scalars().all()]
