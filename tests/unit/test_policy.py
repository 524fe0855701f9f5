"""domain/policy.py, role by role: who passes each check, what each visibility is, and the one code a refusal
carries. The expectations are written out here (not read back from the policy's sets), so a role moved into or
out of a set fails a test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from domain import policy
from domain.actors import Actor, Client, Role
from domain.errors import Forbidden
from domain.policy import All, AssignedTo, AssignedToOrUnassigned, InReview, Nothing, OwnedBy

ME = uuid.UUID("00000000-0000-4000-8000-000000000001")
SOMEONE = uuid.UUID("00000000-0000-4000-8000-000000000002")
R = Role


def person(role: Role, user_id: uuid.UUID = ME) -> Actor:
    client = Client.web if role is Role.consulter else Client.staff
    return Actor(client=client, user_id=user_id, session_id=uuid.uuid4(), role=role)


SERVICE = Actor(client=Client.service, scopes=frozenset({"chart:read"}), service_client_id="svc")


def refused(check: Callable[..., object], *args: object) -> str | None:
    """The refusal's code, or None when check(*args) passes."""
    try:
        check(*args)
    except Forbidden as e:
        return e.code
    return None


# Each check and the roles it lets through; everyone else is refused with role_not_allowed.
ROLE_CHECKS: dict[str, tuple[Callable[[Actor], None], set[Role]]] = {
    "ensure_consulter": (policy.ensure_consulter, {R.consulter}),
    "ensure_staff": (policy.ensure_staff, {R.consultant, R.legal_advisor, R.supervisor, R.council, R.admin}),
    "ensure_caseworker": (policy.ensure_caseworker, {R.consultant, R.supervisor}),
    "ensure_admin": (policy.ensure_admin, {R.admin}),
    "ensure_supervisor": (policy.ensure_supervisor, {R.supervisor}),
    "ensure_legal_advisor": (policy.ensure_legal_advisor, {R.legal_advisor}),
    "ensure_editor": (policy.ensure_editor, {R.supervisor, R.admin}),
    "ensure_may_read_consultations": (
        policy.ensure_may_read_consultations,
        {R.consulter, R.consultant, R.supervisor},
    ),
}

# The role sets the routes and use cases name, as the spec lists them.
ROLE_SETS = {
    "CONSULTERS": {R.consulter},
    "STAFF": {R.consultant, R.legal_advisor, R.supervisor, R.council, R.admin},
    "CASEWORKERS": {R.consultant, R.supervisor},
    "SUPERVISORS": {R.supervisor},
    "LEGAL_ADVISORS": {R.legal_advisor},
    "COUNCIL": {R.council},
    "ADMINS": {R.admin},
    "CONSULTATION_READERS": {R.consulter, R.consultant, R.supervisor},
    "ANSWER_WRITERS": {R.consultant, R.supervisor, R.legal_advisor},
    "LETTER_REVIEWERS": {R.legal_advisor, R.consultant, R.supervisor},
    "COUNCIL_READERS": {R.council, R.supervisor},
    "EDITORS": {R.supervisor, R.admin},
    "AUDITORS": {R.supervisor, R.admin},
    "STATISTICS_READERS": {R.supervisor, R.council},
    "ASSIGNEES": {R.consultant, R.supervisor},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(ROLE_CHECKS))
def test_each_role_check_admits_its_roles_and_refuses_the_others_with_one_code(name: str, role: Role) -> None:
    check, allowed = ROLE_CHECKS[name]
    expected = None if role in allowed else "role_not_allowed"
    assert refused(lambda: check(person(role))) == expected


@pytest.mark.parametrize("name", list(ROLE_CHECKS))
def test_a_service_client_passes_no_role_check(name: str) -> None:
    check, _ = ROLE_CHECKS[name]
    assert refused(lambda: check(SERVICE)) == "role_not_allowed"


@pytest.mark.parametrize("name", list(ROLE_SETS))
def test_the_role_sets(name: str) -> None:
    roles: frozenset[Role] = getattr(policy, name)
    assert set(roles) == ROLE_SETS[name]
    # ensure_role over the set: the generic check the routes' guards use
    for role in Role:
        assert refused(policy.ensure_role, person(role), roles) == (
            None if role in ROLE_SETS[name] else "role_not_allowed"
        )
    # listed in the enum's order in the spec (x-roles), without duplicates
    assert policy.roles_of(roles) == [r.value for r in Role if r in ROLE_SETS[name]]


@dataclass
class Case:
    assignee_id: uuid.UUID | None
    owner_id: uuid.UUID = ME


