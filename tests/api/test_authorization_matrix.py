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
from tests.api.consultation_helpers import intake, open_consultation
from tests.conftest import PASSWORD

# "owner" is the consulter who opened the consultation in the context; "consulter" is another one.
ACTORS = ["anonymous", "service", "owner", *[r.value for r in Role]]
STAFF = ["consultant", "legal_advisor", "supervisor", "council", "admin"]
PEOPLE = ["consulter", *STAFF]


def expect(default: int, **overrides: int) -> dict[str, int]:
    table = {actor: default for actor in ACTORS}
    for key, status in overrides.items():
        for actor in {"people": [*PEOPLE, "owner"], "staff": STAFF}.get(key, [key]):
            table[actor] = status
    if "owner" not in overrides and "consulter" in overrides:
        table["owner"] = overrides["consulter"]
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


def case_route(
    owner: int, consulter: int = 404, consultant: int = 200, supervisor: int = 200
) -> dict[str, int]:
    """A route on one consultation: outsiders 401/403, another consulter 404 (never a hint it exists)."""
    return expect(
        403, anonymous=401, owner=owner, consulter=consulter, consultant=consultant, supervisor=supervisor
    )


C = "/v1/consultations/{consultation_id}"
E = C + "/evidence/{evidence_id}"
TINY_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS"
    b"\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND"
    b"\xaeB`\x82"
)

MATRIX = [
    Row("GET", "/healthz", expect(200)),
    Row("GET", "/readyz", expect(200)),
    Row(
        "POST",
        "/v1/auth/register",
        expect(202),
        lambda ctx: {"json": {"email": f"new-{uuid.uuid4().hex[:6]}@example.jp", "password": PASSWORD}},
    ),
    Row("POST", "/v1/auth/verify-email", expect(422), lambda ctx: {"json": {"token": "t" * 43}}),
    Row(
        "POST",
        "/v1/auth/token",
        expect(401),
        lambda ctx: {"data": {"username": "nobody@example.jp", "password": "wrong-password"}},
    ),
    Row("POST", "/v1/auth/refresh", expect(401), lambda ctx: {"json": {"refresh_token": "r" * 43}}),
    Row(
        "POST", "/v1/auth/password-reset", expect(202), lambda ctx: {"json": {"email": "someone@example.jp"}}
    ),
    Row(
        "POST",
        "/v1/auth/password-reset/confirm",
        expect(422),
        lambda ctx: {"json": {"token": "t" * 43, "password": "冬の星座を数えながら帰った夜"}},
    ),
    Row("POST", "/v1/auth/logout", expect(204, anonymous=401)),
    Row("GET", "/v1/me", person_only(200)),
    Row("PATCH", "/v1/me", person_only(200), lambda ctx: {"json": {"display_name": "相談者"}}),
    Row(
        "POST",
        "/v1/me/password",
        person_only(204),
        lambda ctx: {"json": {"current_password": PASSWORD, "new_password": "夏の海で貝殻を拾った日のこと"}},
    ),
    Row("POST", "/v1/me/totp", expect(201, anonymous=401, service=403, consulter=403)),
    Row(
        "POST",
        "/v1/me/totp/confirm",
        expect(409, anonymous=401, service=403, consulter=403),
        lambda ctx: {"json": {"code": "123456"}},
    ),
    Row("GET", "/v1/users", admin_only(200)),
    Row(
        "POST",
        "/v1/users",
        admin_only(201),
        lambda ctx: {"json": {"email": f"staff-{uuid.uuid4().hex[:6]}@example.jp", "role": "consultant"}},
    ),
    Row("GET", "/v1/users/{user_id}", admin_only(200)),
    Row(
        "PATCH",
        "/v1/users/{user_id}",
        admin_only(200),
        lambda ctx: {"json": {"display_name": "鈴木"}, "headers": {"If-Match": '"v1"'}},
    ),
    Row("POST", "/v1/users/{user_id}/revoke-sessions", admin_only(204)),
    Row("GET", "/v1/categories", expect(200)),
    Row("GET", "/v1/intake-options", expect(200)),
    Row(
        "POST",
        "/v1/consultations",
        expect(403, anonymous=401, owner=201, consulter=201),
        lambda ctx: {"json": intake()},
    ),
    Row(
        "GET",
        "/v1/consultations",
        expect(403, anonymous=401, owner=200, consulter=200, consultant=200, supervisor=200),
    ),
    Row("GET", C, case_route(200)),
    Row(
        "PATCH",
        C,
        case_route(200, consultant=403),
        lambda ctx: {"json": {"title": "題名を変更"}, "headers": {"If-Match": '"v1"'}},
    ),
    Row(
        "POST",
        C + "/assign",
        case_route(403, consulter=403),
        lambda ctx: {"json": {"assignee_id": str(ctx["actor_id"])}, "headers": {"If-Match": '"v1"'}},
    ),
    Row(
        "POST",
        C + "/close",
        case_route(403, consultant=403, supervisor=409),
        lambda ctx: {"headers": {"If-Match": '"v1"'}},
    ),
    Row("POST", C + "/reopen", case_route(409, consultant=403, supervisor=409)),
    Row("POST", C + "/withdraw", case_route(200, consultant=403, supervisor=403)),
    Row("GET", C + "/history", case_route(200)),
    Row("GET", C + "/messages", case_route(200)),
    Row(
        "POST",
        C + "/messages",
        case_route(201, consultant=403, supervisor=422),
        lambda ctx: {"json": {"body": "追加の情報です"}},
    ),
    Row("GET", C + "/evidence", case_route(200)),
    Row(
        "POST",
        C + "/evidence",
        case_route(201, consultant=403, supervisor=201),
        lambda ctx: {"json": {"url": "https://x.com/a/status/2"}},
    ),
    Row("GET", E, case_route(200)),
    Row(
        "PUT",
        E + "/file",
        case_route(409, consultant=403, supervisor=409),
        lambda ctx: {"files": {"file": ("a.png", TINY_PNG, "image/png")}},
    ),
    Row("GET", E + "/file", case_route(200)),
    Row("GET", C + "/referrals", case_route(200)),
    Row(
        "POST",
        C + "/referrals",
        case_route(403, consultant=403, supervisor=201),
        lambda ctx: {"json": {"desk_code": "houterasu", "reason": "弁護士への相談をおすすめします"}},
    ),
    Row("POST", C + "/referrals/{referral_id}/{action}", case_route(200, consultant=403, supervisor=403)),
    Row("GET", "/v1/desks", expect(200)),
    Row(
        "POST",
        "/v1/desks",
        expect(403, anonymous=401, supervisor=201, admin=201),
        lambda ctx: {
            "json": {
                "code": f"desk_{uuid.uuid4().hex[:6]}",
                "name_ja": "窓口",
                "name_en": "Desk",
                "handles_ja": "相談",
                "handles_en": "Advice",
                "phone": "03-0000-0000",
                "kind": "legal",
            }
        },
    ),
    Row("GET", "/v1/desks/{code}", expect(200)),
    Row(
        "PATCH",
        "/v1/desks/{code}",
        expect(403, anonymous=401, supervisor=200, admin=200),
        lambda ctx: {"json": {"hours_ja": "平日"}, "headers": {"If-Match": '"v1"'}},
    ),
    Row("GET", "/v1/desks/{code}/versions", expect(403, anonymous=401, supervisor=200, admin=200)),
    Row("GET", "/v1/platforms", expect(200)),
    Row("GET", "/v1/guides", expect(200)),
    Row("GET", "/v1/guides/{slug}", expect(200)),
    Row("GET", "/v1/chart", expect(200)),
    Row("POST", "/v1/chart/walk", expect(200), lambda ctx: {"json": {"answers": ["danger_yes"]}}),
    Row("POST", "/v1/triage", expect(200), lambda ctx: {"json": {"text": "ネットに悪口を書かれました"}}),
]


