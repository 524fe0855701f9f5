"""Property-based run over every operation of the served schema, as an admin and as the two roles that see case
content: a consulter with a consultation of their own, and the consultant who took it (generated consultation
ids are replaced by that real one, so the case routes are reached, not only their 404). Every check
schemathesis has for a single response must pass: no 5xx, and status, headers, content type and body as the
contract documents them; invalid input refused, valid input accepted, required headers and auth enforced."""

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
    return create_app(settings)


@pytest.fixture
def api_schema(fuzz_app, container):  # type: ignore[no-untyped-def]
    # Responses are recorded like the client fixture's, so api/responses.json learns what fuzzing reaches.
    return schemathesis.openapi.from_asgi("/openapi.json", ResponseRecorder(fuzz_app, examples=False))


@dataclass
class Caller:
    """Who calls: a bearer token, the consultation of their own (the consulter's, or the one the consultant
    took), and spare sessions of the same person for the operations that end the session they are called with."""

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
            return Caller(token, None, spare_sessions)
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
        return Caller(token, consultation, spare_sessions)

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
    "PUT /v1/consultations/{consultation_id}/clock-facts": "a day the person learnt something is not in the future",
    "POST /v1/desks": "a desk's texts are not only blanks",
    "POST /v1/users": "an administrator creates staff accounts only: consulters register themselves",
}
# Refusals of a schema-valid value that names something only the server knows, whatever the operation:
# generated values cannot be ones it issued or lists.
REFUSED_BY_SERVER_STATE = {
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
    if code in REFUSED_BY_SERVER_STATE:
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


@schema.parametrize()
@EXAMPLES
def test_as_an_admin(case, admin) -> None:  # type: ignore[no-untyped-def]
    call(case, admin)


@schema.parametrize()
@EXAMPLES
def test_as_a_consulter_with_a_case(case, consulter) -> None:  # type: ignore[no-untyped-def]
    call(case, consulter)


@schema.parametrize()
@EXAMPLES
def test_as_the_consultant_of_that_case(case, consultant) -> None:  # type: ignore[no-untyped-def]
    call(case, consultant)
