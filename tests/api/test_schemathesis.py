"""Property-based run over every operation of the served schema, as an admin and as the two roles that see case
content: a consulter with a consultation of their own, and the consultant who took it (generated consultation
ids are replaced by that real one, so the case routes are reached, not only their 404). Every check
schemathesis has for a single response must pass: no 5xx, and status, headers, content type and body as the
contract documents them; invalid input refused, valid input accepted, required headers and auth enforced.

Each generated request is sent as each of the three callers in turn: generating the cases costs more than
sending them, so it is done once per operation, not once per caller. The operations are split into four
groups (four tests) so that the suite's processes share them."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from domain.actors import Role
from tests.api.consultation_helpers import intake
from tests.conftest import PASSWORD
from tests.contract_recorder import ResponseRecorder

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.missing_required_header,
    schemathesis.checks.ignored_auth,
]


@pytest.fixture(scope="module")
def fuzz_app(settings):  # type: ignore[no-untyped-def]
    from api.main import create_app

    # Schemathesis calls the app on one event loop of its own (a portal thread shared by every call), so the
    # app keeps its connection pool; the lifespan that closes the container ends with each test.
    # Every request is sent three times (once per caller) within one pinned minute: the rate limits are raised
    # so that requests reach the checks the fuzzing is for (the limits have tests of their own).
    return create_app(settings.model_copy(update=RAISED_LIMITS))


RAISED_LIMITS = {
    name: 100_000
    for name in (
        "signup_per_hour",
        "triage_per_minute",
        "consultations_per_hour",
        "consulter_messages_per_hour",
        "chatbot_sessions_per_hour",
        "chatbot_turns_per_minute",
    )
}


@pytest.fixture
def api_schema(fuzz_app, container):  # type: ignore[no-untyped-def]
    # Responses are recorded like the client fixture's, so api/responses.json learns what fuzzing reaches.
    return schemathesis.openapi.from_asgi("/openapi.json", ResponseRecorder(fuzz_app, examples=False))


@dataclass
class Caller:
    """Who calls: a bearer token, the consultation of their own (the consulter's, or the one the consultant
    took), and spare sessions of the same person for the operations that end the session they are called with."""

    role: Role
    token: str
    consultation: str | None
    spare_sessions: list[str] = field(default_factory=list)

    def token_for(self, label: str) -> str:
        if label not in SESSION_ENDING:
            return self.token
        if not self.spare_sessions:
            pytest.fail(f"{label} was generated more often than SPARE_SESSIONS: raise it")
        return self.spare_sessions.pop()


# Signing out ends the session it is called with: called with the caller's own token, every operation
# generated after it would only meet 401. Each call of it spends one spare session instead.
SESSION_ENDING = {"POST /v1/auth/logout"}
SPARE_SESSIONS = 12


def caller(fuzz_app, role: Role) -> Caller:  # type: ignore[no-untyped-def]
    accounts = fuzz_app.state.container.accounts

    async def sign_in(who: Role, spares: int = 0) -> tuple[str, list[str]]:
        email = f"fuzz-{who.value}-{uuid.uuid4().hex[:6]}@example.jp"
        await accounts.create_user_directly(email=email, role=who, password=PASSWORD)
        tokens = [
            (await accounts.login(email, PASSWORD, totp_code=None, address=None)).access_token
            for _ in range(1 + spares)
        ]
        return tokens[0], tokens[1:]

    async def prepare() -> Caller:
        token, spare_sessions = await sign_in(role, SPARE_SESSIONS)
        if role is Role.admin:
            return Caller(role, token, None, spare_sessions)
        consulter = token if role is Role.consulter else (await sign_in(Role.consulter))[0]
        transport = httpx.ASGITransport(app=fuzz_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            made = await http.post(
                "/v1/consultations", headers={"Authorization": f"Bearer {consulter}"}, json=intake()
            )
            consultation = made.json()["id"]
            if role is Role.consultant:
                me = (await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
                await http.post(
                    f"/v1/consultations/{consultation}/assign",
                    headers={"Authorization": f"Bearer {token}", "If-Match": made.headers["etag"]},
                    json={"assignee_id": me["id"]},
                )
        return Caller(role, token, consultation, spare_sessions)

    async def prepare_then_release() -> Caller:
        try:
            return await prepare()
        finally:
            # Pooled connections belong to this loop; the app's calls open their own on schemathesis' loop.
            await fuzz_app.state.container.engine.dispose()

    return asyncio.run(prepare_then_release())


# Operations whose schema-valid input is refused by a rule the schema cannot express, so positive data
# acceptance does not apply to them (every other check does): a password must not be a common one, a mailed
# token or TOTP code must be one the server issued, the current password must be right, a rule that depends
# on who calls or on another field.
DOMAIN_REFUSALS = {
    "POST /v1/auth/register": "the password policy refuses common passwords",
    "POST /v1/auth/verify-email": "the token must be one the server mailed",
    "POST /v1/auth/password-reset/confirm": "the token must be one the server mailed",
    "POST /v1/auth/email-change/confirm": "the token must be one the server mailed",
    "POST /v1/me/email": "e-mail rules (e.g. no special-use domains) are stricter than format: email",
    "POST /v1/me/password": "the current password must be right",
    "POST /v1/me/totp/confirm": "the code must come from the enrolled secret",
    "POST /v1/auth/token": "the credentials must be right",
    "POST /v1/auth/password-reset": "e-mail rules (e.g. no special-use domains) are stricter than format: email",
    # Only a consent to share with a referral names the referral or the desk; the schema lets every purpose
    # carry them.
    "POST /v1/me/consents": "a referral or desk goes only with a referral's consent",
    "POST /v1/me/consents/withdrawals": "a referral or desk goes only with a referral's consent",
    "POST /v1/consultations/{consultation_id}/messages": "a consulter writes messages; staff say which kind",
    "POST /v1/chart/walk": "the answers must follow the chart's questions, one of each question's options",
    "POST /v1/chatbot/drafts/claim": "the claim token must be one the chatbot issued",
    "POST /v1/letter-reviews/{letter_id}": "returning a letter needs advice for the person",
    "PATCH /v1/consultations/{consultation_id}": "a consulter changes their account, staff priority and categories",
    "POST /v1/consultations/{consultation_id}/evidence": "image hashes below the configured PDQ quality are refused",
    "POST /v1/consultations/{consultation_id}/requests": "a request names its recipient: a platform from the reference data, or a host or provider",
    "GET /v1/consultations": "a consulter has no staff filters (assignee, priority, channel, overdue …)",
    "POST /v1/desks": "a desk's texts are not only blanks",
    "POST /v1/users": "an administrator creates staff accounts only: consulters register themselves",
}
# Refusals of a schema-valid value, whatever the operation, that names something only the server knows
# (generated values cannot be ones it issued or lists) or breaks a rule a schema cannot express.
REFUSALS_BEYOND_THE_SCHEMA = {
    "unknown_evidence": "evidence ids must name evidence of this consultation",
    "date_in_future": "a day something happened is not after today",
    "consent_required": "intake needs both consents given (true), which the booleans let be false",
    "terms_outdated": "the terms version agreed to must be the one in force",
    # Generated keys repeat ("00000000" ...): the same key with another body is refused.
    "idempotency_key_reused": "a key sent again must come with the same body",
    "invalid_cursor": "a cursor must be one the server gave in next_cursor",
    "unknown_code": "a code must name an entry of the reference data or of the desk directory",
    "stale_version": "an If-Match must name the version the object is at (412)",
}
schema = schemathesis.pytest.from_fixture("api_schema")
EXAMPLES = settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def problem_code(response) -> str | None:  # type: ignore[no-untyped-def]
    """The `code` of an RFC 9457 problem body, if the response carries one."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def without(checks: list[Any], check: object) -> list[Any]:
    """The checks but one: where that check's rule does not apply to this operation or response."""
    return [c for c in checks if c is not check]


