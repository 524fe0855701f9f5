"""openapi/openapi.json is the contract three front-end teams code against: it must equal what is served."""

from __future__ import annotations

import json
import os
from pathlib import Path

from api.openapi import render_openapi
from tests import contract_recorder as recorder

CONTRACT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_contract_matches_the_code() -> None:
    assert CONTRACT.read_text(encoding="utf-8") == render_openapi(), (
        "openapi/openapi.json is stale: run `.venv/bin/python -m api.openapi` and review the diff"
    )


async def test_served_schema_is_the_contract(client) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads(CONTRACT.read_text(encoding="utf-8"))


def test_every_operation_has_a_stable_id_and_documents_errors() -> None:
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    ids = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert "_" in operation["operationId"] and " " not in operation["operationId"], (method, path)
            errors = [s for s in operation["responses"] if s.startswith(("4", "5"))]
            if path.startswith("/v1/") and any("OAuth2" in s for s in operation.get("security", [])):
                assert "401" in errors, f"{method} {path} does not document 401"
            for status in errors:
                assert "application/problem+json" in operation["responses"][status]["content"], (
                    method,
                    path,
                    status,
                )
    assert len(ids) == len(set(ids))


def test_both_oauth2_flows_are_declared() -> None:
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    flows = schema["components"]["securitySchemes"]["OAuth2"]["flows"]
    assert flows["password"]["tokenUrl"] == "/v1/auth/token"
    assert flows["clientCredentials"]["tokenUrl"] == "/v1/auth/token"


def test_request_bodies_carry_examples() -> None:
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    components = schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                name = body["schema"]["$ref"].rsplit("/", 1)[1]
                assert components[name].get("examples"), f"{method} {path}: {name} has no example"


async def test_a_map_keyed_by_codes_says_its_keys_are_codes(client, people) -> None:
    """`patternProperties` would let any other key through: the contract says the key pattern as
    `propertyNames`, as the server enforces it."""
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    assert "patternProperties" not in json.dumps(schema)
    texts = schema["components"]["schemas"]["LetterIn"]["properties"]["texts"]
    assert texts["propertyNames"]["pattern"] == "^[A-Za-z0-9_.-]+$"
    assert texts["additionalProperties"]["type"] == "string"
    from tests.api.consultation_helpers import open_consultation

    owner = await people.create()
    c = await open_consultation(client, owner)
    refused = await client.post(
        f"/v1/consultations/{c['id']}/letters",
        headers=owner.headers,
        json={
            "kind": "removal_defamation_privacy",
            "recipient": "〇〇株式会社 御中",
            "evidence_ids": [c["id"]],
            "texts": {"理由": "社会的評価が低下します"},
        },
    )
    assert refused.status_code == 422
    assert ["body", "texts", "理由", "[key]"] in [e["loc"] for e in refused.json()["errors"]]


async def test_docs_render(client) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200 and "swagger-ui" in response.text.lower()


def test_every_response_seen_is_in_the_contract() -> None:
    """Runs last: every status, problem code, ETag and Location that any test of this run received through
    the client is documented for its operation (so the contract lists what the server really answers). With
    several processes (pytest-xdist) it checks what its own process saw, and tests/conftest.py checks the
    union of every process's at the end of the run."""
    if os.environ.get("MADOGUCHI_TEST_RECORD_RESPONSES") == "1":
        return  # this run is rewriting api/responses.json; the next run checks it
    missing = recorder.undocumented(recorder.as_document(), json.loads(CONTRACT.read_text(encoding="utf-8")))
    assert not missing, (
        "not in the contract (record with MADOGUCHI_TEST_RECORD_RESPONSES=1 ./dev test):\n"
        + "\n".join(sorted(missing))
    )


def _operations() -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    return [(method, path, op) for path, item in schema["paths"].items() for method, op in item.items()]


def test_preconditions_the_server_requires_are_required_in_the_contract() -> None:
    with_if_match = [
        (method, path, p)
        for method, path, op in _operations()
        for p in op.get("parameters", [])
        if p["name"].lower() == "if-match"
    ]
    assert len(with_if_match) >= 5
    assert all(p["required"] and p["schema"]["type"] == "string" for _, _, p in with_if_match), with_if_match
    # The chatbot token is a credential: a security scheme, never an optional parameter.
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    assert schema["components"]["securitySchemes"]["ChatbotToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Chatbot-Token",
        "description": "The session_token from POST /v1/chatbot/sessions",
    }
    chatbot_ops = [
        op for _, path, op in _operations() if path.startswith("/v1/chatbot/sessions/{session_id}")
    ]
    assert len(chatbot_ops) == 2
    assert all(op["security"] == [{"ChatbotToken": []}] for op in chatbot_ops)
    assert not [
        p for _, _, op in _operations() for p in op.get("parameters", []) if p["name"] == "X-Chatbot-Token"
    ]


def test_every_response_documents_its_headers() -> None:
    for method, path, op in _operations():
        for status, response in op["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in headers, (method, path, status)
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (method, path, status)
        assert "503" in op["responses"], (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(op["responses"]), (method, path)
    created = {op["operationId"]: op for _, _, op in _operations()}["consultations_create"]["responses"][
        "201"
    ]
    assert {"ETag", "Location", "X-Request-ID"} <= set(created["headers"])


def test_uploads_are_files_for_client_generators() -> None:
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    upload = {op["operationId"]: op for _, _, op in _operations()}["evidence_upload_file"]
    ref = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][ref]["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "title": "File",
        "description": "PNG, JPEG or PDF",
    }


def test_scopes_are_declared_only_where_an_operation_requires_them() -> None:
    schema = json.loads(CONTRACT.read_text(encoding="utf-8"))
    declared = set(schema["components"]["securitySchemes"]["OAuth2"]["flows"]["clientCredentials"]["scopes"])
    required = {
        scope for _, _, op in _operations() for s in op.get("security", []) for scope in s.get("OAuth2", [])
    }
    assert declared == required == {"chart:read", "triage:run"}
