"""Who may see and do what, written once.

Every role set, every visibility and every `ensure_*` lives here; use cases call them and the routes name the
same role sets in their guards (api/deps.py `require`), so the spec's `x-roles` and the domain's checks cannot
drift apart. Repositories translate a visibility into a query filter (infra/db/visibility.py), so an object the
caller may not see is simply not found (404). A role that may not do something at all is refused with one code,
`role_not_allowed` (403); the few refusals that depend on the object (`not_assigned`, `may_only_take_for_self`,
`originals_consulter_only`) or on the caller's kind (`person_required`, `insufficient_scope`) keep their own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from domain.actors import Actor, Role
from domain.errors import Forbidden
from domain.models import User

# -- role sets -----------------------------------------------------------------------------------------------

EVERYONE = frozenset(Role)
CONSULTERS = frozenset({Role.consulter})
STAFF = frozenset(r for r in Role if r.is_staff)
# Roles that work the consultation queue in this release. The legal advisor and the council reach cases
# through their own routes (reviews, anonymised samples); an admin manages accounts, not case content.
CASEWORKERS = frozenset({Role.consultant, Role.supervisor})
SUPERVISORS = frozenset({Role.supervisor})
LEGAL_ADVISORS = frozenset({Role.legal_advisor})
COUNCIL = frozenset({Role.council})
ADMINS = frozenset({Role.admin})
# A consultation's own routes: its consulter and the caseworkers.
CONSULTATION_READERS = CONSULTERS | CASEWORKERS
# Everyone who writes or reviews answers follows the manual: they see where an old section is still in use.
ANSWER_WRITERS = CASEWORKERS | LEGAL_ADVISORS
# A letter waiting for review is decided by the legal advisor, or approved/returned by its caseworker.
LETTER_REVIEWERS = LEGAL_ADVISORS | CASEWORKERS
# The council's work (samples, findings, proposals, its statistics) is read by the council and supervisors.
COUNCIL_READERS = COUNCIL | SUPERVISORS
# Reference data (contact desks) and the audit trail.
EDITORS = SUPERVISORS | ADMINS
AUDITORS = SUPERVISORS | ADMINS
# Statistics: supervisors choose whether small cells are suppressed; the council always gets them suppressed.
STATISTICS_FULL = SUPERVISORS
STATISTICS_SUPPRESSED = COUNCIL
STATISTICS_READERS = STATISTICS_FULL | STATISTICS_SUPPRESSED
# The roles a consultation may be assigned to.
ASSIGNEES = CASEWORKERS


def roles_of(roles: frozenset[Role]) -> list[str]:
    """A role set as the spec lists it (x-roles), in the enum's order."""
    return [r.value for r in Role if r in roles]


# -- visibilities ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class OwnedBy:
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AssignedTo:
    staff_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AssignedToOrUnassigned:
    staff_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class InReview:
    """What waits for the legal advisor's review (answer drafts, letters), and the consultations behind it."""


@dataclass(frozen=True, slots=True)
class Nothing:
    pass


Visibility = All | OwnedBy | AssignedTo | AssignedToOrUnassigned | InReview | Nothing


def consultation_visibility(actor: Actor) -> Visibility:
    """The consultations (and what hangs off them: messages, evidence, answers, referrals, requests, letters)
    a person sees on the case routes."""
    if actor.role is Role.consulter and actor.user_id is not None:
        return OwnedBy(actor.user_id)
    if actor.role is Role.supervisor:
        return All()
    if actor.role is Role.consultant and actor.user_id is not None:
        return AssignedToOrUnassigned(actor.user_id)
    return Nothing()


def evidence_bundle_visibility(actor: Actor) -> Visibility:
    """An evidence bundle is for the consulter and for the staff member the case is assigned to; anyone else,
    a supervisor included, is told the case does not exist."""
    if actor.user_id is None:
        return Nothing()
    if actor.role is Role.consulter:
        return OwnedBy(actor.user_id)
    if actor.role in CASEWORKERS:
        return AssignedTo(actor.user_id)
    return Nothing()


def review_visibility(actor: Actor) -> Visibility:
    """The legal advisor reads what waits for review (answer drafts, letters) and the consultations behind
    it, whoever works the case; nothing once it is decided."""
    return InReview() if actor.role in LEGAL_ADVISORS else Nothing()


def answer_visibility(actor: Actor) -> Visibility:
    """Answer drafts: the case's visibility on the case routes, the review state for the legal advisor."""
    return review_visibility(actor) if actor.role in LEGAL_ADVISORS else consultation_visibility(actor)


def letter_visibility(actor: Actor) -> Visibility:
    """Letters: like answer drafts (the person and the case's staff; the advisor while it waits for review)."""
    return review_visibility(actor) if actor.role in LEGAL_ADVISORS else consultation_visibility(actor)


# Messages, evidence, referrals, requests (with their history) and clocks are parts of their consultation: seen
# with it, by the same rule, so these are consultation_visibility under the resource's name. Their repository
# reads take it and filter through the consultation in the same SELECT (infra/db/visibility.py
# of_consultation, through_case), so such a read is safe without the case having been read first. What else
# a person may see of them is decided in the use case: which message kinds (a consulter never reads notes),
# a sealed file only for the assignee. A read of the system's own (the clocks' recompute, the worker) passes
# All() explicitly.
message_visibility = evidence_visibility = referral_visibility = request_visibility = consultation_visibility


def chain_visibility(c: Owned) -> Visibility:
    """The earlier consultations a case follows (and their requests): only ever the same person's, reached
    through a case the actor already sees."""
    return OwnedBy(c.owner_id)


