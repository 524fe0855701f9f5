"""The case-key repository: wrapped data keys in `case_key`, unwrapped in memory only for the unit of work that
asked (issue 17 §1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from domain.case_keys import CaseKey, CaseKeyDestroyed, KeyEncryptionKeys
from domain.ports import Clock
from infra.crypto import new_data_key, wrap_context
from infra.db.exports import export_context
from infra.db.tables import CaseKeyRow
from infra.db.tables_exports import PersonalExportRow
from infra.db.types import table_of

_NEW_KEY = insert(table_of(CaseKeyRow))  # a new case's key row, built once


def shredded(consultation_id: Any) -> ColumnElement[bool]:
    """The case of this column was shredded (its key destroyed): for the lists that reach cases through
    something else (drafts and letters under review, requests along a chain)."""
    return exists().where(
        col(CaseKeyRow.consultation_id) == consultation_id, col(CaseKeyRow.wrapped).is_(None)
    )


class SqlCaseKeys:
    def __init__(self, db: AsyncSession, keys: KeyEncryptionKeys, clock: Clock) -> None:
        self.db = db
        self.keys = keys
        self.clock = clock
        self._opened: dict[uuid.UUID, CaseKey] = {}

    async def for_consultation(self, consultation_id: uuid.UUID) -> CaseKey:
        if consultation_id in self._opened:
            return self._opened[consultation_id]
        row = await self.db.get(CaseKeyRow, consultation_id)
        if row is None:
            row = await self._create(consultation_id)
        if row.wrapped is None:
            raise CaseKeyDestroyed()
        material = self.keys.unwrap(row.kek_id, row.wrapped, context=wrap_context(consultation_id.bytes))
        key = CaseKey(consultation_id, material)
        self._opened[consultation_id] = key
        return key

    async def of_many(self, consultation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CaseKey]:
        """The keys these cases have, in one statement for those not yet opened in this unit of work; a case
        without one (nothing of it sealed yet) is absent, and so is a shredded one (its texts were emptied)."""
        wanted = [i for i in dict.fromkeys(consultation_ids) if i not in self._opened]
        if wanted:
            rows = await self.db.execute(
                select(
                    col(CaseKeyRow.consultation_id), col(CaseKeyRow.kek_id), col(CaseKeyRow.wrapped)
                ).where(col(CaseKeyRow.consultation_id).in_(wanted))
            )
            for cid, kek, wrapped in rows:
                if wrapped is not None:
                    self.opened(cid, kek, wrapped)
        return {i: self._opened[i] for i in consultation_ids if i in self._opened}

    async def for_new_consultation(self, consultation_id: uuid.UUID) -> CaseKey:
        """A new case's key, written in the unit of work before the case (no lookup: the id was just made)."""
        material = new_data_key()
        kek, wrapped = self.keys.wrap(material, context=wrap_context(consultation_id.bytes))
        await self.db.execute(
            _NEW_KEY,
            {
                "consultation_id": consultation_id,
                "kek_id": kek,
                "wrapped": wrapped,
                "created_at": self.clock.now(),
            },
        )
        key = self._opened[consultation_id] = CaseKey(consultation_id, material)
        return key

    def opened(self, consultation_id: uuid.UUID, kek_id: str, wrapped: bytes) -> CaseKey:
        """A key read alongside its case (the consultation read joins `case_key`: no statement of its own)."""
        key = self._opened.get(consultation_id)
        if key is None:
            material = self.keys.unwrap(kek_id, wrapped, context=wrap_context(consultation_id.bytes))
            key = self._opened[consultation_id] = CaseKey(consultation_id, material)
        return key

    async def _create(self, consultation_id: uuid.UUID) -> CaseKeyRow:
        kek, wrapped = self.keys.wrap(new_data_key(), context=wrap_context(consultation_id.bytes))
        row = CaseKeyRow(
            consultation_id=consultation_id, kek_id=kek, wrapped=wrapped, created_at=self.clock.now()
        )
        try:
            # Two first uploads to one case at once: one key wins, the other request reads it.
            async with self.db.begin_nested():
                self.db.add(row)
                await self.db.flush()
        except sa_exc.IntegrityError:
            existing = await self.db.get(CaseKeyRow, consultation_id, populate_existing=True)
            assert existing is not None
            return existing
        return row

    async def destroy(self, consultation_id: uuid.UUID) -> bool:
        self._opened.pop(consultation_id, None)
        result = await self.db.execute(
            update(CaseKeyRow)
            .where(col(CaseKeyRow.consultation_id) == consultation_id, col(CaseKeyRow.wrapped).is_not(None))
            .values(wrapped=None, destroyed_at=self.clock.now())
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]  # Result of an UPDATE is a CursorResult
            # No key yet (nothing encrypted): record the shredding so a later first use cannot make one.
            if await self.db.get(CaseKeyRow, consultation_id) is None:
                self.db.add(
                    CaseKeyRow(
                        consultation_id=consultation_id,
                        kek_id=self.keys.current_id,
                        wrapped=None,
                        created_at=self.clock.now(),
                        destroyed_at=self.clock.now(),
                    )
                )
                await self.db.flush()
            return False
        return True