def call_as_each(case, callers: tuple[Caller, ...]) -> None:  # type: ignore[no-untyped-def]
    """The generated request, sent as each caller in turn. The admin goes first, with the generated ids; the
    callers with a consultation of their own then put its id in the path (`call`). The case's parameters are
    otherwise left as generated: setting them anew makes schemathesis revalidate the case, and a
    percent-encoded negative value then passes for a positive one."""
    for caller in callers:
        try:
            call(case, caller)
        except BaseException as failure:
            failure.add_note(f"sent as the {caller.role.value}")
            raise


def call(case, caller: Caller) -> None:  # type: ignore[no-untyped-def]
    if caller.consultation and case.path_parameters and "consultation_id" in case.path_parameters:
        case.path_parameters["consultation_id"] = caller.consultation
    checks = CHECKS
    if case.operation.label in DOMAIN_REFUSALS:
        checks = without(CHECKS, schemathesis.checks.positive_data_acceptance)
    token = caller.token_for(case.operation.label)
    headers = {"Authorization": f"Bearer {token}"}
    response = case.call(headers=headers)
    code = problem_code(response)
    if token == caller.token and response.status_code == 401 and code == "invalid_token":
        pytest.fail(
            f"{case.operation.label} ended the caller's session: every later call would only meet 401"
        )
    if code in REFUSALS_BEYOND_THE_SCHEMA:
        checks = without(checks, schemathesis.checks.positive_data_acceptance)
    if response.status_code == 428 and code == "if_match_required":
        # A change without If-Match is refused with 428 Precondition Required (RFC 6585 §3), the status made
        # for it, which is not in missing-header's list (400, 401, 403, 406, 415, 422).
        checks = without(checks, schemathesis.checks.missing_required_header)
    if response.status_code == 413:
        # A body over the size limit is refused before it is read: a rejection of invalid data like any
        # other, though not in negative-data rejection's list of statuses.
        checks = without(checks, schemathesis.checks.negative_data_rejection)
    case.validate_response(response, checks=checks, headers=headers)


