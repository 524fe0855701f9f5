"""What the LINE use cases (domain/line_conversation.py, line_linking.py, line_dead_letters.py) see of storage
and of the Messaging API: plain records and Protocols; infra/db/line.py and infra/line_sdk.py implement them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.consents import ConsentRepository
from domain.line import Message
from domain.ports import UserRepository


@dataclass(frozen=True, slots=True)
class LineEvent:
    """A webhook event as the inbox keeps it: reduced (free text already turned into triage codes)."""

    id: uuid.UUID
    kind: str  # follow | unfollow | message | postback | accountLink | ...
    line_user_id: str | None
    payload: Mapping[str, Any]
    reply_token: str | None
    event_at: datetime


@dataclass(frozen=True, slots=True)
class LinePerson:
    """A LINE user who talked to the bot: the opaque id, the account it is linked to, the language chosen."""

    line_user_id: str
    user_id: uuid.UUID | None = None
    language: str | None = None
    linked_at: datetime | None = None
    unfollowed_at: datetime | None = None

    @property
    def following(self) -> bool:
        return self.unfollowed_at is None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery as an admin sees it: never its recipient or its messages."""

    id: uuid.UUID
    purpose: str
    status: str
    attempts: int
    replays: int
    last_error: str | None
    created_at: datetime
    failed_at: datetime | None


class LineInbox(Protocol):
    async def pending(self, event_id: uuid.UUID) -> LineEvent | None:
        """The event, unless it is gone or already processed."""
        ...

    async def done(self, event_id: uuid.UUID, now: datetime) -> None:
        """Processed: its payload and reply token are dropped (the token moved to the delivery, if any)."""
        ...


class LineUsers(Protocol):
    async def seen(self, line_user_id: str, now: datetime) -> LinePerson:
        """The person, recorded on first contact (the id only: no profile is ever fetched)."""
        ...

    async def by_user(self, user_id: uuid.UUID) -> LinePerson | None: ...

    async def follow(self, line_user_id: str, now: datetime) -> None: ...

    async def unfollow(self, line_user_id: str, now: datetime) -> None:
        """Blocked: unlinked, and every message still waiting for this person dropped (dead letters too)."""
        ...

    async def set_language(self, line_user_id: str, language: str, now: datetime) -> None: ...

    async def bind(self, line_user_id: str, user_id: uuid.UUID, now: datetime) -> None:
        """One LINE user per account and one account per LINE user: a new link replaces an old one."""
        ...

    async def unlink_user(self, user_id: uuid.UUID, now: datetime) -> bool: ...


class LineNonces(Protocol):
    async def add(self, digest: str, user_id: uuid.UUID, now: datetime, expires_at: datetime) -> None:
        """Replaces the account's earlier nonce."""
        ...

    async def consume(self, digest: str, now: datetime) -> uuid.UUID | None:
        """The account behind an unexpired nonce, exactly once."""
        ...


class LineDeliveries(Protocol):
    async def queue(
        self,
        *,
        purpose: str,
        line_user_id: str,
        messages: Sequence[Message],
        now: datetime,
        reply_token: str | None = None,
        event_at: datetime | None = None,
        user_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A message to send (a reply while `reply_token` is fresh, a push otherwise), due now."""
        ...

    async def find(self, delivery_id: uuid.UUID) -> DeadLetter | None:
        """Any delivery, dead or not, as an admin may see it."""
        ...

    async def dead(self, limit: int) -> list[DeadLetter]:
        """Dead letters, newest failure first."""
        ...

    async def requeue(self, delivery_id: uuid.UUID, now: datetime) -> DeadLetter:
        """A dead letter pending again, due now, as a push (the reply token is long gone) with a fresh count
        of attempts and its original retry key."""
        ...


class LineRepositories(Protocol):
    # Read-only members, so an implementation may hold its own (narrower) repository types.
    @property
    def line_inbox(self) -> LineInbox: ...

    @property
    def line_users(self) -> LineUsers: ...

    @property
    def line_nonces(self) -> LineNonces: ...

    @property
    def line_deliveries(self) -> LineDeliveries: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def consents(self) -> ConsentRepository: ...


class LineUnitOfWork(LineRepositories, Protocol):
    async def __aenter__(self) -> LineUnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...


class LineUnitOfWorkFactory(Protocol):
    def __call__(self) -> LineUnitOfWork: ...


class LinkTokens(Protocol):
    """The Messaging API's account-link token for a LINE user (the first step of linking)."""

    async def issue_link_token(self, line_user_id: str) -> str: ...
