"""Records every response the suite receives through the `client` fixture: which operation answered, with
which status, problem code and documented headers. A test that runs last (tests/api/test_openapi_contract.py)
fails when one of them is not in the committed contract; `MADOGUCHI_TEST_RECORD_RESPONSES=1` writes what was seen into
api/responses.json instead, to be reviewed and committed with the regenerated contract."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCUMENTED_HEADERS = ("etag", "location")
# (operation id, status) → problem codes, and → response headers worth documenting
CODES: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
HEADERS: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
NAMES = {"etag": "ETag", "location": "Location"}
# (operation id, status) → the first JSON body a test received: the response example in the contract
BODIES: dict[tuple[str, str], Any] = {}
# Values that are credentials in a real answer; the example shows their shape, never a usable token.
SECRET_KEYS = {"access_token", "refresh_token", "session_token", "claim_token", "client_secret", "secret"}
SECRET_KEYS |= {"otpauth_uri", "nonce", "redirect_url"}


def scrubbed(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("…" if k in SECRET_KEYS and isinstance(v, str) else scrubbed(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrubbed(v) for v in value[:2]]  # two items show a list's shape
    return value


class ResponseRecorder:
    def __init__(self, app: ASGIApp, *, examples: bool = True) -> None:
        self.app = app
        self.examples = examples  # generated input (fuzzing) makes no example a person should read

    def __getattr__(self, name: str) -> Any:  # the app's state and routes stay reachable through the wrapper
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = ""
        problem = bytearray()
        body = bytearray()
        is_problem = is_json = False
        names: set[str] = set()

        async def capture(message: Message) -> None:
            nonlocal status, is_problem, is_json
            if message["type"] == "http.response.start":
                status = str(message["status"])
                for key, value in message.get("headers", []):
                    key_text = key.decode("latin-1").lower()
                    if key_text == "content-type" and value.startswith(b"application/problem+json"):
                        is_problem = True
                    elif key_text == "content-type" and value.startswith(b"application/json"):
                        is_json = True
                    if key_text in DOCUMENTED_HEADERS:
                        names.add(NAMES[key_text])
            elif message["type"] == "http.response.body" and is_problem:
                problem.extend(message.get("body", b""))
            elif message["type"] == "http.response.body" and is_json:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        operation = getattr(scope.get("route"), "operation_id", None)
        if not operation or not status or status == "405":
            return  # a 405 is about the path (another method's route matched it), not about an operation
        if is_problem:
            CODES[(operation, status)].add(json.loads(bytes(problem))["code"])
        if names:
            HEADERS[(operation, status)] |= names
        if (
            self.examples
            and is_json
            and status.startswith("2")
            and body
            and not BODIES.get((operation, status))  # keep the first that is not empty
        ):
            BODIES[(operation, status)] = scrubbed(json.loads(bytes(body)))


def examples() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (operation, status), body in sorted(BODIES.items()):
        out.setdefault(operation, {})[status] = body
    return out


def as_document() -> dict[str, dict[str, dict[str, list[str]]]]:
    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for (operation, status), codes in CODES.items():
        out.setdefault(operation, {}).setdefault(status, {})["codes"] = sorted(codes)
    for (operation, status), names in HEADERS.items():
        out.setdefault(operation, {}).setdefault(status, {})["headers"] = sorted(names)
    return out


def undocumented(seen: dict[str, dict[str, dict[str, list[str]]]], contract: dict[str, Any]) -> list[str]:
    """What was seen (`as_document()`, or a union of several processes') that the contract does not list."""
    operations = {op["operationId"]: op for item in contract["paths"].values() for op in item.values()}
    missing = []
    for operation, statuses in seen.items():
        responses = operations[operation]["responses"]
        for status, facts in statuses.items():
            documented = responses.get(status)
            if documented is None:
                missing.append(f"{operation} {status}")
                continue
            body = documented.get("content", {}).get("application/problem+json", {}).get("schema", {})
            listed = set(
                body.get("allOf", [{}, {}])[-1].get("properties", {}).get("code", {}).get("enum", [])
            )
            missing += [f"{operation} {status} code {c}" for c in facts.get("codes", []) if c not in listed]
            missing += [
                f"{operation} {status} header {h}"
                for h in facts.get("headers", [])
                if h not in documented.get("headers", {})
            ]
    return missing


def union(
    documents: list[dict[str, dict[str, dict[str, list[str]]]]],
) -> dict[str, dict[str, dict[str, list[str]]]]:
    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for document in documents:
        for operation, statuses in document.items():
            for status, facts in statuses.items():
                target = out.setdefault(operation, {}).setdefault(status, {})
                for key, values in facts.items():
                    target[key] = sorted(set(target.get(key, [])) | set(values))
    return out


def merged_with(existing: dict[str, Any]) -> dict[str, Any]:
    merged = union([existing, as_document()])
    return {op: dict(sorted(statuses.items())) for op, statuses in sorted(merged.items())}
