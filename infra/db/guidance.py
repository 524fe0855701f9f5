"""Repositories for the desk directory (versioned) and referrals (a referral's reason is sealed with its case's
key, issue 17 §1)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.case_keys import CaseKey
from domain.consultations import Cursor
from domain.desks import DeskVersion
from domain.policy import Visibility
from domain.referrals import Referral, ReferralEvent, ReferralState
from infra.crypto import opened_text, seal_text
from infra.db import visibility as visible
from infra.db.case_keys import SqlCaseKeys
from infra.db.engine import affected
from infra.db.paging import keyset
from infra.db.tables import DeskVersionRow, ReferralEventRow, ReferralRow
from infra.knowledge_schema import DeskDoc, desk_to_dict

D = DeskVersionRow
# The newest version of each desk, and the ids of those versions: built once (no parameters); building them
# per call was half of the directory stamp's cost, which every intake pays.
_NEWEST = select(col(D.code), func.max(col(D.version)).label("v")).group_by(col(D.code)).subquery()
_CURRENT = (col(D.code) == _NEWEST.c.code) & (col(D.version) == _NEWEST.c.v)
_STAMP = select(col(D.id)).join(_NEWEST, _CURRENT)
REASON = "referral.reason"


def _version(row: DeskVersionRow) -> DeskVersion:
    return DeskVersion(
        DeskDoc.model_validate(row.data).model(), row.version, row.changed_at, row.changed_by, row.note
    )


class SqlDesks:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def current(self) -> list[DeskVersion]:
        rows = await self.db.execute(select(D).join(_NEWEST, _CURRENT).order_by(col(D.code)))
        return [_version(r) for r in rows.scalars()]

    async def stamp(self) -> frozenset[uuid.UUID]:
        # The ids of the current versions: any new version (or one removed) changes the set, whatever the
        # clock says; ids only, no JSON to fetch or parse.
        return frozenset((await self.db.execute(_STAMP)).scalars())

    async def get(self, code: str) -> DeskVersion | None:
        row = (
            await self.db.execute(
                select(D).where(col(D.code) == code).order_by(col(D.version).desc()).limit(1)
            )
        ).scalar_one_or_none()
        return _version(row) if row else None

    async def versions(self, code: str) -> list[DeskVersion]:
        rows = await self.db.execute(select(D).where(col(D.code) == code).order_by(col(D.version)))
        return [_version(r) for r in rows.scalars()]

    async def add_version(self, version: DeskVersion) -> bool:
        try:
            async with self.db.begin_nested():
                self.db.add(
                    DeskVersionRow(
                        id=uuid.uuid4(),
                        code=version.desk.code,
                        version=version.version,
                        data=desk_to_dict(version.desk),
                        changed_at=version.changed_at,
                        changed_by=version.changed_by,
                        note=version.note,
                    )
                )
        except IntegrityError:
            return False
        return True


class SqlReferrals:
    def __init__(self, db: AsyncSession, keys: SqlCaseKeys) -> None:
        self.db = db
        self.keys = keys

    @staticmethod
    def _referral(row: ReferralRow, key: CaseKey | None) -> Referral:
        return Referral(
            row.id,
            row.consultation_id,
            row.desk_code,
            opened_text(key, row.reason, REASON, row.id) or "",
            ReferralState(row.state),
            row.created_by,
            row.created_at,
            row.updated_at,
        )

    async def _key(self, consultation_id: uuid.UUID) -> CaseKey | None:
        """The case's key: opened already by the case's own read in this unit of work (no statement then)."""
        return (await self.keys.of_many([consultation_id])).get(consultation_id)

    async def add(self, referral: Referral) -> None:
        key = await self.keys.for_consultation(referral.consultation_id)
        self.db.add(
            ReferralRow(
                id=referral.id,
                consultation_id=referral.consultation_id,
                desk_code=referral.desk_code,
                reason=seal_text(key, referral.reason, field=REASON, row_id=referral.id),
                state=referral.state.value,
                created_by=referral.created_by,
                created_at=referral.created_at,
                updated_at=referral.updated_at,
            )
        )
        await self.db.flush()

    async def get(
        self, consultation_id: uuid.UUID, referral_id: uuid.UUID, visibility: Visibility
    ) -> Referral | None:
        row = (
            await self.db.execute(
                select(ReferralRow).where(
                    col(ReferralRow.id) == referral_id,
                    col(ReferralRow.consultation_id) == consultation_id,
                    visible.of_consultation(visibility, consultation_id),
                )
            )
        ).scalar_one_or_none()
        return self._referral(row, await self._key(consultation_id)) if row else None

    async def for_consultation(
        self,
        consultation_id: uuid.UUID,
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Referral]:
        R = ReferralRow
        query = keyset(
            select(R).where(
                col(R.consultation_id) == consultation_id,
                visible.of_consultation(visibility, consultation_id),
            ),
            col(R.created_at),
            col(R.id),
            after,
            limit,
        )
        rows = list((await self.db.execute(query)).scalars())
        key = await self._key(consultation_id) if rows else None
        return [self._referral(r, key) for r in rows]

    async def set_state(self, referral: Referral, expected: ReferralState) -> bool:
        result = await self.db.execute(
            update(ReferralRow)
            .where(col(ReferralRow.id) == referral.id, col(ReferralRow.state) == expected.value)
            .values(state=referral.state.value, updated_at=referral.updated_at)
        )
        return affected(result) == 1

    async def add_event(self, event: ReferralEvent) -> None:
        self.db.add(
            ReferralEventRow(
                id=uuid.uuid4(),
                referral_id=event.referral_id,
                actor_id=event.actor_id,
                from_state=event.from_state.value if event.from_state else None,
                to_state=event.to_state.value,
                at=event.at,
            )
        )
        await self.db.flush()

    async def events(self, referral_id: uuid.UUID, visibility: Visibility) -> list[ReferralEvent]:
        E = ReferralEventRow
        rows = await self.db.execute(
            select(E)
            .join(ReferralRow, col(ReferralRow.id) == col(E.referral_id))
            .where(
                col(E.referral_id) == referral_id,
                visible.through_consultation(visibility, ReferralRow.consultation_id),
            )
            .order_by(col(ReferralEventRow.at))
        )
        return [
            ReferralEvent(
                r.referral_id,
                r.actor_id,
                ReferralState(r.from_state) if r.from_state else None,
                ReferralState(r.to_state),
                r.at,
            )
            for r in rows.scalars()
        ]