@pytest.fixture
def admin(fuzz_app, container) -> Caller:  # type: ignore[no-untyped-def]
    return caller(fuzz_app, Role.admin)


@pytest.fixture
def consulter(fuzz_app, container) -> Caller:  # type: ignore[no-untyped-def]
    return caller(fuzz_app, Role.consulter)


@pytest.fixture
def consultant(fuzz_app, container) -> Caller:  # type: ignore[no-untyped-def]
    return caller(fuzz_app, Role.consultant)


# The four groups of operations, each about a quarter of the work: what a case holds (evidence, letters,
# requests, legal holds), the rest of a case, accounts and sessions, and everything else (staff tools, council,
# reference data). Each group is what the ones before it leave, so every operation is in exactly one.
CASE_RECORDS = r"^/v1/(consultations/[^/]+/(evidence|letters|requests|legal-hold)|letter-reviews)"
CASES = r"^/v1/consultations"
ACCOUNTS = r"^/v1/(auth|me|users|line|chatbot)"
case_records = schema.include(path_regex=CASE_RECORDS)
cases = schema.include(path_regex=CASES).exclude(path_regex=CASE_RECORDS)
accounts = schema.include(path_regex=ACCOUNTS)
everything_else = schema.exclude(path_regex=f"{CASES}|{ACCOUNTS}|{CASE_RECORDS}")


@case_records.parametrize()
@EXAMPLES
def test_what_a_case_holds(case, admin, consulter, consultant) -> None:  # type: ignore[no-untyped-def]
    call_as_each(case, (admin, consulter, consultant))


@cases.parametrize()
@EXAMPLES
def test_the_rest_of_a_case(case, admin, consulter, consultant) -> None:  # type: ignore[no-untyped-def]
    call_as_each(case, (admin, consulter, consultant))


@accounts.parametrize()
@EXAMPLES
def test_accounts_and_sessions(case, admin, consulter, consultant) -> None:  # type: ignore[no-untyped-def]
    call_as_each(case, (admin, consulter, consultant))


@everything_else.parametrize()
@EXAMPLES
def test_staff_tools_council_and_reference_data(case, admin, consulter, consultant) -> None:  # type: ignore[no-untyped-def]
    call_as_each(case, (admin, consulter, consultant))