async def missing_keks(db: AsyncSession | AsyncConnection, keys: KeyEncryptionKeys) -> list[str]:
    """The ids of the KEKs that still wrap a data key (a case's, or a personal export's still stored) but that
    the key service does not hold (configured without them, every read of those cases or exports would fail).
    Ids only: an id is a fingerprint, never key material."""
    used = set(
        (
            await db.execute(
                select(col(CaseKeyRow.kek_id)).where(col(CaseKeyRow.wrapped).is_not(None)).distinct()
            )
        ).scalars()
    )
    E = PersonalExportRow
    used |= {
        k
        for k in (
            await db.execute(select(col(E.kek_id)).where(col(E.wrapped_key).is_not(None)).distinct())
        ).scalars()
        if k is not None
    }
    return sorted(k for k in used if not keys.holds(k))


def missing_keks_message(ids: Sequence[str]) -> str:
    """What the operator is told (log, CLI): which KEK ids are missing and what to do."""
    return (
        "data keys are wrapped under key-encryption key id(s) "
        + ", ".join(ids)
        + " that MADOGUCHI_KEK_FILE / MADOGUCHI_KEK does not hold; put the previous KEK back after the current"
        " one (and run `madoguchi rotate-keys` until 0 remain before removing it)"
    )


@dataclass(frozen=True, slots=True)
class Rotation:
    rewrapped: int
    remaining: int  # wrapped under a KEK other than the current one, after this run (0 when it finished)


@dataclass(frozen=True, slots=True)
class _WrappedKeys:
    """A table of wrapped keys: its key column, KEK id and wrapped key, and the context a key is bound to."""

    table: Any
    id: Any
    kek_id: Any
    wrapped: Any
    context: Callable[[uuid.UUID], bytes]

    def behind(self, current: str) -> ColumnElement[bool]:
        return (col(self.kek_id) != current) & col(self.wrapped).is_not(None)


WRAPPED_KEYS = (
    # The case keys, then those of personal exports still stored (ready, or waiting for the sweep).
    _WrappedKeys(
        CaseKeyRow,
        CaseKeyRow.consultation_id,
        CaseKeyRow.kek_id,
        CaseKeyRow.wrapped,
        lambda i: wrap_context(i.bytes),
    ),
    _WrappedKeys(
        PersonalExportRow,
        PersonalExportRow.id,
        PersonalExportRow.kek_id,
        PersonalExportRow.wrapped_key,
        export_context,
    ),
)


async def rewrap_all(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyEncryptionKeys,
    *,
    batch: int = 500,
    limit: int | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Rotation:
    """Re-wrap every data key under the current KEK (KEK rotation): the data stays as it is, only the wrapped
    keys change. Each batch commits on its own, so an interrupted run resumes where it stopped; `limit` stops
    after that many keys (for a rotation spread over several windows)."""

    async def count() -> int:
        async with sessions() as db:
            counts = [
                (
                    await db.execute(
                        select(func.count()).select_from(w.table).where(w.behind(keys.current_id))
                    )
                ).scalar_one()
                for w in WRAPPED_KEYS
            ]
        return sum(int(n) for n in counts)

    total = await count()
    done = 0
    for w in WRAPPED_KEYS:
        while limit is None or done < limit:
            size = batch if limit is None else min(batch, limit - done)
            async with sessions() as db:
                query = (
                    select(col(w.id), col(w.kek_id), col(w.wrapped))
                    .where(w.behind(keys.current_id))
                    .order_by(col(w.id))
                    .limit(size)
                )
                rows = list(await db.execute(query))
                if not rows:
                    break
                for key_id, kek_id, wrapped in rows:
                    context = w.context(key_id)
                    kek, rewrapped = keys.wrap(keys.unwrap(kek_id, wrapped, context=context), context=context)
                    # Only a key still as read: one destroyed meanwhile (a case shredded, an export's copy
                    # downloaded or swept) stays destroyed.
                    await db.execute(
                        update(w.table)
                        .where(col(w.id) == key_id, col(w.kek_id) == kek_id, col(w.wrapped).is_not(None))
                        .values({w.kek_id: kek, w.wrapped: rewrapped})
                        .execution_options(synchronize_session=False)
                    )
                await db.commit()
            done += len(rows)
            progress(done, total)
    remaining = await count()
    return Rotation(rewrapped=done, remaining=remaining)
