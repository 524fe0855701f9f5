"""HTTP semantics front ends rely on: CORS preflights for every method the API serves, `Allow` on 405,
If-Match per RFC 9110, and bodies that are optional where no field is required."""

from __future__ import annotations

import re

import pytest

from api.main import api_routes
from domain.actors import Role
from tests.api.consultation_helpers import etag, open_consultation
from tests.conftest import assert_problem

ORIGIN = "https://mypage.example.jp"  # the allowlisted origin of the test settings


def _example_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "0b3e7c1a-5d2f-4e8b-9a6c-1f2e3d4c5b6a", template)


def _routes_by_method(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One concrete path per HTTP method the API serves."""
    found: dict[str, str] = {}
    for route in api_routes(app):
        for method in route.methods:
            found.setdefault(method, _example_path(route.path))
    return found


def test_the_api_uses_put_for_evidence_uploads(app) -> None:
    # The preflight test below is only as good as the set of methods it walks: PUT must be among them.
    assert {"GET", "POST", "PATCH", "PUT", "DELETE"} <= set(_routes_by_method(app))


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "PUT", "DELETE"])
async def test_a_preflight_is_allowed_for_every_method_the_api_uses(client, app, method: str) -> None:
    path = _routes_by_method(app)[method]
    response = await client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "Authorization, Content-Type, If-Match",
        },
    )
    assert response.status_code == 200, (path, response.text)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert method in allowed


async def test_evidence_upload_preflight_names_put(client) -> None:
    path = _example_path("/v1/consultations/{consultation_id}/evidence/{evidence_id}/file")
    response = await client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert response.status_code == 200, response.text
    assert "PUT" in response.headers["access-control-allow-methods"]


# -- 405 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("OPTIONS", "/v1/consultations", {"GET", "POST"}),
        ("PUT", "/v1/consultations", {"GET", "POST"}),
        ("DELETE", "/v1/auth/register", {"POST"}),
        ("TRACE", "/healthz", {"GET"}),
    ],
)
async def test_405_lists_every_method_the_path_supports(
    client, method: str, path: str, allow: set[str]
) -> None:
    response = await client.request(method, path)
    assert_problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allow


async def test_405_on_an_item_path_lists_its_methods(client) -> None:
    response = await client.put(_example_path("/v1/consultations/{consultation_id}"))
    assert_problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "PATCH"}


# -- If-Match ------------------------------------------------------------------------------------


async def test_if_match_star_matches_any_current_representation(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}"
    first = await client.patch(
        url, headers={**owner.headers, "If-Match": "*"}, json={"title": "誹謗中傷の件"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["title"] == "誹謗中傷の件" and first.headers["etag"] == '"v2"'
    # Still any current one after the version moved on.
    second = await client.patch(url, headers={**owner.headers, "If-Match": "*"}, json={"title": "続報あり"})
    assert second.status_code == 200 and second.headers["etag"] == '"v3"'


@pytest.mark.parametrize("value", ["v1", "'v1'", '"v1', "W/ v1", "**", '"v1" "v2"'])
async def test_a_malformed_if_match_is_a_bad_request_not_a_stale_one(client, people, value: str) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}"
    response = await client.patch(url, headers={**owner.headers, "If-Match": value}, json={"title": "件名"})
    body = assert_problem(response, 400, "if_match_malformed")
    assert body.get("field") == "If-Match"
    assert (await client.get(url, headers=owner.headers)).json()["version"] == 1


async def test_a_well_formed_foreign_or_weak_tag_is_stale(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}"
    for value in ('"v2"', 'W/"v1"', '"abc"'):
        response = await client.patch(
            url, headers={**owner.headers, "If-Match": value}, json={"title": "件名"}
        )
        assert_problem(response, 412, "stale_version")


async def test_if_match_star_on_a_staff_action(client, people) -> None:
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    c = await open_consultation(client, owner)
    assert (await etag(client, supervisor, c["id"])) == '"v1"'
    response = await client.post(
        f"/v1/consultations/{c['id']}/assign",
        headers={**supervisor.headers, "If-Match": "*"},
        json={"assignee_id": str(supervisor.id)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["assignee_id"] == str(supervisor.id)


async def test_405_on_a_development_link_page_names_get(client) -> None:
    response = await client.post("/verify-email")
    assert_problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET"}
