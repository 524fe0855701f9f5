"""The authorization matrix: every route × every kind of caller, as data. A route missing here fails the
meta-test, so no endpoint ships without a reviewed row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from api.main import api_routes
from domain.actors import Client, Role
from tests.conftest import PASSWORD

ACTORS = ["anonymous", "service", *[r.value for r in Role]]
STAFF = ["consultant", "legal_advisor", "supervisor", "council", "admin"]
PEOPLE = ["consulter", *STAFF]


def expect(default: int, **overrides: int) -> dict[str, int]:
    table = {actor: default for actor in ACTORS}
    for key, status in overrides.items():
        for actor in {"people": PEOPLE, "staff": STAFF}.get(key, [key]):
            table[actor] = status
    return table


@dataclass
class Row:
    method: str
    path: str
    expected: dict[str, int]
    request: Callable[[dict[str, Any]], dict[str, Any]] = lambda ctx: {}


def person_only(ok: int) -> dict[str, int]:
    return expect(ok, anonymous=401, service=403)


def admin_only(ok: int) -> dict[str, int]:
    return expect(403, anonymous=401, admin=ok)


MATRIX = [
    Row("GET", "/healthz", expect(200)),
    Row("GET", "/readyz", expect(200)),
    Row("POST", "/v1/auth/register", expect(202),
        lambda ctx: {"json": {"email": f"new-{uuid.uuid4().hex[:6]}@example.jp", "password": PASSWORD}}),
    Row("POST", "/v1/auth/verify-email", expect(422), lambda ctx: {"json": {"token": "t" * 43}}),
    Row("POST", "/v1/auth/token", expect(401),
        lambda ctx: {"data": {"username": "nobody@example.jp", "password": "wrong-password"}}),
    Row("POST", "/v1/auth/refresh", expect(401), lambda ctx: {"json": {"refresh_token": "r" * 43}}),
    Row("POST", "/v1/auth/logout", expect(204, anonymous=401)),
    Row("GET", "/v1/me", person_only(200)),
    Row("PATCH", "/v1/me", person_only(200), lambda ctx: {"json": {"display_name": "相談者"}}),
    Row("POST", "/v1/me/password", person_only(204),
        lambda ctx: {"json": {"current_password": PASSWORD, "new_password": "夏の海で貝殻を拾った日のこと"}}),
    Row("POST", "/v1/me/totp", expect(201, anonymous=401, service=403, consulter=403)),
    Row("POST", "/v1/me/totp/confirm", expect(409, anonymous=401, service=403, consulter=403),
        lambda ctx: {"json": {"code": "123456"}}),
    Row("GET", "/v1/users", admin_only(200)),
    Row("POST", "/v1/users", admin_only(201),
        lambda ctx: {"json": {"email": f"staff-{uuid.uuid4().hex[:6]}@example.jp", "role": "consultant"}}),
    Row("GET", "/v1/users/{user_id}", admin_only(200)),
    Row("PATCH", "/v1/users/{user_id}", admin_only(200),
        lambda ctx: {"json": {"display_name": "鈴木"}, "headers": {"If-Match": '"v1"'}}),
    Row("POST", "/v1/users/{user_id}/revoke-sessions", admin_only(204)),
]


def test_every_route_is_in_the_matrix(app) -> None:  # type: ignore[no-untyped-def]
    served = {(method, route.path) for route in api_routes(app) for method in route.methods}
    assert len(served) >= 17
    assert served == {(row.method, row.path) for row in MATRIX}
    for row in MATRIX:
        assert set(row.expected) == set(ACTORS)


async def headers_for(actor: str, people, container) -> dict[str, str]:  # type: ignore[no-untyped-def]
    if actor == "anonymous":
        return {}
    if actor == "service":
        client_id = f"svc-{uuid.uuid4().hex[:6]}"
        _, secret = await container.accounts.add_service_client(
            client_id=client_id, name="integration", kind=Client.service, scopes=frozenset({"chart:read"})
        )
        pair = await container.accounts.login_client(client_id, secret, None, address=None)
        return {"Authorization": f"Bearer {pair.access_token}"}
    return (await people.create(Role(actor))).headers


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_matrix(row: Row, actor: str, client, people, container) -> None:  # type: ignore[no-untyped-def]
    target = await people.create(Role.consultant)
    ctx = {"user_id": target.id}
    request = row.request(ctx)
    headers = {**(await headers_for(actor, people, container)), **request.pop("headers", {})}
    response = await client.request(row.method, row.path.format(**ctx), headers=headers, **request)
    assert response.status_code == row.expected[actor], (actor, response.text)
