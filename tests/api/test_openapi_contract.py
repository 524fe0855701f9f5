"""openapi/openapi.json is the contract three front-end teams code against: it must equal what is served."""

from __future__ import annotations

import json
from pathlib import Path

from api.openapi import render_openapi

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
            if path.startswith("/v1/") and operation.get("security"):
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


async def test_docs_render(client) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200 and "swagger-ui" in response.text.lower()
