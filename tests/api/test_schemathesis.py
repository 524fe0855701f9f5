"""Property-based run over every operation of the served schema: no 5xx, and every response matches the
schema and the documented content types. Runs against the ASGI app, signed in as an admin (the widest role)."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from domain.actors import Role
from tests.conftest import PASSWORD

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
]


@pytest.fixture(scope="module")
def fuzz_app(settings):  # type: ignore[no-untyped-def]
    from api.main import create_app

    # Each call runs in its own event loop, so pooled connections (bound to a loop) must not be reused.
    return create_app(settings.model_copy(update={"database_pool": False}))


@pytest.fixture
def api_schema(fuzz_app, container):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


@pytest.fixture
def admin_token(fuzz_app) -> str:  # type: ignore[no-untyped-def]
    accounts = fuzz_app.state.container.accounts

    async def sign_in() -> str:
        try:
            await accounts.create_user_directly(
                email="fuzz-admin@example.jp", role=Role.admin, password=PASSWORD
            )
        except Exception:  # noqa: BLE001 - already there from an earlier example
            pass
        pair = await accounts.login("fuzz-admin@example.jp", PASSWORD, totp_code=None, address=None)
        return pair.access_token

    return asyncio.run(sign_in())


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_survives_generated_input(case, admin_token: str) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)
