"""Who may see and do what, written once. Repositories translate a visibility into a query filter, so an
object the caller may not see is simply not found (404)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.actors import Actor, Role
from domain.errors import Forbidden
from domain.models import User


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class OwnedBy:
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AssignedToOrUnassigned:
    staff_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Nothing:
    pass


Visibility = All | OwnedBy | AssignedToOrUnassigned | Nothing

# OAuth2 scopes a service client (client_credentials) can be granted, each required by the operations named.
# The public routes they guard also answer anonymous callers; a service client that signs its calls gets its
# own rate-limit bucket instead of its server's address, and only for what its scopes allow.
SERVICE_SCOPES = {
    "chart:read": "Read the contact-desk chart and walk it (GET /v1/chart, POST /v1/chart/walk)",
    "triage:run": "Run triage on free text (POST /v1/triage)",
}


def ensure_scope(actor: Actor | None, scope: str) -> None:
    """Anonymous callers and people pass (the route is public); a service client needs the scope."""
    if actor is not None and not actor.is_person and scope not in actor.scopes:
        raise Forbidden("insufficient_scope")


# Roles that work the consultation queue in this release. The legal advisor and the council reach cases
# through their own routes (reviews, anonymised samples); an admin manages accounts, not case content.
CASEWORKERS = frozenset({Role.consultant, Role.supervisor})


def consultation_visibility(actor: Actor) -> Visibility:
    if actor.role is Role.consulter and actor.user_id is not None:
        return OwnedBy(actor.user_id)
    if actor.role is Role.supervisor:
        return All()
    if actor.role is Role.consultant and actor.user_id is not None:
        return AssignedToOrUnassigned(actor.user_id)
    return Nothing()


def ensure_consulter(actor: Actor) -> None:
    if actor.role is not Role.consulter:
        raise Forbidden("consulter_only")


def ensure_caseworker(actor: Actor) -> None:
    if actor.role not in CASEWORKERS:
        raise Forbidden("role_not_allowed")


def ensure_may_read_consultations(actor: Actor) -> None:
    if actor.role is not Role.consulter and actor.role not in CASEWORKERS:
        raise Forbidden("role_not_allowed")


def may_assign_to_others(actor: Actor) -> bool:
    return actor.role is Role.supervisor


# LINE ---------------------------------------------------------------------------------------------------
# (kept together at the end of the file for the LINE use cases: domain/line_linking.py, line_dead_letters.py)

# Who replays LINE dead letters: operations, not case work (an admin manages accounts, not case content).
LINE_OPERATORS = frozenset({Role.admin})


def ensure_may_link_line(actor: Actor) -> None:
    """Only a consulter links (and unlinks) a LINE account: notices go to people with consultations."""
    if actor.role is not Role.consulter:
        raise Forbidden("consulter_required")


def may_be_linked_to_line(user: User) -> bool:
    """Checked again when LINE confirms the link: the account may have been closed or changed role since."""
    return user.is_active and user.role is Role.consulter


def ensure_may_handle_line_dead_letters(actor: Actor) -> None:
    if actor.role not in LINE_OPERATORS:
        raise Forbidden("role_not_allowed")
