"""Who is acting: roles, clients, and the Actor every use case receives."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime


class Role(enum.StrEnum):
    consulter = "consulter"
    consultant = "consultant"
    legal_advisor = "legal_advisor"
    supervisor = "supervisor"
    council = "council"
    admin = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.consulter


class Client(enum.StrEnum):
    """The front door a token was issued for."""

    web = "web"
    staff = "staff"
    line = "line"
    chatbot = "chatbot"
    service = "service"


PERSON_CLIENTS = frozenset({Client.web, Client.staff})


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated caller: a person (user_id and session_id set) or a service client (scopes)."""

    client: Client
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    role: Role | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    service_client_id: str | None = None
    mfa: bool = False
    # When this person last proved who they are on this session (sign-in or step-up), from the session.
    auth_time: datetime | None = None

    @property
    def is_person(self) -> bool:
        return self.user_id is not None

    @property
    def is_staff(self) -> bool:
        return self.role is not None and self.role.is_staff

    def require_user_id(self) -> uuid.UUID:
        if self.user_id is None:
            from domain.errors import Forbidden

            raise Forbidden("person_required")
        return self.user_id