# ensure_may_work on a case assigned to me / to someone else / to nobody
MAY_WORK = {
    R.consulter: ("role_not_allowed", "role_not_allowed", "role_not_allowed"),
    R.consultant: (None, "not_assigned", "not_assigned"),
    R.legal_advisor: ("role_not_allowed", "role_not_allowed", "role_not_allowed"),
    R.supervisor: (None, None, None),
    R.council: ("role_not_allowed", "role_not_allowed", "role_not_allowed"),
    R.admin: ("role_not_allowed", "role_not_allowed", "role_not_allowed"),
}


@pytest.mark.parametrize("role", list(Role))
def test_only_the_assigned_consultant_or_a_supervisor_works_a_case(role: Role) -> None:
    actor = person(role)
    seen = tuple(refused(policy.ensure_may_work, actor, Case(a)) for a in (ME, SOMEONE, None))
    assert seen == MAY_WORK[role]


# ensure_may_take: a case assigned to me / to someone else / to nobody (the role check came before)
MAY_TAKE = {
    R.consultant: (None, "not_assigned", None),
    R.supervisor: (None, None, None),
}


@pytest.mark.parametrize("role", [R.consultant, R.supervisor])
def test_a_consultant_takes_an_unassigned_case_or_keeps_theirs(role: Role) -> None:
    actor = person(role)
    seen = tuple(refused(policy.ensure_may_take, actor, Case(a)) for a in (ME, SOMEONE, None))
    assert seen == MAY_TAKE[role]


# ensure_may_assign to myself / to someone else
MAY_ASSIGN = {
    R.consulter: ("role_not_allowed", "role_not_allowed"),
    R.consultant: (None, "may_only_take_for_self"),
    R.legal_advisor: ("role_not_allowed", "role_not_allowed"),
    R.supervisor: (None, None),
    R.council: ("role_not_allowed", "role_not_allowed"),
    R.admin: ("role_not_allowed", "role_not_allowed"),
}


@pytest.mark.parametrize("role", list(Role))
def test_only_a_supervisor_assigns_to_someone_else(role: Role) -> None:
    actor = person(role)
    seen = tuple(refused(policy.ensure_may_assign, actor, to) for to in (ME, SOMEONE))
    assert seen == MAY_ASSIGN[role]
    assert policy.may_assign_to_others(actor) is (role is R.supervisor)


@pytest.mark.parametrize("role", list(Role))
def test_only_the_owner_writes_in_their_own_name(role: Role) -> None:
    mine, theirs = Case(None, owner_id=ME), Case(None, owner_id=SOMEONE)
    actor = person(role)
    expected = (None, "role_not_allowed") if role is R.consulter else ("role_not_allowed", "role_not_allowed")
    assert (
        refused(lambda: policy.ensure_owner(actor, mine)),
        refused(lambda: policy.ensure_owner(actor, theirs)),
    ) == (expected)


@pytest.mark.parametrize("role", list(Role))
def test_only_the_consulter_asks_for_originals(role: Role) -> None:
    actor = person(role)
    assert refused(lambda: policy.ensure_may_ask_for_originals(actor, False)) is None
    assert refused(lambda: policy.ensure_may_ask_for_originals(actor, True)) == (
        None if role is R.consulter else "originals_consulter_only"
    )


# statistics_suppressed(asked=False), (asked=True): supervisors choose, the council always gets suppression
STATISTICS = {
    R.supervisor: (False, True),
    R.council: (True, True),
}


@pytest.mark.parametrize("role", list(Role))
def test_statistics_suppression_by_role(role: Role) -> None:
    actor = person(role)
    if role in STATISTICS:
        assert (policy.statistics_suppressed(actor, False), policy.statistics_suppressed(actor, True)) == (
            STATISTICS[role]
        )
    else:
        assert refused(lambda: policy.statistics_suppressed(actor, False)) == "role_not_allowed"