def sample_visibility(actor: Actor) -> Visibility:
    """The council and supervisors read the consultations drawn into a sample, only anonymised (the sample
    names which ones)."""
    return All() if actor.role in COUNCIL_READERS else Nothing()


def audit_visibility(actor: Actor) -> Visibility:
    """The audit trail: supervisors and administrators read all of it, nobody else any."""
    return All() if actor.role in AUDITORS else Nothing()


def sees_staff_identities(actor: Actor) -> bool:
    """Who on staff holds a case or decided a review (their user id) is for staff. A consulter sees only
    that staff acted (`by_staff`, `from_staff`, a reviewer's role): the person who consults may be the one
    causing the harm, holding an ordinary account, and must not learn whom to reach or pressure. Service
    clients and anything without a staff role see no staff identity either."""
    return actor.is_staff


def staff_identity(actor: Actor, staff_id: uuid.UUID | None) -> uuid.UUID | None:
    """A staff member's user id as `actor` may see it: itself for staff, None for anyone else."""
    return staff_id if sees_staff_identities(actor) else None


def queue_filters_allowed(actor: Actor) -> bool:
    """Only staff filter the queue by assignee, unassigned or overdue; a consulter's list is theirs alone."""
    return actor.role is not Role.consulter


# -- checks ---------------------------------------------------------------------------------------------------


class Assignable(Protocol):
    @property
    def assignee_id(self) -> uuid.UUID | None: ...


class Owned(Protocol):
    @property
    def owner_id(self) -> uuid.UUID: ...


def may(actor: Actor, roles: frozenset[Role]) -> bool:
    return actor.role in roles


def ensure_role(actor: Actor, roles: frozenset[Role]) -> None:
    """The one refusal for a role that may not do this at all."""
    if actor.role not in roles:
        raise Forbidden("role_not_allowed")


def ensure_consulter(actor: Actor) -> None:
    ensure_role(actor, CONSULTERS)


def ensure_staff(actor: Actor) -> None:
    ensure_role(actor, STAFF)


def ensure_caseworker(actor: Actor) -> None:
    ensure_role(actor, CASEWORKERS)


def ensure_admin(actor: Actor) -> None:
    ensure_role(actor, ADMINS)


def ensure_supervisor(actor: Actor) -> None:
    ensure_role(actor, SUPERVISORS)


def ensure_legal_advisor(actor: Actor) -> None:
    ensure_role(actor, LEGAL_ADVISORS)


def ensure_editor(actor: Actor) -> None:
    ensure_role(actor, EDITORS)


def ensure_may_read_consultations(actor: Actor) -> None:
    ensure_role(actor, CONSULTATION_READERS)


def ensure_may_work(actor: Actor, c: Assignable) -> None:
    """Consultants work their own cases; supervisors any."""
    ensure_caseworker(actor)
    if actor.role is Role.consultant and c.assignee_id != actor.user_id:
        raise Forbidden("not_assigned")


def may_assign_to_others(actor: Actor) -> bool:
    return actor.role in SUPERVISORS


def ensure_may_assign(actor: Actor, assignee_id: uuid.UUID) -> None:
    """Before the case is looked up: caseworkers take cases, only a supervisor assigns to someone else."""
    ensure_caseworker(actor)
    if assignee_id != actor.user_id and not may_assign_to_others(actor):
        raise Forbidden("may_only_take_for_self")


def ensure_may_take(actor: Actor, c: Assignable) -> None:
    """A consultant may take an unassigned case or keep their own, not one assigned to a colleague."""
    if actor.role is Role.consultant and c.assignee_id not in (None, actor.user_id):
        raise Forbidden("not_assigned")


def ensure_owner(actor: Actor, c: Owned) -> None:
    """Only the person writes in their own name (letters, requests, consent): staff read, advise and review.
    Another consulter never reaches this (the case's visibility hides it), so the refusal is the role one."""
    if actor.role is not Role.consulter or actor.user_id != c.owner_id:
        raise Forbidden("role_not_allowed")


def ensure_may_ask_for_originals(actor: Actor, originals: bool) -> None:
    if originals and actor.role is not Role.consulter:
        raise Forbidden("originals_consulter_only")


def statistics_suppressed(actor: Actor, asked: bool) -> bool:
    """Whether small cells are suppressed for this reader (403 for anyone who may not read statistics)."""
    if actor.role in STATISTICS_FULL:
        return asked
    if actor.role in STATISTICS_SUPPRESSED:
        return True  # the council never sees small cells, whatever it asks
    raise Forbidden("role_not_allowed")


# -- service clients --------------------------------------------------------------------------------------------

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


def ensure_person(actor: Actor) -> uuid.UUID:
    if actor.user_id is None:
        raise Forbidden("person_required")
    return actor.user_id


# LINE ---------------------------------------------------------------------------------------------------
# (kept together at the end of the file for the LINE use cases: domain/line_linking.py, line_dead_letters.py)

# Who replays LINE dead letters: operations, not case work (an admin manages accounts, not case content).
LINE_OPERATORS = ADMINS


def ensure_may_link_line(actor: Actor) -> None:
    """Only a consulter links (and unlinks) a LINE account: notices go to people with consultations."""
    ensure_role(actor, CONSULTERS)


def may_be_linked_to_line(user: User) -> bool:
    """Checked again when LINE confirms the link: the account may have been closed or changed role since."""
    return user.is_active and user.role in CONSULTERS


def ensure_may_handle_line_dead_letters(actor: Actor) -> None:
    ensure_role(actor, LINE_OPERATORS)
