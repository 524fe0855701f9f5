"""Property-based run over every operation of the served schema, as an admin and as the two roles that see case
content: a consulter with a consultation of their own, and the consultant who took it (generated consultation
ids are replaced by that real one, so the case routes are reached, not only their 404). Every check
schemathesis has for a single response must pass: no 5xx, and status, headers, content type and body as the
contract documents them; invalid input refused, valid input accepted, required headers and auth enforced."""

from __future__ import annotations

import asyncio
import uuid

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


def caller(fuzz_app, role: Role) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    """A bearer token for the role and, for the consulter and the consultant, their consultation's id."""
    accounts = fuzz_app.state.container.accounts

    async def sign_in(who: Role) -> str:
        email = f"fuzz-{who.value}-{uuid.uuid4().hex[:6]}@example.jp"
        await accounts.create_user_directly(email=email, role=who, password=PASSWORD)
        pair = await accounts.login(email, PASSWORD, totp_code=None, address=None)
        return pair.access_token

    async def prepare() -> tuple[str, str | None]:
        token = await sign_in(role)
        if role is Role.admin:
            return token, None
        consulter = token if role is Role.consulter else await sign_in(Role.consulter)
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
        return token, consultation

    async def prepare_then_release() -> tuple[str, str | None]:
        try:
            return await prepare()
        finally:
            # Pooled connections belong to this loop; the app's calls open their own on schemathesis' loop.
            await fuzz_app.state.container.engine.dispose()

    return asyncio.run(prepare_then_release())


# Operations whose schema-valid input is refused by a rule the schema cannot express, so positive data
# acceptance does not apply to them (every other check does): a password must not be a common one, a mailed
# token or TOTP code must be one the server issued, the current password must be right.
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
}
schema = schemathesis.pytest.from_fixture("api_schema")
EXAMPLES = settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def call(case, caller: tuple[str, str | None]) -> None:  # type: ignore[no-untyped-def]
    token, consultation = caller
    if consultation and case.path_parameters and "consultation_id" in case.path_parameters:
        case.path_parameters["consultation_id"] = consultation
    checks = CHECKS
    if case.operation.label in DOMAIN_REFUSALS:
        checks = [c for c in CHECKS if c is not schemathesis.checks.positive_data_acceptance]
    headers = {"Authorization": f"Bearer {token}"}
    response = case.call(headers=headers)
    if response.status_code == 422 and response.json().get("code") == "idempotency_key_reused":
        # Generated keys repeat ("00000000" ...): the same key with another body is refused, a rule over
        # earlier requests that no schema can say.
        checks = [c for c in checks if c is not schemathesis.checks.positive_data_acceptance]
    if response.status_code == 413:
        # A body over the size limit is refused before it is read: a rejection of invalid data like any
        # other, though not in negative-data rejection's list of statuses.
        checks = [c for c in checks if c is not schemathesis.checks.negative_data_rejection]
    case.validate_response(response, checks=checks, headers=headers)


@pytest.fixture
def admin(fuzz_app, container) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    return caller(fuzz_app, Role.admin)


@pytest.fixture
def consulter(fuzz_app, container) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    return caller(fuzz_app, Role.consulter)


@pytest.fixture
def consultant(fuzz_app, container) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
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