CONSULTATION_VISIBILITY: dict[Role, policy.Visibility] = {
    R.consulter: OwnedBy(ME),
    R.consultant: AssignedToOrUnassigned(ME),
    R.legal_advisor: Nothing(),
    R.supervisor: All(),
    R.council: Nothing(),
    R.admin: Nothing(),
}
BUNDLE_VISIBILITY: dict[Role, policy.Visibility] = {
    R.consulter: OwnedBy(ME),
    R.consultant: AssignedTo(ME),
    R.legal_advisor: Nothing(),
    R.supervisor: AssignedTo(ME),  # a supervisor gets no bundle of a case assigned to someone else
    R.council: Nothing(),
    R.admin: Nothing(),
}
REVIEW_VISIBILITY: dict[Role, policy.Visibility] = {
    r: (InReview() if r is R.legal_advisor else Nothing()) for r in Role
}
# Answer drafts and letters: the case's visibility, except for the legal advisor (what waits for review).
PART_VISIBILITY: dict[Role, policy.Visibility] = {**CONSULTATION_VISIBILITY, R.legal_advisor: InReview()}
SAMPLE_VISIBILITY: dict[Role, policy.Visibility] = {
    r: (All() if r in (R.council, R.supervisor) else Nothing()) for r in Role
}
AUDIT_VISIBILITY: dict[Role, policy.Visibility] = {
    r: (All() if r in (R.supervisor, R.admin) else Nothing()) for r in Role
}
VISIBILITIES: dict[str, tuple[Callable[[Actor], policy.Visibility], dict[Role, policy.Visibility]]] = {
    "consultation_visibility": (policy.consultation_visibility, CONSULTATION_VISIBILITY),
    "evidence_bundle_visibility": (policy.evidence_bundle_visibility, BUNDLE_VISIBILITY),
    "review_visibility": (policy.review_visibility, REVIEW_VISIBILITY),
    "answer_visibility": (policy.answer_visibility, PART_VISIBILITY),
    "letter_visibility": (policy.letter_visibility, PART_VISIBILITY),
    "evidence_visibility": (policy.evidence_visibility, CONSULTATION_VISIBILITY),
    "message_visibility": (policy.message_visibility, CONSULTATION_VISIBILITY),
    "referral_visibility": (policy.referral_visibility, CONSULTATION_VISIBILITY),
    "request_visibility": (policy.request_visibility, CONSULTATION_VISIBILITY),
    "sample_visibility": (policy.sample_visibility, SAMPLE_VISIBILITY),
    "audit_visibility": (policy.audit_visibility, AUDIT_VISIBILITY),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(VISIBILITIES))
def test_each_visibility_by_role(name: str, role: Role) -> None:
    visibility, expected = VISIBILITIES[name]
    assert visibility(person(role)) == expected[role]


@pytest.mark.parametrize("name", list(VISIBILITIES))
def test_a_service_client_sees_no_case(name: str) -> None:
    visibility, _ = VISIBILITIES[name]
    assert visibility(SERVICE) == Nothing()


@pytest.mark.parametrize("role", list(Role))
def test_only_staff_filter_the_queue(role: Role) -> None:
    assert policy.queue_filters_allowed(person(role)) is (role is not R.consulter)


def test_scopes_and_persons() -> None:
    assert refused(lambda: policy.ensure_scope(None, "triage:run")) is None  # anonymous: the route is public
    assert refused(lambda: policy.ensure_scope(person(R.consulter), "triage:run")) is None
    assert refused(lambda: policy.ensure_scope(SERVICE, "chart:read")) is None
    assert refused(lambda: policy.ensure_scope(SERVICE, "triage:run")) == "insufficient_scope"
    assert policy.ensure_person(person(R.admin)) == ME
    assert refused(lambda: policy.ensure_person(SERVICE)) == "person_required"


def test_every_refusal_code_is_in_the_catalogue() -> None:
    from infra.knowledge import load_problem_catalogue

    catalogue = load_problem_catalogue()
    codes = {"role_not_allowed", "not_assigned", "may_only_take_for_self", "originals_consulter_only"}
    codes |= {"insufficient_scope", "person_required"}
    assert {c: catalogue[c].status for c in codes} == dict.fromkeys(codes, 403)
    # the codes one refusal used to have under several names are gone
    assert {"admin_only", "staff_only", "consulter_only", "supervisor_only"} & set(catalogue) == set()


def test_a_chain_of_consultations_is_only_ever_one_persons() -> None:
    assert policy.chain_visibility(Case(None, owner_id=SOMEONE)) == OwnedBy(SOMEONE)


@pytest.mark.parametrize("role", list(Role))
def test_only_staff_see_which_staff_member_acted(role: Role) -> None:
    staff = role is not R.consulter
    assert policy.sees_staff_identities(person(role)) is staff
    assert policy.staff_identity(person(role), SOMEONE) == (SOMEONE if staff else None)


def test_a_service_client_sees_no_staff_identity() -> None:
    assert not policy.sees_staff_identities(SERVICE)
    assert policy.staff_identity(SERVICE, SOMEONE) is None
