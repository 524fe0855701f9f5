"""Issue 19 item 6: one JSON line per request and per worker delivery, and never personal data in any line."""

from __future__ import annotations

import json
import logging

from domain.actors import Role
from infra.logging import json_formatter
from tests.api.observability_workload import EMAIL, run_workload
from tests.log_guard import EMAIL as EMAIL_PATTERN
from tests.log_guard import JWT, LogGuard


async def test_no_planted_personal_data_in_any_log_line(client, people, container, captured) -> None:
    planted = await run_workload(client, people, container)
    assert len(captured) > 30
    for line in captured:
        assert not EMAIL_PATTERN.search(line), line
        assert not JWT.search(line), line
        for value in planted.values:
            assert value not in line, (value, line)


async def test_one_json_line_per_request_with_template_status_duration_and_role(
    client, people, container, captured
) -> None:
    await run_workload(client, people, container)
    requests = [json.loads(line) for line in captured if '"event": "request"' in line]
    assert requests and all(r["logger"] == "madoguchi.request" and r["level"] == "info" for r in requests)
    assert {"request_id", "method", "route", "status", "duration_ms", "role", "timestamp"} <= set(requests[0])
    for r in requests:
        assert set(r) == {
            "request_id",
            "method",
            "route",
            "status",
            "duration_ms",
            "role",
            "event",
            "level",
            "logger",
            "timestamp",
        }
        assert r["timestamp"].endswith("Z") and isinstance(r["duration_ms"], float)
        assert r["role"] in {
            "anonymous",
            *(role.value for role in Role),
            "line",
            "chatbot",
            "service",
            "web",
            "staff",
        }
    routes = {(r["method"], r["route"], r["status"]) for r in requests}
    assert ("GET", "/v1/consultations/{consultation_id}", 404) in routes
    assert ("POST", "/v1/consultations", 201) in routes
    roles = {r["role"] for r in requests if r["route"] == "/v1/consultations/{consultation_id}"}
    assert roles == {"consulter", "consultant"}
    # Each request id once: one line per request.
    ids = [r["request_id"] for r in requests]
    assert len(ids) == len(set(ids))


async def test_a_person_from_as_actor_is_logged_with_their_role(client, as_actor, captured) -> None:  # type: ignore[no-untyped-def]
    """as_actor opens a real session without signing in; its requests pass the real bearer check, so the
    request line names the role, as for someone who signed in (never "anonymous")."""
    for role in Role:
        person = await as_actor(role)
        me = await client.get("/v1/me", headers={**person.headers, "X-Request-ID": f"as-actor-{role.value}"})
        assert me.status_code in (200, 403), me.text  # 403: staff before their second factor
        line = next(json.loads(x) for x in captured if f'"as-actor-{role.value}"' in x)
        assert line["role"] == role.value, line


async def test_a_request_line_carries_the_request_id_the_caller_sent(client, captured) -> None:
    await client.get("/healthz", headers={"X-Request-ID": "trace-0123456789"})
    line = next(json.loads(x) for x in captured if '"trace-0123456789"' in x)
    assert line["route"] == "/healthz" and line["status"] == 200 and line["role"] == "anonymous"


async def test_one_line_per_worker_delivery(client, people, container, captured) -> None:
    await run_workload(client, people, container)
    deliveries = [json.loads(line) for line in captured if '"event": "delivery"' in line]
    assert deliveries, "the workload queues mail"
    for d in deliveries:
        assert d["queue"] == "outbox" and d["outcome"] in {"delivered", "done"}
        assert {"outbox_id", "kind", "attempt", "duration_ms"} <= set(d)
    assert "mail.verify_email" in {d["kind"] for d in deliveries}


def test_the_suite_guard_finds_what_it_must() -> None:
    """The session-wide check (tests/conftest.py) is only as good as its scanner."""
    guard = LogGuard()
    guard.plant("山田花子")
    guard.scan('{"event": "request", "route": "/v1/me"}')
    assert guard.findings == []
    guard.scan(f'{{"event": "mail sent", "to": "{EMAIL}"}}')
    guard.scan('{"event": "x", "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig"}')
    guard.scan('{"event": "x", "name": "山田花子"}')
    assert [what for _, what, _ in guard.findings] == ["e-mail address", "token", "planted value '山田花子'"]
    handler = guard.handler()
    logger = logging.getLogger("tests.guard")
    logger.addHandler(handler)
    logger.propagate = False  # the suite's own guard must not see this planted line
    try:
        logger.warning("sent to %s", "someone@example.jp")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert guard.findings[-1][1] == "e-mail address"


def test_uvicorn_lines_are_plain_json_without_terminal_colours() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (7,), None
    )
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    line = json.loads(json_formatter().format(record))
    assert line["event"] == "Started server process [7]" and line["logger"] == "uvicorn.error"
    assert "color_message" not in line and "\x1b" not in json.dumps(line)
