"""What the chatbot stores (sessions, turns, hand-off drafts) and the ports it needs from infra."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.chatbot.model import Draft
from domain.knowledge_model import Desk


@dataclass(slots=True)
class ChatSession:
    id: uuid.UUID
    token_digest: str
    state: dict[str, Any]
    flows_version: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    turns: int = 0
    version: int = 1


@dataclass(frozen=True, slots=True)
class ChatTurn:
    id: uuid.UUID
    session_id: uuid.UUID
    seq: int
    role: str  # "bot" | "user"
    payload: dict[str, Any]
    created_at: datetime


@dataclass(slots=True)
class ChatDraft:
    id: uuid.UUID
    session_id: uuid.UUID
    token_digest: str
    draft: Draft
    created_at: datetime
    expires_at: datetime
    claimed_at: datetime | None = None
    claimed_by: uuid.UUID | None = None


class ChatbotRepository(Protocol):
    async def add_session(self, s: ChatSession) -> None: ...

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None: ...

    async def save_session(self, s: ChatSession, *, expected_version: int) -> bool:
        """Store state, activity and expiry; False when another turn saved first."""

    async def add_turns(self, turns: Sequence[ChatTurn]) -> None: ...

    async def turns(self, session_id: uuid.UUID) -> list[ChatTurn]: ...

    async def add_draft(self, d: ChatDraft) -> None: ...

    async def claim_draft(self, token_digest: str, user_id: uuid.UUID, *, now: datetime) -> ChatDraft | None:
        """Mark the unclaimed, unexpired draft with this digest as claimed (atomically); None otherwise."""


class ChatbotTokens(Protocol):
    def new_opaque(self) -> str: ...

    def digest(self, opaque: str) -> str: ...


class ChartWalker(Protocol):
    async def walk_chart(self, answers: Sequence[str]) -> Any:
        """domain.guidance.GuidanceService.walk_chart: a result with `.step` (a ChartStep)."""


class DeskResolver(Protocol):
    async def resolve(self, codes: Sequence[str]) -> list[Desk]: ...


class ChatbotUnitOfWork(Protocol):
    """The part of the unit of work the chatbot uses (infra/db/uow.py SqlUnitOfWork has it)."""

    @property
    def chatbot(self) -> ChatbotRepository: ...

    async def __aenter__(self) -> ChatbotUnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...


class ChatbotUnitOfWorkFactory(Protocol):
    def __call__(self) -> ChatbotUnitOfWork: ...
