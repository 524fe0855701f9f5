"""Issue 13 item 2: a NUL byte (or any control character) in any string a request carries is a 422 problem
naming the field, never a 500 from the database. The cases are read from the app's own OpenAPI document, so a
new field or parameter is covered the day it is added."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from domain.actors import Client, Role
from tests.api.test_authorization_matrix import MATRIX
from tests.conftest import assert_problem

NUL = "\x00"
METHODS = ("get", "post", "put", "patch", "delete")
# Who asks: the first caller the authorization matrix lets through, so the request reaches validation.
PREFERENCE = [
    "anonymous",
    "owner",
    "consulter",
    *[r.value for r in Role if r is not Role.consulter],
    "service",
]


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    where: str  # query, path, body (JSON) or form
    loc: tuple[str | int, ...]  # inside the body for body/form, else the parameter name

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.where}:{'.'.join(map(str, self.loc))}"


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _strings(schema: dict[str, Any], spec: dict[str, Any], at: tuple[str | int, ...]) -> Iterator[tuple]:  # type: ignore[type-arg]
    """Every place in a schema that takes free text (enums, constants, dates, ids and files excluded)."""
    schema = _resolve(schema, spec)
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from _strings(option, spec, at)
    kind = schema.get("type")
    if kind == "string":
        fixed = "enum" in schema or "const" in schema or "contentMediaType" in schema  # choices and files
        if not fixed and schema.get("format") not in ("uuid", "date-time", "date", "binary"):
            yield at
    elif kind == "array" and "items" in schema:
        yield from _strings(schema["items"], spec, (*at, 0))
    elif kind == "object":
        for name, sub in schema.get("properties", {}).items():
            yield from _strings(sub, spec, (*at, name))


def cases(spec: dict[str, Any]) -> list[Case]:
    found: list[Case] = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            for parameter in operation.get("parameters", []):
                in_url = parameter["in"] in ("query", "path")
                if in_url and next(_strings(parameter["schema"], spec, ()), None) is not None:
                    found.append(Case(method, path, parameter["in"], (parameter["name"],)))
            content = operation.get("requestBody", {}).get("content", {})
            for media, where in (
                ("application/json", "body"),
                ("application/x-www-form-urlencoded", "form"),
                ("multipart/form-data", "form"),
            ):
                if media in content:
                    for at in dict.fromkeys(_strings(content[media]["schema"], spec, ())):
                        found.append(Case(method, path, where, at))
    return found


def _nest(at: tuple[str | int, ...], value: object) -> object:
    if not at:
        return value
    head, rest = at[0], at[1:]
    return [_nest(rest, value)] if isinstance(head, int) else {head: _nest(rest, value)}


def request_for(case: Case, spec: dict[str, Any], value: str) -> dict[str, Any]:
    operation = spec["paths"][case.path][case.method]
    url = case.path
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "path":
            continue
        name = parameter["name"]
        if case.where == "path" and case.loc == (name,):
            filler = value.replace(NUL, "%00")
        elif _resolve(parameter["schema"], spec).get("format") == "uuid":
            filler = str(uuid.uuid4())
        else:
            filler = "x"
        url = url.replace("{" + name + "}", filler)
    request: dict[str, Any] = {"method": case.method.upper(), "url": url}
    if case.where == "query":
        request["params"] = {case.loc[0]: value}
    elif case.where == "body":
        request["json"] = _nest(case.loc, value)
    elif case.where == "form":
        request["data"] = {case.loc[0]: value}
    return request


def caller_for(case: Case) -> str:
    row = next(r for r in MATRIX if r.method == case.method.upper() and r.path == case.path)
    # The token endpoints answer 401 to every caller of the matrix for a wrong credential: anyone may ask.
    return next((a for a in PREFERENCE if row.expected[a] not in (401, 403)), "anonymous")


async def callers(people, container) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    consulter = await people.create(Role.consulter)
    headers["owner"] = headers["consulter"] = consulter.headers
    for role in Role:
        if role is not Role.consulter:
            headers[role.value] = (await people.create(role)).headers
    _, secret = await container.accounts.add_service_client(
        client_id="svc-text", name="text", kind=Client.service, scopes=frozenset({"chart:read"})
    )
    pair = await container.accounts.login_client("svc-text", secret, None, address=None)
    headers["service"] = {"Authorization": f"Bearer {pair.access_token}"}
    return headers


def _loc(case: Case) -> list[str]:
    return [case.where if case.where != "form" else "body", *map(str, case.loc)]


async def test_a_nul_in_any_string_of_any_operation_is_a_422_naming_the_field(
    app, client, people, container
) -> None:  # type: ignore[no-untyped-def]
    spec = app.openapi()
    every = cases(spec)
    # The anonymous front doors of the report, the authenticated ones and a path parameter are all there.
    names = {str(c) for c in every}
    for expected in (
        "POST /v1/auth/token form:username",
        "POST /v1/auth/register body:display_name",
        "POST /v1/consultations/{consultation_id}/messages body:body",
        "POST /v1/consultations/{consultation_id}/evidence body:notes",
        "POST /v1/consultations/{consultation_id}/evidence body:url",
        "POST /v1/consultations/{consultation_id}/answers body:body",
        "PATCH /v1/me body:display_name",
        "GET /v1/consultations query:category",
        "GET /v1/desks/{code} path:code",
        "POST /v1/consultations body:consent.terms_version",
        "POST /v1/consultations body:categories.0",
    ):
        assert expected in names
    assert len(every) >= 100
    who = await callers(people, container)
    failures = []
    for case in every:
        response = await client.request(
            headers=who[caller_for(case)], **request_for(case, spec, "ab" + NUL + "cd")
        )
        errors = response.json().get("errors") or [] if response.status_code == 422 else []
        named = [e for e in errors if e["loc"] == _loc(case)]
        if response.status_code != 422 or [e["type"] for e in named] != ["bad_character"]:
            failures.append(f"{case}: {response.status_code} {named or response.text[:200]}")
    assert failures == []


@pytest.mark.parametrize(
    "character",
    ["\x00", "\x1b", "\x7f", "\x85", "\ud800", "\t", "\n", "\r", "\u2028"],
    ids=["NUL", "ESC", "DEL", "NEL", "lone-surrogate", "tab", "LF", "CR", "line-separator"],
)
async def test_a_one_line_field_refuses_control_characters_and_line_breaks(client, character) -> None:  # type: ignore[no-untyped-def]
    body = {
        "email": "hanako@example.jp",
        "password": "桜の花が咲く頃に会いましょう",
        "display_name": f"花{character}子",
    }
    # ASCII-escaped JSON, as a client may send it: "\ud800" is valid JSON that no UTF-8 column can hold.
    response = await client.post(
        "/v1/auth/register", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert {
        "loc": ["body", "display_name"],
        "type": "bad_character",
        "msg": body["errors"][0]["msg"],
    } in body["errors"]
    assert character not in response.text and "花" not in response.text  # nothing of the input is echoed


async def test_anonymous_sign_in_with_a_nul_is_a_422_not_a_500(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/v1/auth/token", data={"username": "a\x00@example.jp", "password": "x" * 12}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [
        {
            "loc": ["body", "username"],
            "type": "bad_character",
            "msg": "制御文字は使えません",  # Japanese unless Accept-Language prefers English
        }
    ]


async def test_a_multi_line_field_keeps_tabs_and_line_breaks_but_refuses_nul(client, people) -> None:  # type: ignore[no-untyped-def]
    from tests.api.consultation_helpers import open_consultation

    consulter = await people.create()
    case = await open_consultation(client, consulter)
    url = f"/v1/consultations/{case['id']}/messages"
    refused = await client.post(url, headers=consulter.headers, json={"body": "続報です\x00。"})
    assert assert_problem(refused, 422)["errors"][0] == {
        "loc": ["body", "body"],
        "type": "bad_character",
        "msg": "制御文字は使えません",  # Japanese unless Accept-Language prefers English
    }
    written = "続報です。\r\n\t一、削除されました。\r二、別のアカウントが現れました。"
    accepted = await client.post(url, headers=consulter.headers, json={"body": written})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["body"] == "続報です。\n\t一、削除されました。\n二、別のアカウントが現れました。"
