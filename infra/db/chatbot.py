"""The chatbot's repository, its own small unit of work, and the retention purge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.chatbot import ChatDraft, ChatSession, ChatTurn, Draft
from infra.db.engine import affected
from infra.db.tables_chatbot import ChatbotDraftRow, ChatbotSessionRow, ChatbotTurnRow

S = ChatbotSessionRow
T = ChatbotTurnRow
D = ChatbotDraftRow


def _session(row: ChatbotSessionRow) -> ChatSession:
    return ChatSession(
        id=row.id,
        token_digest=row.token_digest,
        state=dict(row.state or {}),
        flows_version=row.flows_version,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        turns=row.turns,
        version=row.version,
    )


def _draft(row: ChatbotDraftRow) -> ChatDraft:
    return ChatDraft(
        id=row.id,
        session_id=row.session_id,
        token_digest=row.token_digest,
        draft=Draft(tuple(row.categories), tuple(row.desired_outcomes), tuple(row.platforms)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        claimed_at=row.claimed_at,
        claimed_by=row.claimed_by,
    )


class SqlChatbot:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add_session(self, s: ChatSession) -> None:
        self.db.add(
            ChatbotSessionRow(
                id=s.id,
                token_digest=s.token_digest,
                state=s.state,
                flows_version=s.flows_version,
                turns=s.turns,
                version=s.version,
                created_at=s.created_at,
                last_seen_at=s.last_seen_at,
                expires_at=s.expires_at,
            )
        )
        await self.db.flush()

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None:
        row = (await self.db.execute(select(S).where(col(S.id) == session_id))).scalar_one_or_none()
        return _session(row) if row else None

    async def save_session(self, s: ChatSession, *, expected_version: int) -> bool:
        result = await self.db.execute(
            update(S)
            .where(col(S.id) == s.id, col(S.version) == expected_version)
            .values(
                state=s.state,
                turns=s.turns,
                version=s.version,
                last_seen_at=s.last_seen_at,
                expires_at=s.expires_at,
            )
        )
        return affected(result) == 1

    async def add_turns(self, turns: Sequence[ChatTurn]) -> None:
        for t in turns:
            self.db.add(
                ChatbotTurnRow(
                    id=t.id,
                    session_id=t.session_id,
                    seq=t.seq,
                    role=t.role,
                    payload=t.payload,
                    created_at=t.created_at,
                )
            )
        await self.db.flush()

    async def turns(self, session_id: uuid.UUID) -> list[ChatTurn]:
        rows = await self.db.execute(select(T).where(col(T.session_id) == session_id).order_by(col(T.seq)))
        return [
            ChatTurn(r.id, r.session_id, r.seq, r.role, dict(r.payload or {}), r.created_at)
            for r in rows.scalars()
        ]

    async def add_draft(self, d: ChatDraft) -> None:
        self.db.add(
            ChatbotDraftRow(
                id=d.id,
                session_id=d.session_id,
                token_digest=d.token_digest,
                categories=list(d.draft.categories),
                desired_outcomes=list(d.draft.desired_outcomes),
                platforms=list(d.draft.platforms),
                created_at=d.created_at,
                expires_at=d.expires_at,
            )
        )
        await self.db.flush()

    async def claim_draft(self, token_digest: str, user_id: uuid.UUID, *, now: datetime) -> ChatDraft | None:
        # The conditional UPDATE is the single-use guarantee: of two concurrent claims only one matches.
        result = await self.db.execute(
            update(D)
            .where(col(D.token_digest) == token_digest, col(D.claimed_at).is_(None), col(D.expires_at) > now)
            .values(claimed_at=now, claimed_by=user_id)
        )
        if affected(result) != 1:
            return None
        row = (await self.db.execute(select(D).where(col(D.token_digest) == token_digest))).scalar_one()
        return _draft(row)


async def purge_chatbot(
    sessions_factory: async_sessionmaker[AsyncSession], now: datetime, retention: timedelta
) -> int:
    """Delete sessions (with their transcripts and hand-off drafts) idle for longer than `retention`; returns
    how many sessions went. Sessions last at most a few hours, so idle this long means finished."""
    cutoff = now - retention
    old = select(col(S.id)).where(col(S.last_seen_at) < cutoff)
    async with sessions_factory() as db:
        await db.execute(delete(D).where(col(D.session_id).in_(old)))
        await db.execute(delete(T).where(col(T.session_id).in_(old)))
        result = await db.execute(delete(S).where(col(S.last_seen_at) < cutoff))
        await db.commit()
    return int(affected(result) or 0)
