"""Plain records the account use cases work with; infra maps them to and from table rows."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from domain.actors import Client, Role


class Locale(enum.StrEnum):
    ja = "ja"
    en = "en"


@dataclass(slots=True)
class User:
    id: uuid.UUID
    email: str
    role: Role
    password_hash: str | None
    display_name: str | None = None
    locale: Locale = Locale.ja
    email_verified_at: datetime | None = None
    is_active: bool = True
    totp_secret: str | None = None  # sealed (encrypted) by the TotpVerifier port
    totp_enabled_at: datetime | None = None
    totp_last_step: int | None = None  # the newest accepted TOTP time step: a code is good once
    expires_at: datetime | None = None
    tokens_valid_after: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    def can_sign_in(self, now: datetime) -> bool:
        if not self.is_active or self.password_hash is None or self.email_verified_at is None:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclass(slots=True)
class AuthSession:
    id: uuid.UUID
    user_id: uuid.UUID
    client: Client
    created_at: datetime
    expires_at: datetime
    mfa: bool = False
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    reauthenticated_at: datetime | None = None  # the last step-up

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    @property
    def auth_time(self) -> datetime:
        """The last proof of identity on this session: its sign-in or its last step-up."""
        return self.reauthenticated_at or self.created_at


@dataclass(slots=True)
class RefreshToken:
    id: uuid.UUID
    session_id: uuid.UUID
    digest: str
    issued_at: datetime
    expires_at: datetime
    parent_id: uuid.UUID | None = None
    used_at: datetime | None = None


class EmailTokenPurpose(enum.StrEnum):
    verify_email = "verify_email"
    invite = "invite"
    password_reset = "password_reset"  # noqa: S105 - a purpose name, not a secret
    change_email = "change_email"


@dataclass(slots=True)
class EmailToken:
    id: uuid.UUID
    user_id: uuid.UUID
    purpose: EmailTokenPurpose
    digest: str
    expires_at: datetime
    used_at: datetime | None = None
    password_hash: str | None = None  # the password chosen at registration, applied on verification
    # change_email: the new address (and the session that asked), sealed; it never travels in the link.
    sealed_request: str | None = None


@dataclass(slots=True)
class ServiceClient:
    client_id: str
    secret_hash: str
    name: str
    kind: Client
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_active: bool = True
