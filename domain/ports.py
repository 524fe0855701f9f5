"""Ports: what the domain needs from the outside world, as Protocols. infra/ implements them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from domain.actors import Actor, Client, Role
from domain.models import AuthSession, EmailToken, EmailTokenPurpose, RefreshToken, ServiceClient, User

if TYPE_CHECKING:  # the features' repositories; they import this module for Clock and AuditLog
    from domain.answers import AnswerRepository
    from domain.case_keys import CaseKeys
    from domain.chatbot import ChatbotRepository
    from domain.consultations import ConsultationRepository, Cursor
    from domain.custody import CustodyReader
    from domain.desks import DeskRepository
    from domain.letters import LetterRepository
    from domain.quality import CouncilRepository, ManualRepository, QualityRepository
    from domain.referrals import ReferralRepository
    from domain.requests import RequestRepository
    from domain.statistics import StatisticsRepository


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

    async def change_email(self, user: User) -> bool:
        """Writes the account with its new `email`; False, changing nothing, when the unique address
        constraint refuses it (another account holds the address, even one created a moment ago)."""
        ...

    async def page(self, *, role: Role | None, after: Cursor | None, limit: int) -> Sequence[User]: ...


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


class Transaction(Protocol):
    """What every unit of work is: opened for one use case, committed once at its end (leaving it without
    a commit rolls back). The per-feature units of work below say which repositories a use case may reach;
    infra/db/uow.py's SqlUnitOfWork is all of them. Members are read-only properties, so an adapter's own
    repository classes satisfy them."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...


U_co = TypeVar("U_co", bound=Transaction, covariant=True)


class UnitOfWorkFactory(Protocol[U_co]):
    """A fresh unit of work per use case: `async with self.uow() as uow: ...`."""

    def __call__(self) -> U_co: ...


class AccountUnitOfWork(Transaction, Protocol):
    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def email_tokens(self) -> EmailTokenRepository: ...

    @property
    def service_clients(self) -> ServiceClientRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def audit(self) -> AuditLog: ...


class DeskUnitOfWork(Transaction, Protocol):
    @property
    def desks(self) -> DeskRepository: ...


class ConsultationUnitOfWork(DeskUnitOfWork, Protocol):
    """A consultation, its messages and evidence, with the trail, the chain of custody and the outbox
    (and the desk directory, read in the same transaction at intake)."""

    @property
    def consultations(self) -> ConsultationRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def custody(self) -> CustodyReader: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def case_keys(self) -> CaseKeys: ...


class ReferralUnitOfWork(ConsultationUnitOfWork, Protocol):
    @property
    def referrals(self) -> ReferralRepository: ...


class RequestUnitOfWork(ConsultationUnitOfWork, Protocol):
    """Requests and their clocks; a request may name a letter of the case."""

    @property
    def requests(self) -> RequestRepository: ...

    @property
    def letters(self) -> LetterRepository: ...


class SuggestionUnitOfWork(ConsultationUnitOfWork, Protocol):
    """What a template is filled from: the case, its requests, the manual and the staff member's name."""

    @property
    def requests(self) -> RequestRepository: ...

    @property
    def manual(self) -> ManualRepository: ...

    @property
    def users(self) -> UserRepository: ...


class AnswerUnitOfWork(SuggestionUnitOfWork, Protocol):
    """Answer drafts and reviews; a draft is filled from a template (SuggestionUnitOfWork)."""

    @property
    def answers(self) -> AnswerRepository: ...


class LetterUnitOfWork(ConsultationUnitOfWork, Protocol):
    @property
    def letters(self) -> LetterRepository: ...


class CaseUnitOfWork(AnswerUnitOfWork, LetterUnitOfWork, ReferralUnitOfWork, RequestUnitOfWork, Protocol):
    """What ConsultationService opens: the services built on it (answers, letters, referrals, requests,
    suggestions) share its unit of work, so one transaction spans a case and everything hanging off it."""


class QualityUnitOfWork(Transaction, Protocol):
    """Oversight: the manual, the council's samples, supervisor views, the trail."""

    @property
    def consultations(self) -> ConsultationRepository: ...

    @property
    def referrals(self) -> ReferralRepository: ...

    @property
    def manual(self) -> ManualRepository: ...

    @property
    def council(self) -> CouncilRepository: ...

    @property
    def quality(self) -> QualityRepository: ...

    @property
    def audit(self) -> AuditLog: ...


class ChatbotUnitOfWork(Transaction, Protocol):
    @property
    def chatbot(self) -> ChatbotRepository: ...


class StatisticsUnitOfWork(Transaction, Protocol):
    @property
    def statistics(self) -> StatisticsRepository: ...

    @property
    def audit(self) -> AuditLog: ...


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
    "Transaction",
    "UnitOfWorkFactory",
    "AccountUnitOfWork",
    "DeskUnitOfWork",
    "ConsultationUnitOfWork",
    "ReferralUnitOfWork",
    "RequestUnitOfWork",
    "SuggestionUnitOfWork",
    "AnswerUnitOfWork",
    "LetterUnitOfWork",
    "CaseUnitOfWork",
    "QualityUnitOfWork",
    "ChatbotUnitOfWork",
    "StatisticsUnitOfWork",
    "Client",
]
