"""What FastAPI cannot say about the API by itself, added to the generated OpenAPI document: problems answer
application/problem+json with the codes each operation can return, every response header the server sends,
required preconditions, and uploads that generated clients accept as files.

Which codes and headers each operation sends is kept in `api/responses.json`. The test suite records every
response it receives and a test fails when one is not in the contract; `MADOGUCHI_TEST_RECORD_RESPONSES=1 ./dev test`
adds what a run observed (see README, "The contract")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.errors import problem_type
from api.etag import IF_MATCH_PATTERN
from infra.knowledge import load_problem_catalogue

RESPONSES_FILE = Path(__file__).with_name("responses.json")
# A real answer per operation and status, recorded from the test suite (credentials replaced by "…").
EXAMPLES_FILE = Path(__file__).with_name("examples.json")
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS = {
    "400": "The request could not be read (malformed JSON, form or header)",
    "401": "Missing, invalid, expired or revoked token",
    "403": "The role or scope may not do this",
    "404": "No such object, or not visible to the caller (never told apart)",
    "405": "Method not allowed; see Allow",
    "409": "Conflicts with the current state",
    "412": "The If-Match ETag is not the current one",
    "413": "Body too large",
    "415": "Unsupported content type",
    "422": "Invalid input",
    "428": "If-Match is required",
    "431": "Request header fields too large",
    "429": "Too many attempts; see Retry-After",
    "503": "Temporarily unavailable (e.g. the database); see Retry-After. Safe to retry reads and writes "
    "sent with an Idempotency-Key",
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id (yours if you sent a well-formed X-Request-ID, else a new one); the "
        "same as `request_id` in problems",
        "schema": {"type": "string", "examples": ["3f0c2a9e8b6d4e0f9a1b2c3d4e5f6a7b"]},
    },
    "ETag": {
        "description": "The version of the object; send it back in If-Match to change it",
        "schema": {"type": "string", "examples": ['"v3"']},
    },
    "Location": {
        "description": "Where the created object lives",
        "schema": {"type": "string", "examples": ["/v1/consultations/0b6f9c1e-8d2a-4c1b-9f3e-2a7d5c4b1e90"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1, "examples": [30]},
    },
    "WWW-Authenticate": {
        "description": 'Bearer (RFC 6750), with error="invalid_token" when a token was sent',
        "schema": {"type": "string", "examples": ['Bearer error="invalid_token"']},
    },
    "Allow": {"description": "The methods this path supports", "schema": {"type": "string"}},
}
# 429 codes that are not counters of the throttle stores (the intake limit counts consultations themselves).
NOT_COUNTED = frozenset({"too_many_consultations"})
STATUS_HEADERS = {"401": ["WWW-Authenticate"], "429": ["Retry-After"], "503": ["Retry-After"]}


def observed() -> dict[str, dict[str, dict[str, list[str]]]]:
    """Per operation id and status: the problem `codes` and the `headers` it sends."""
    if not RESPONSES_FILE.exists():
        return {}
    return json.loads(RESPONSES_FILE.read_text(encoding="utf-8"))


def recorded_examples() -> dict[str, dict[str, Any]]:
    if not EXAMPLES_FILE.exists():
        return {}
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))


def generic_statuses(path: str, get: bool, operation: dict[str, Any]) -> dict[str, list[str]]:
    """Statuses any operation of this shape can answer, whatever its logic: a body can be malformed or too
    large, input can be invalid, a token can be missing, and the database can time out."""
    statuses: dict[str, list[str]] = {
        "431": ["request_header_fields_too_large"],
        "503": ["database_unavailable"],
    }
    headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
    if operation.get("requestBody"):
        statuses["400"] = ["bad_request"]
        statuses["413"] = ["content_too_large"]
        statuses["415"] = ["unsupported_media_type"]
    if operation.get("requestBody") or operation.get("parameters"):
        statuses["422"] = ["validation_failed"]
    if get and path.startswith("/v1/"):
        statuses.setdefault("422", ["validation_failed"]).append("unknown_query_parameter")
    if "if-match" in headers:
        statuses.setdefault("400", []).extend(["if_match_malformed", "if_match_one_tag"])
        statuses["412"] = ["stale_version"]
        statuses["428"] = ["if_match_required"]
    if "idempotency-key" in headers:
        statuses.setdefault("409", []).append("idempotency_key_in_use")
        statuses.setdefault("422", ["validation_failed"]).append("idempotency_key_reused")
    if operation.get("security") and any("OAuth2" in s for s in operation["security"]):
        statuses["401"] = ["missing_token", "invalid_token"]
    if operation.get("x-roles"):
        # The route's role guard (api.deps.require): a service client, or a person of another role.
        statuses["403"] = ["person_required", "role_not_allowed"]
    return statuses


def document(schema: dict[str, Any]) -> dict[str, Any]:
    catalogue = load_problem_catalogue()
    seen = observed()
    examples = recorded_examples()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            facts = seen.get(operation["operationId"], {})
            for status, example in examples.get(operation["operationId"], {}).items():
                content = operation["responses"].get(status, {}).get("content", {}).get("application/json")
                if content is not None:
                    content["example"] = example
            _preconditions(operation)
            _public_security(operation)
            _roles(operation)
            codes_by_status = generic_statuses(path, method == "get", operation)
            for status, fact in facts.items():
                if fact.get("codes"):
                    codes_by_status.setdefault(status, [])
                    codes_by_status[status] += fact["codes"]
            if set(codes_by_status.get("429", [])) - NOT_COUNTED:
                # Rate limits and throttles count in the shared counter store: with Redis configured and
                # gone, what they guard answers 503 instead of letting every attempt through.
                codes_by_status["503"].append("counter_store_unavailable")
            for status, codes in codes_by_status.items():
                response = operation["responses"].setdefault(status, {})
                known = sorted({c for c in codes if c in catalogue})
                _problem_response(response, status, known, catalogue)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and status not in codes_by_status:
                    _problem_response(response, status, [], catalogue)
                headers = response.setdefault("headers", {})
                names = [
                    "X-Request-ID",
                    *STATUS_HEADERS.get(status, []),
                    *facts.get(status, {}).get("headers", []),
                ]
                for name in sorted(set(names)):
                    headers[name] = {"$ref": f"#/components/headers/{name}"}
            operation["responses"] = dict(sorted(operation["responses"].items()))
    _binary_uploads(schema)
    schema["components"]["headers"] = HEADERS
    problem = schema["components"]["schemas"]["Problem"]
    problem["properties"]["code"]["enum"] = sorted(catalogue)
    return schema


def _problem_response(
    response: dict[str, Any], status: str, codes: list[str], catalogue: dict[str, Any]
) -> None:
    listed = ", ".join(f"`{c}`" for c in codes)
    response["description"] = DESCRIPTIONS.get(status, response.get("description") or "Error") + (
        f". Codes: {listed}" if codes else ""
    )
    body: dict[str, Any] = PROBLEM_REF
    if codes:
        body = {"allOf": [PROBLEM_REF, {"type": "object", "properties": {"code": {"enum": codes}}}]}
    content: dict[str, Any] = {"schema": body}
    if codes:
        entry = catalogue[codes[0]]
        content["example"] = {
            "type": problem_type(entry.code),
            "title": entry.title_ja,
            "status": int(status),
            "code": entry.code,
            "instance": "/v1/…",
            "request_id": "3f0c2a9e8b6d4e0f9a1b2c3d4e5f6a7b",
        }
    response["content"] = {"application/problem+json": content}


def _roles(operation: dict[str, Any]) -> None:
    """Who may call the operation, in its description too (x-roles is for machines, the text for people)."""
    roles = operation.get("x-roles")
    if roles:
        said = f"Roles: {', '.join(f'`{r}`' for r in roles)} (others: 403 `role_not_allowed`)."
        operation["description"] = (
            f"{operation['description']}\n\n{said}" if operation.get("description") else said
        )


def _public_security(operation: dict[str, Any]) -> None:
    """A public operation with a scoped alternative (api.deps.public_security) keeps just the two options:
    anonymous, or a token with the scope (FastAPI also lists the unscoped dependency)."""
    security = operation.get("security", [])
    if {} in security:
        operation["security"] = [s for s in security if s == {} or any(s.values())]


def _preconditions(operation: dict[str, Any]) -> None:
    """If-Match is checked by the route (428 without it, so the answer can say why): required all the same,
    with the pattern of what the route takes."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == "if-match":
            parameter["required"] = True
            declared = parameter["schema"]
            alternatives = [a for a in declared.get("anyOf", [declared]) if a.get("type") != "null"]
            parameter["schema"] = {
                **alternatives[0],
                "title": declared.get("title", "If-Match"),
                "pattern": IF_MATCH_PATTERN,
            }


def _binary_uploads(schema: dict[str, Any]) -> None:
    """pydantic describes an uploaded file as a string with contentMediaType; client generators
    (openapi-typescript, openapi-python-client) recognise `format: binary` as a file."""
    for component in schema["components"]["schemas"].values():
        for prop in component.get("properties", {}).values():
            if prop.get("type") == "string" and prop.get("contentMediaType") == "application/octet-stream":
                prop.pop("contentMediaType")
                prop["format"] = "binary"
