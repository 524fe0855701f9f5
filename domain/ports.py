"""Ports: what the domain needs from the outside world, as Protocols. infra/ implements them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.actors import Actor, Client, Role
from domain.models import AuthSession, EmailToken, EmailTokenPurpose, RefreshToken, ServiceClient, User


class Clock(Protocol):
    def now(self) -> datetime: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Spend the same effort as a verification, for callers with no account to check against."""

    def is_common(self, password: str) -> bool: ...


class TokenIssuer(Protocol):
    def access_token(self, actor: Actor, *, now: datetime) -> tuple[str, int]:
        """Return (token, lifetime in seconds)."""

    def new_opaque(self) -> str: ...

    def digest(self, opaque: str) -> str: ...

    def seal(self, value: str) -> str:
        """Encrypt a one-time secret that must wait somewhere (the outbox) before it is sent."""

    def unseal(self, sealed: str) -> str: ...


class TotpVerifier(Protocol):
    def new_secret(self) -> str: ...

    def provisioning_uri(self, secret: str, account_name: str) -> str: ...

    def verify(self, secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
        """The time step the code belongs to, if valid and newer than `after_step` (no replays); else None."""

    def seal(self, secret: str) -> str: ...

    def unseal(self, sealed: str) -> str: ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...

    async def get(self, user_id: uuid.UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def update(self, user: User) -> None: ...

    async def list(self, *, role: Role | None, after: uuid.UUID | None, limit: int) -> Sequence[User]: ...


class SessionRepository(Protocol):
    async def add(self, session: AuthSession) -> None: ...

    async def get(self, session_id: uuid.UUID) -> AuthSession | None: ...

    async def revoke(self, session_id: uuid.UUID, *, at: datetime, reason: str) -> None: ...

    async def revoke_all_for_user(
        self, user_id: uuid.UUID, *, at: datetime, reason: str, keep: uuid.UUID | None = None
    ) -> None: ...

    async def mark_mfa(self, session_id: uuid.UUID) -> None: ...

    async def mark_reauthenticated(self, session_id: uuid.UUID, *, at: datetime) -> None: ...


class SessionLookup(Protocol):
    async def live_session(self, session_id: uuid.UUID) -> tuple[AuthSession, User] | None:
        """The session and its user in one round trip, outside any unit of work: this runs on every
        authenticated request, so it is one autocommit SELECT."""


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get_by_digest(self, digest: str) -> RefreshToken | None: ...

    async def mark_used(self, token_id: uuid.UUID, *, at: datetime) -> bool:
        """Mark as used if it was not already; False when someone else used it first."""


class EmailTokenRepository(Protocol):
    async def add(self, token: EmailToken) -> None: ...

    async def get_by_digest(self, digest: str) -> EmailToken | None: ...

    async def consume(self, token_id: uuid.UUID, *, at: datetime) -> bool: ...

    async def consume_all(self, user_id: uuid.UUID, purpose: EmailTokenPurpose, *, at: datetime) -> None: ...


class ServiceClientRepository(Protocol):
    async def get(self, client_id: str) -> ServiceClient | None: ...

    async def add(self, client: ServiceClient) -> None: ...


@dataclass(frozen=True, slots=True)
class Counted:
    """One key's count after an attempt was added to it."""

    attempts: int  # in the current window, this one included
    limit: int
    resets_in: int  # seconds until the window ends

    @property
    def wait(self) -> int:
        """Seconds to wait when over the limit, else 0."""
        return max(1, self.resets_in) if self.attempts > self.limit else 0


class Throttle(Protocol):
    async def attempt(self, keys: Sequence[str], *, now: datetime) -> int:
        """Count one attempt on every key; seconds to wait when any key is over its limit, else 0."""

    async def count(self, keys: Sequence[str], *, now: datetime) -> list[Counted]:
        """Count one attempt on every key and say where each stands."""

    async def clear_prefix(self, prefix: str) -> None:
        """Forget every key that starts with `prefix`."""

    async def forgive(self, keys: Sequence[str]) -> None:
        """Take one attempt back (it succeeded)."""

    async def clear(self, keys: Sequence[str]) -> None: ...


class AuditLog(Protocol):
    """The trail of who did what, written through the unit of work of the use case it describes: it commits
    with the change (or with the read: a unit of work that ends without error commits its pending records)
    and is rolled back with it."""

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
        """An event on a consultation's record (`consultation_id`, implied for object_type "consultation")
        is also appended to its chain of custody (domain/custody.py) in the same transaction."""


class Outbox(Protocol):
    async def put(self, kind: str, payload: dict[str, Any], *, dedupe_key: str | None = None) -> None: ...


class UnitOfWork(Protocol):
    users: UserRepository
    sessions: SessionRepository
    refresh_tokens: RefreshTokenRepository
    email_tokens: EmailTokenRepository
    service_clients: ServiceClientRepository
    outbox: Outbox

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


__all__ = [
    "Clock",
    "PasswordHasher",
    "TokenIssuer",
    "TotpVerifier",
    "UserRepository",
    "SessionRepository",
    "SessionLookup",
    "RefreshTokenRepository",
    "EmailTokenRepository",
    "ServiceClientRepository",
    "Counted",
    "Throttle",
    "Outbox",
    "AuditLog",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "Client",
]