def test_every_route_is_in_the_matrix(app) -> None:  # type: ignore[no-untyped-def]
    served = {(method, route.path) for route in api_routes(app) for method in route.methods}
    assert len(served) >= 51
    assert served == {(row.method, row.path) for row in MATRIX}
    for row in MATRIX:
        assert set(row.expected) == set(ACTORS)


async def headers_for(actor: str, people, container, ctx) -> dict[str, str]:  # type: ignore[no-untyped-def]
    if actor == "anonymous":
        return {}
    if actor == "owner":
        ctx["actor_id"] = ctx["owner"].id
        return ctx["owner"].headers  # type: ignore[no-any-return]
    if actor == "service":
        client_id = f"svc-{uuid.uuid4().hex[:6]}"
        _, secret = await container.accounts.add_service_client(
            client_id=client_id, name="integration", kind=Client.service, scopes=frozenset({"chart:read"})
        )
        pair = await container.accounts.login_client(client_id, secret, None, address=None)
        return {"Authorization": f"Bearer {pair.access_token}"}
    person = await people.create(Role(actor))
    ctx["actor_id"] = person.id
    return person.headers


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_matrix(row: Row, actor: str, client, people, container) -> None:  # type: ignore[no-untyped-def]
    target = await people.create(Role.consultant)
    owner = await people.create(Role.consulter)
    consultation = await open_consultation(client, owner)
    evidence = (
        await client.post(
            f"/v1/consultations/{consultation['id']}/evidence",
            headers=owner.headers,
            json={"url": "https://x.com/a/status/1"},
        )
    ).json()
    uploaded = await client.put(
        f"/v1/consultations/{consultation['id']}/evidence/{evidence['id']}/file",
        headers=owner.headers,
        files={"file": ("a.png", TINY_PNG, "image/png")},
    )
    assert uploaded.status_code == 200, uploaded.text
    supervisor = await people.create(Role.supervisor)
    referral = await client.post(
        f"/v1/consultations/{consultation['id']}/referrals",
        headers=supervisor.headers,
        json={"desk_code": "houterasu", "reason": "弁護士への相談をおすすめします"},
    )
    assert referral.status_code == 201, referral.text
    ctx = {
        "user_id": target.id,
        "owner": owner,
        "consultation_id": consultation["id"],
        "evidence_id": evidence["id"],
        "actor_id": target.id,
        "referral_id": referral.json()["id"],
        "action": "consent",
        "code": "police_110",
        "slug": "evidence-preservation",
    }
    auth = await headers_for(actor, people, container, ctx)
    request = row.request(ctx)
    headers = {**auth, **request.pop("headers", {})}
    path = row.path.format(**{k: v for k, v in ctx.items() if k != "owner"})
    response = await client.request(row.method, path, headers=headers, **request)
    assert response.status_code == row.expected[actor], (actor, response.text)
