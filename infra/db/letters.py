"""The letters repository: a letter with its versions (JSON content, immutable) and reviews. A version's
content (recipient, quoted evidence, the person's texts, the sender) is sealed with the case's key (issue 17 §1)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.consultations import Cursor
from domain.letters import (
    Letter,
    LetterContent,
    LetterItem,
    LetterKind,
    LetterReview,
    LetterState,
    LetterVersion,
    Sender,
)
from domain.policy import Visibility
from infra.crypto import opened_json, opened_text, seal_json, seal_text
from infra.db import visibility as visible
from infra.db.case_keys import SqlCaseKeys
from infra.db.engine import affected
from infra.db.paging import keyset
from infra.db.tables_letters import LetterReviewRow, LetterRow, LetterVersionRow


def content_to_json(c: LetterContent) -> dict[str, Any]:
    return {
        "recipient": c.recipient,
        "items": [
            {
                "evidence_id": str(i.evidence_id),
                "url": i.url,
                "posted_at": i.posted_at.isoformat() if i.posted_at else None,
                "excerpt": i.excerpt,
                "platform": i.platform,
            }
            for i in c.items
        ],
        "choices": {k: list(v) for k, v in c.choices.items()},
        "texts": dict(c.texts),
        "sender": {"name": c.sender.name, "address": c.sender.address, "contact": c.sender.contact},
    }


def content_from_json(raw: dict[str, Any]) -> LetterContent:
    return LetterContent(
        raw["recipient"],
        tuple(
            LetterItem(
                uuid.UUID(i["evidence_id"]),
                i.get("url"),
                datetime.fromisoformat(i["posted_at"]) if i.get("posted_at") else None,
                i.get("excerpt"),
                i.get("platform"),
            )
            for i in raw.get("items", [])
        ),
        {k: tuple(v) for k, v in raw.get("choices", {}).items()},
        dict(raw.get("texts", {})),
        Sender(**raw.get("sender", {})),
    )


CONTENT = "letter_version.content"
ADVICE = "letter_review.advice"


class SqlLetters:
    def __init__(self, db: AsyncSession, keys: SqlCaseKeys) -> None:
        self.db = db
        self.keys = keys

    async def add(self, letter: Letter) -> None:
        self.db.add(
            LetterRow(
                id=letter.id,
                consultation_id=letter.consultation_id,
                kind=letter.kind.value,
                author_id=letter.author_id,
                state=letter.state.value,
                review_reasons=letter.review_reasons,
                created_at=letter.created_at,
                updated_at=letter.updated_at,
                version=letter.version,
            )
        )
        await self.db.flush()

    async def add_version(self, version: LetterVersion) -> None:
        letter = await self.db.get(LetterRow, version.letter_id)  # in this unit of work already: no query
        assert letter is not None, "a version belongs to a letter added or read before"
        key = await self.keys.for_consultation(letter.consultation_id)
        self.db.add(
            LetterVersionRow(
                id=version.id,
                letter_id=version.letter_id,
                number=version.number,
                content=seal_json(key, content_to_json(version.content), field=CONTENT, row_id=version.id),
                author_id=version.author_id,
                created_at=version.created_at,
            )
        )
        await self.db.flush()

    async def add_review(self, review: LetterReview) -> None:
        letter = await self.db.get(LetterRow, review.letter_id)  # in this unit of work already: no query
        assert letter is not None, "a review is of a letter read before"
        key = await self.keys.for_consultation(letter.consultation_id)
        self.db.add(
            LetterReviewRow(
                id=review.id,
                letter_id=review.letter_id,
                version_number=review.version_number,
                reviewer_id=review.reviewer_id,
                reviewer_role=review.reviewer_role,
                decision=review.decision,
                advice=seal_text(key, review.advice, field=ADVICE, row_id=review.id),
                created_at=review.created_at,
            )
        )
        await self.db.flush()

    async def _hydrate(self, rows: Sequence[LetterRow]) -> list[Letter]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        case_of = {r.id: r.consultation_id for r in rows}
        keys = await self.keys.of_many([r.consultation_id for r in rows])
        versions: dict[uuid.UUID, list[LetterVersion]] = {i: [] for i in ids}
        for v in (
            await self.db.execute(
                select(LetterVersionRow)
                .where(col(LetterVersionRow.letter_id).in_(ids))
                .order_by(col(LetterVersionRow.number))
            )
        ).scalars():
            content = opened_json(keys.get(case_of[v.letter_id]), v.content, CONTENT, v.id)
            versions[v.letter_id].append(
                LetterVersion(
                    v.id, v.letter_id, v.number, content_from_json(content), v.author_id, v.created_at
                )
            )
        reviews: dict[uuid.UUID, list[LetterReview]] = {i: [] for i in ids}
        for r in (
            await self.db.execute(
                select(LetterReviewRow)
                .where(col(LetterReviewRow.letter_id).in_(ids))
                .order_by(col(LetterReviewRow.created_at), col(LetterReviewRow.version_number))
            )
        ).scalars():
            reviews[r.letter_id].append(
                LetterReview(
                    r.id,
                    r.letter_id,
                    r.version_number,
                    r.reviewer_id,
                    r.reviewer_role,
                    r.decision,
                    opened_text(keys.get(case_of[r.letter_id]), r.advice, ADVICE, r.id),
                    r.created_at,
                )
            )
        return [
            Letter(
                r.id,
                r.consultation_id,
                LetterKind(r.kind),
                r.author_id,
                LetterState(r.state),
                list(r.review_reasons),
                r.created_at,
                r.updated_at,
                r.submitted_at,
                r.finalised_at,
                r.version,
                versions[r.id],
                reviews[r.id],
            )
            for r in rows
        ]

    async def get(self, letter_id: uuid.UUID, visibility: Visibility) -> Letter | None:
        query = select(LetterRow).where(col(LetterRow.id) == letter_id, visible.letters(visibility))
        row = (await self.db.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
        found = await self._hydrate([row] if row else [])
        return found[0] if found else None

    async def for_consultation(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Letter]:
        L = LetterRow
        query = select(L).where(col(L.consultation_id) == consultation_id)
        query = keyset(query, col(L.created_at), col(L.id), after, limit, newest_first=True)
        return await self._hydrate((await self.db.execute(query)).scalars().all())

    async def awaiting_review(
        self, visibility: Visibility, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Letter]:
        """Longest waiting first: by the time the letter was sent for review."""
        L = LetterRow
        query = select(L).where(
            col(L.state) == LetterState.awaiting_review.value,
            visible.letters(visibility),
        )
        query = keyset(query, func.coalesce(col(L.submitted_at), col(L.created_at)), col(L.id), after, limit)
        return await self._hydrate((await self.db.execute(query)).scalars().all())

    async def save_state(self, letter: Letter, expected_version: int) -> bool:
        result = await self.db.execute(
            update(LetterRow)
            .where(col(LetterRow.id) == letter.id, col(LetterRow.version) == expected_version)
            .values(
                state=letter.state.value,
                review_reasons=letter.review_reasons,
                updated_at=letter.updated_at,
                submitted_at=letter.submitted_at,
                finalised_at=letter.finalised_at,
                version=letter.version,
            )
        )
        return affected(result) == 1
