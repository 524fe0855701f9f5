"""The authorization matrix: every route × every kind of caller, as data. A route missing here fails the
meta-test, so no endpoint ships without a reviewed row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from api.main import api_routes
from domain.actors import Client, Role
from tests.api.consultation_helpers import answer, intake, open_consultation, take
from tests.clock import closed_month_before_suite, period_around_suite
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
    needs: frozenset[str] = frozenset()  # extra context: "draft", "sample", "proposal"
    path_values: dict[str, str] = field(default_factory=dict)


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


STAFF_READ = expect(200, anonymous=401, service=403, owner=403, consulter=403)
COUNCIL_READ = expect(403, anonymous=401, council=200, supervisor=200)
PERIOD = period_around_suite()
CONSULTATION = "/v1/consultations/{consultation_id}"
ANSWERS = CONSULTATION + "/answers"
EVIDENCE = CONSULTATION + "/evidence/{evidence_id}"
REQUESTS = CONSULTATION + "/requests"
LETTERS = CONSULTATION + "/letters"


def letter_body(ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "disclosure",
        "recipient": "X Corp.",
        "evidence_ids": [ctx["letter_evidence_id"]],
        "choices": {"right": ["名誉権"]},
        "texts": {"reason": "事実無根の投稿で名誉を傷つけられました。"},
    }


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
    Row("POST", "/v1/auth/email-change/confirm", expect(422), lambda ctx: {"json": {"token": "t" * 43}}),
    Row("POST", "/v1/auth/logout", expect(204, anonymous=401)),
    Row("POST", "/v1/auth/step-up", person_only(200), lambda ctx: {"json": {"password": PASSWORD}}),
    Row("GET", "/v1/me", person_only(200)),
    Row("PATCH", "/v1/me", person_only(200), lambda ctx: {"json": {"display_name": "相談者"}}),
    Row(
        "POST",
        "/v1/me/password",
        person_only(204),
        lambda ctx: {"json": {"current_password": PASSWORD, "new_password": "夏の海で貝殻を拾った日のこと"}},
    ),
    Row(
        "POST",
        "/v1/me/email",
        person_only(202),
        lambda ctx: {"json": {"email": f"moved-{uuid.uuid4().hex[:6]}@example.jp"}},
    ),
    Row("POST", "/v1/me/totp", expect(201, anonymous=401, service=403, consulter=403)),
    Row("GET", "/v1/me/consents", person_only(200)),
    Row(
        "POST",
        "/v1/me/consents",
        expect(403, anonymous=401, consulter=201),
        lambda ctx: {"json": {"purpose": "research"}},
    ),
    Row(
        "POST",
        "/v1/me/consents/withdrawals",
        expect(403, anonymous=401, consulter=201),
        lambda ctx: {"json": {"purpose": "line_notifications"}},
    ),
    Row(
        "POST",
        "/v1/me/totp/confirm",
        expect(409, anonymous=401, service=403, consulter=403),
        lambda ctx: {"json": {"code": "123456"}},
    ),
    Row("POST", "/v1/me/exports", person_only(202)),
    # The owner's export, prepared by the worker: anyone else's id is 404, never a hint it exists.
    Row("GET", "/v1/me/exports/{export_id}", expect(404, anonymous=401, service=403, owner=200)),
    Row("GET", "/v1/me/exports/{export_id}/download", expect(404, anonymous=401, service=403, owner=200)),
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
    Row("GET", "/v1/problems", expect(200)),
    Row("GET", "/v1/problems/{code}", expect(200), path_values={"code": "stale_version"}),
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
    Row("GET", CONSULTATION, case_route(200)),
    Row(
        "PATCH",
        CONSULTATION,
        case_route(200, consultant=403),
        lambda ctx: {"json": {"title": "題名を変更"}, "headers": {"If-Match": '"v1"'}},
    ),
    Row(
        "POST",
        CONSULTATION + "/assign",
        case_route(403, consulter=403),
        lambda ctx: {"json": {"assignee_id": str(ctx["actor_id"])}, "headers": {"If-Match": '"v1"'}},
    ),
    Row(
        "POST",
        CONSULTATION + "/close",
        case_route(403, consultant=403, supervisor=409),
        lambda ctx: {"headers": {"If-Match": '"v1"'}},
    ),
    Row("POST", CONSULTATION + "/reopen", case_route(409, consultant=403, supervisor=409)),
    Row("POST", CONSULTATION + "/withdraw", case_route(200, consultant=403, supervisor=403)),
    Row("GET", CONSULTATION + "/history", case_route(200)),
    Row("GET", CONSULTATION + "/messages", case_route(200)),
    Row(
        "POST",
        CONSULTATION + "/messages/read",
        case_route(200, consultant=403, supervisor=403),
        lambda ctx: {"json": {"up_to": ctx["message_id"]}},
        needs=frozenset({"message"}),
    ),
    Row(
        "POST",
        CONSULTATION + "/messages",
        case_route(201, consultant=403, supervisor=422),
        lambda ctx: {"json": {"body": "追加の情報です"}},
    ),
    Row("GET", CONSULTATION + "/evidence", case_route(200)),
    Row(
        "POST",
        CONSULTATION + "/evidence",
        case_route(201, consultant=403, supervisor=201),
        lambda ctx: {"json": {"url": "https://x.com/a/status/2"}},
    ),
    # The bundle: the consulter and the assigned staff member only (here the case is unassigned); all others 404.
    Row("GET", CONSULTATION + "/evidence/bundle", expect(404, anonymous=401, service=403, owner=200)),
    Row("GET", EVIDENCE, case_route(200)),
    Row(
        "PATCH",
        EVIDENCE,
        case_route(200, consultant=403, supervisor=200),
        lambda ctx: {"json": {"notes": "投稿時刻を訂正"}, "headers": {"If-Match": '"v1"'}},
    ),
    Row("DELETE", EVIDENCE, case_route(204, consultant=403, supervisor=403)),
    Row(
        "PUT",
        EVIDENCE + "/file",
        case_route(409, consultant=403, supervisor=409),
        lambda ctx: {"files": {"file": ("a.png", TINY_PNG, "image/png")}},
    ),
    Row("GET", EVIDENCE + "/file", case_route(200)),
    # -- requests and clocks (issue 15): the consulter acts, the case's staff read and advise --
    Row("GET", REQUESTS, case_route(200)),
    Row(
        "POST",
        REQUESTS,
        case_route(201, consultant=403, supervisor=403),
        lambda ctx: {"json": {"kind": "platform_form", "target": {"platform": "x", "service": "x"}}},
    ),
    Row("GET", REQUESTS + "/{request_id}", case_route(200)),
    Row(
        "PATCH",
        REQUESTS + "/{request_id}",
        case_route(200, consultant=403, supervisor=403),
        lambda ctx: {"json": {"reference_number": "XR-2026-1"}, "headers": {"If-Match": '"v1"'}},
    ),
    Row(
        "POST",
        REQUESTS + "/{request_id}/status",
        case_route(200, consultant=403, supervisor=403),
        lambda ctx: {"json": {"status": "sent"}},
    ),
    Row(
        "POST",
        REQUESTS + "/{request_id}/advice",
        case_route(403, consultant=403, supervisor=200),
        lambda ctx: {"json": {"note": "7日待っても回答がなければ法務局へ"}},
    ),
    Row(
        "POST",
        REQUESTS + "/{request_id}/replies",
        case_route(200, consultant=403, supervisor=403),
        lambda ctx: {"json": {"evidence_id": ctx["evidence_id"]}},
        needs=frozenset({"evidence_id"}),
    ),
    Row("GET", CONSULTATION + "/clocks", case_route(200)),
    Row("GET", CONSULTATION + "/clock-facts", case_route(200)),
    Row(
        "PUT",
        CONSULTATION + "/clock-facts",
        case_route(200, consultant=403, supervisor=200),
        lambda ctx: {"json": {"offender_known_on": "2026-11-25"}},
    ),
    Row("GET", "/v1/clocks/overdue", expect(403, anonymous=401, consultant=200, supervisor=200)),
    Row(
        "POST",
        CONSULTATION + "/follows",
        case_route(200, consultant=403, supervisor=403),
        lambda ctx: {"json": {"earlier_id": ctx["earlier_id"]}},
        needs=frozenset({"earlier"}),
    ),
    Row("GET", CONSULTATION + "/earlier", case_route(200)),
    Row("GET", CONSULTATION + "/answer-suggestions", case_route(403, consultant=403, supervisor=200)),
    # Issue 16: the example case is not an intimate-image case, so a supervisor's slot is not needed (409).
    Row(
        "POST",
        EVIDENCE + "/upload-slot",
        expect(403, anonymous=401, supervisor=409),
        lambda ctx: {"json": {"reason": "ご本人の強い希望"}},
    ),
    Row("GET", EVIDENCE + "/similar", case_route(403, consulter=403)),
    # Issue 17 §2: retention and the legal hold are the supervisors' (the example case has no hold: 404).
    Row("GET", "/v1/retention", expect(403, anonymous=401, supervisor=200)),
    # Issue 17 §3: erasure is the consulter's own (staff accounts are removed by an admin); supervisors list.
    Row("POST", "/v1/me/erasure", expect(403, anonymous=401, consulter=202)),
    Row("GET", "/v1/me/erasure", expect(403, anonymous=401, consulter=404)),  # none asked: nothing to show
    Row("DELETE", "/v1/me/erasure", expect(403, anonymous=401, consulter=404)),
    Row("GET", "/v1/erasure-requests", expect(403, anonymous=401, supervisor=200)),
    Row("GET", CONSULTATION + "/legal-hold", expect(403, anonymous=401, supervisor=404)),
    Row(
        "PUT",
        CONSULTATION + "/legal-hold",
        expect(403, anonymous=401, supervisor=201),
        lambda ctx: {"json": {"reason": "訴訟のための証拠保全"}},
    ),
    Row("DELETE", CONSULTATION + "/legal-hold", expect(403, anonymous=401, supervisor=404)),
    Row("GET", CONSULTATION + "/referrals", case_route(200)),
    Row(
        "POST",
        CONSULTATION + "/referrals",
        case_route(403, consultant=403, supervisor=201),
        lambda ctx: {"json": {"desk_code": "houterasu", "reason": "弁護士への相談をおすすめします"}},
    ),
    Row(
        "POST",
        CONSULTATION + "/referrals/{referral_id}/{action}",
        case_route(200, consultant=403, supervisor=403),
    ),
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
    # The service client holds chart:read only: triage needs triage:run (anonymous callers need nothing).
    Row(
        "POST",
        "/v1/triage",
        expect(200, service=403),
        lambda ctx: {"json": {"text": "ネットに悪口を書かれました"}},
    ),
    # -- the homepage chatbot (issue 7): anonymous; the session token, not the caller, opens a session --
    Row("POST", "/v1/chatbot/sessions", expect(201)),
    Row(
        "GET",
        "/v1/chatbot/sessions/{session_id}",
        expect(200),
        lambda ctx: {"headers": {"X-Chatbot-Token": ctx["chatbot_token"]}},
        needs=frozenset({"chatbot"}),
    ),
    Row(
        "POST",
        "/v1/chatbot/sessions/{session_id}/messages",
        expect(200),
        lambda ctx: {"json": {"choice_id": "menu"}, "headers": {"X-Chatbot-Token": ctx["chatbot_token"]}},
        needs=frozenset({"chatbot"}),
    ),
    Row(
        "POST",
        "/v1/chatbot/drafts/claim",
        expect(403, anonymous=401, owner=200, consulter=200),
        lambda ctx: {"json": {"claim_token": ctx["claim_token"]}},
        needs=frozenset({"chatbot"}),
    ),
    # -- the quality loop (issue 4) --
    Row("GET", ANSWERS, case_route(403, consultant=403)),
    Row(
        "POST",
        ANSWERS,
        case_route(403, consultant=403, supervisor=201),
        lambda ctx: {"json": {"body": "回答案"}},
    ),
    Row("GET", ANSWERS + "/{draft_id}", case_route(403, consultant=404), needs=frozenset({"draft"})),
    Row(
        "POST",
        ANSWERS + "/{draft_id}/versions",
        case_route(403, consultant=404, supervisor=409),
        lambda ctx: {"json": {"body": "修正案"}},
        needs=frozenset({"draft"}),
    ),
    Row(
        "POST",
        ANSWERS + "/{draft_id}/submit",
        case_route(403, consultant=404, supervisor=409),
        needs=frozenset({"draft"}),
    ),
    Row(
        "POST",
        ANSWERS + "/{draft_id}/publish",
        case_route(403, consultant=404, supervisor=409),
        needs=frozenset({"draft"}),
    ),
    Row("GET", "/v1/reviews", expect(403, anonymous=401, legal_advisor=200)),
    Row(
        "GET",
        "/v1/reviews/{draft_id}",
        expect(403, anonymous=401, legal_advisor=200),
        needs=frozenset({"draft"}),
    ),
    Row(
        "POST",
        "/v1/reviews/{draft_id}/approve",
        expect(403, anonymous=401, legal_advisor=200),
        lambda ctx: {"json": {}},
        needs=frozenset({"draft"}),
    ),
    Row(
        "POST",
        "/v1/reviews/{draft_id}/return",
        expect(403, anonymous=401, legal_advisor=200),
        lambda ctx: {"json": {"advice": "根拠条文を追記してください"}},
        needs=frozenset({"draft"}),
    ),
    # -- letters (issue 15 §3): the context letter is a disclosure request waiting for review --
    Row("GET", "/v1/letter-forms", expect(200)),
    Row("GET", LETTERS, case_route(200, consultant=403)),
    Row(
        "POST",
        LETTERS,
        case_route(201, consultant=403, supervisor=403),
        lambda ctx: {"json": letter_body(ctx)},
        needs=frozenset({"letter"}),
    ),
    Row("GET", LETTERS + "/{letter_id}", case_route(200, consultant=403), needs=frozenset({"letter"})),
    Row(
        "POST",
        LETTERS + "/{letter_id}/versions",
        case_route(409, consultant=403, supervisor=403),
        lambda ctx: {"json": {k: v for k, v in letter_body(ctx).items() if k != "kind"}},
        needs=frozenset({"letter"}),
    ),
    Row(
        "POST",
        LETTERS + "/{letter_id}/submit",
        case_route(409, consultant=403, supervisor=409),
        needs=frozenset({"letter"}),
    ),
    Row(
        "POST",
        LETTERS + "/{letter_id}/finalise",
        case_route(409, consultant=403, supervisor=403),
        needs=frozenset({"letter"}),
    ),
    Row("GET", LETTERS + "/{letter_id}/pdf", case_route(200, consultant=403), needs=frozenset({"letter"})),
    Row(
        "GET",
        LETTERS + "/{letter_id}/form-text",
        case_route(200, consultant=403),
        lambda ctx: {"params": {"service": "x"}},
        needs=frozenset({"letter"}),
    ),
    Row("GET", "/v1/letter-reviews", expect(403, anonymous=401, legal_advisor=200)),
    Row(
        "POST",
        "/v1/letter-reviews/{letter_id}",
        expect(403, anonymous=401, legal_advisor=200, supervisor=200),
        lambda ctx: {"json": {"decision": "approved"}},
        needs=frozenset({"letter"}),
    ),
    Row("GET", "/v1/manual/{kind}", STAFF_READ, path_values={"kind": "sections"}),
    Row(
        "GET",
        "/v1/manual/{kind}/{code}",
        STAFF_READ,
        path_values={"kind": "templates", "code": "evidence-first"},
    ),
    Row(
        "POST",
        "/v1/manual/sections/{code}/versions",
        expect(403, anonymous=401, supervisor=201),
        lambda ctx: {"json": {"body_ja": "改訂版"}},
        path_values={"code": "evidence"},
    ),
    Row(
        "GET",
        "/v1/manual/sections/{code}/stale",
        expect(403, anonymous=401, consultant=200, legal_advisor=200, supervisor=200),
        path_values={"code": "evidence"},
    ),
    Row(
        "GET",
        "/v1/supervision/overview",
        expect(403, anonymous=401, supervisor=200),
        lambda ctx: {"params": PERIOD},
    ),
    Row(
        "POST",
        "/v1/council/samples",
        expect(403, anonymous=401, supervisor=201),
        lambda ctx: {"json": {"period_from": PERIOD["from"], "period_to": PERIOD["to"], "size": 3}},
    ),
    Row("GET", "/v1/council/samples", COUNCIL_READ),
    Row(
        "GET", "/v1/council/samples/{sample_id}/items/{pseudonym}", COUNCIL_READ, needs=frozenset({"sample"})
    ),
    Row(
        "POST",
        "/v1/council/samples/{sample_id}/items/{pseudonym}/findings",
        expect(403, anonymous=401, council=201),
        lambda ctx: {"json": {"accuracy": 3, "timeliness": 3, "tone": 3, "referral_fit": 3}},
        needs=frozenset({"sample"}),
    ),
    Row("GET", "/v1/council/samples/{sample_id}/findings", COUNCIL_READ, needs=frozenset({"sample"})),
    Row(
        "POST",
        "/v1/council/proposals",
        expect(403, anonymous=401, council=201),
        lambda ctx: {"json": {"section_code": "evidence", "proposed_body": "案", "rationale": "理由"}},
    ),
    Row("GET", "/v1/council/proposals", COUNCIL_READ),
    Row(
        "POST",
        "/v1/council/proposals/{proposal_id}/reject",
        expect(403, anonymous=401, supervisor=200),
        needs=frozenset({"proposal"}),
    ),
    Row("GET", "/v1/council/statistics", COUNCIL_READ, lambda ctx: {"params": closed_month_before_suite()}),
    Row("GET", "/v1/audit-events", expect(403, anonymous=401, supervisor=200, admin=200)),
    # -- statistics (issue 18): supervisors in full, the council suppressed, nobody else --
    Row("GET", "/v1/statistics", COUNCIL_READ, lambda ctx: {"params": {"fiscal_year": 2026}}),
    Row(
        "GET",
        "/v1/statistics/tables/{table}",
        COUNCIL_READ,
        lambda ctx: {"params": {"fiscal_year": 2026, "format": "csv"}},
        path_values={"table": "channel"},
    ),
    Row(
        "GET",
        "/v1/statistics/charts/{chart}",
        COUNCIL_READ,
        lambda ctx: {"params": {"fiscal_year": 2026, "format": "svg"}},
        path_values={"chart": "channels"},
    ),
    Row("GET", "/v1/statistics/report", COUNCIL_READ, lambda ctx: {"params": {"fiscal_year": 2026}}),
    # -- the LINE official account (issue 6): the webhook trusts only X-Line-Signature, so a bearer token
    # without a valid signature is 401 for everyone; linking is for consulters; dead letters for admins --
    Row(
        "POST",
        "/v1/line/webhook",
        expect(401),
        lambda ctx: {"json": {"destination": "U" + "0" * 32, "events": []}},
    ),
    Row(
        "POST",
        "/v1/line/link-nonce",
        expect(403, anonymous=401, consulter=200),
        lambda ctx: {"json": {"link_token": "d" * 32}},
    ),
    Row("GET", "/v1/line/link", expect(403, anonymous=401, consulter=200)),
    Row("DELETE", "/v1/line/link", expect(403, anonymous=401, consulter=204)),
    Row("GET", "/v1/line/dead-letters", admin_only(200)),
    Row(
        "POST",
        "/v1/line/dead-letters/{dead_letter_id}/replay",
        admin_only(404),
        path_values={"dead_letter_id": str(uuid.uuid4())},
    ),
]


def test_every_route_is_in_the_matrix(app) -> None:  # type: ignore[no-untyped-def]
    served = {(method, route.path) for route in api_routes(app) for method in route.methods}
    assert len(served) >= 75
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


async def extra_context(needs, ctx, client, people, supervisor) -> None:  # type: ignore[no-untyped-def]
    """Costly context only for the rows that need it. With a draft, the case is assigned to the supervisor,
    so an unassigned-queue consultant no longer sees it (404)."""
    cid = ctx["consultation_id"]
    if "message" in needs:
        posted = await client.post(
            f"/v1/consultations/{cid}/messages", headers=ctx["owner"].headers, json={"body": "追記です"}
        )
        assert posted.status_code == 201, posted.text
        ctx["message_id"] = posted.json()["id"]
    if "chatbot" in needs:
        # An anonymous chat that reached the hand-off: its session token and the claim token it issued.
        opened = (await client.post("/v1/chatbot/sessions")).json()
        ctx["session_id"], ctx["chatbot_token"] = opened["session_id"], opened["session_token"]
        handed = await client.post(
            f"/v1/chatbot/sessions/{opened['session_id']}/messages",
            headers={"X-Chatbot-Token": opened["session_token"]},
            json={"choice_id": "flow:handoff"},
        )
        ctx["claim_token"] = handed.json()["handoff"]["claim_token"]
    if "draft" in needs:
        # A draft waiting for the legal advisor (the example intake asks to identify the poster).
        await take(client, supervisor, cid)
        draft = await client.post(
            f"/v1/consultations/{cid}/answers", headers=supervisor.headers, json={"body": "回答案"}
        )
        ctx["draft_id"] = draft.json()["id"]
        submitted = await client.post(
            f"/v1/consultations/{cid}/answers/{ctx['draft_id']}/submit", headers=supervisor.headers
        )
        assert submitted.status_code == 200, submitted.text
    if "letter" in needs:
        # A disclosure request by the owner, sent to review (so the legal advisor may decide on it).
        owner = ctx["owner"]
        made = await client.post(
            f"/v1/consultations/{cid}/evidence",
            headers=owner.headers,
            json={"url": "https://x.com/a/status/2", "excerpt": "事実無根の書き込み"},
        )
        ctx["letter_evidence_id"] = made.json()["id"]
        letter = await client.post(
            f"/v1/consultations/{cid}/letters", headers=owner.headers, json=letter_body(ctx)
        )
        assert letter.status_code == 201, letter.text
        ctx["letter_id"] = letter.json()["id"]
        submitted = await client.post(
            f"/v1/consultations/{cid}/letters/{ctx['letter_id']}/submit", headers=owner.headers
        )
        assert submitted.status_code == 200, submitted.text
    if "sample" in needs:
        closed = await open_consultation(
            client, await people.create(), desired_outcomes=["advice"], categories=["RIGHTS.INSULT"]
        )
        await take(client, supervisor, closed["id"])
        await answer(client, supervisor, closed["id"])
        tag = (await client.get(f"/v1/consultations/{closed['id']}", headers=supervisor.headers)).headers[
            "etag"
        ]
        await client.post(
            f"/v1/consultations/{closed['id']}/close", headers={**supervisor.headers, "If-Match": tag}
        )
        sample = await client.post(
            "/v1/council/samples",
            headers=supervisor.headers,
            json={"period_from": PERIOD["from"], "period_to": PERIOD["to"], "size": 1},
        )
        ctx["sample_id"], ctx["pseudonym"] = sample.json()["id"], sample.json()["items"][0]
    if "proposal" in needs:
        council = await people.create(Role.council)
        proposal = await client.post(
            "/v1/council/proposals",
            headers=council.headers,
            json={"section_code": "evidence", "proposed_body": "案", "rationale": "理由"},
        )
        ctx["proposal_id"] = proposal.json()["id"]


async def prepare(
    row: Row, actor: str, client, people, container
) -> tuple[str, dict[str, str], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The objects the row's path needs (each test starts from an empty database), then the path, the actor's
    headers and the request's other arguments."""
    needs = set(row.needs) | {
        name
        for name in ("evidence_id", "referral_id", "user_id", "request_id", "export_id")
        if f"{{{name}}}" in row.path
    }
    owner = await people.create(Role.consulter)
    consultation = await open_consultation(client, owner)
    cid = consultation["id"]
    supervisor = await people.create(Role.supervisor)
    ctx: dict[str, Any] = {
        "owner": owner,
        "consultation_id": cid,
        "actor_id": uuid.uuid4(),
        "action": "consent",
        "code": "police_110",
        "slug": "evidence-preservation",
    }
    if "user_id" in needs:
        ctx["user_id"] = (await people.create(Role.consultant)).id
    if "evidence_id" in needs:
        evidence = await client.post(
            f"/v1/consultations/{cid}/evidence",
            headers=owner.headers,
            json={"url": "https://x.com/a/status/1"},
        )
        ctx["evidence_id"] = evidence.json()["id"]
        uploaded = await client.put(
            f"/v1/consultations/{cid}/evidence/{ctx['evidence_id']}/file",
            headers=owner.headers,
            files={"file": ("a.png", TINY_PNG, "image/png")},
        )
        assert uploaded.status_code == 200, uploaded.text
    if "referral_id" in needs:
        referral = await client.post(
            f"/v1/consultations/{cid}/referrals",
            headers=supervisor.headers,
            json={"desk_code": "houterasu", "reason": "弁護士への相談をおすすめします"},
        )
        assert referral.status_code == 201, referral.text
        ctx["referral_id"] = referral.json()["id"]
    if "request_id" in needs:
        created = await client.post(
            f"/v1/consultations/{cid}/requests",
            headers=owner.headers,
            json={"kind": "platform_form", "target": {"platform": "x", "service": "x"}},
        )
        assert created.status_code == 201, created.text
        ctx["request_id"] = created.json()["id"]
    if "export_id" in needs:
        asked = await client.post("/v1/me/exports", headers=owner.headers)
        assert asked.status_code == 202, asked.text
        ctx["export_id"] = asked.json()["id"]
        await container.worker.run_once()
    if "earlier" in needs:
        # The context's consultation becomes the earlier, ended one; a newer one of the owner follows it.
        withdrawn = await client.post(f"/v1/consultations/{cid}/withdraw", headers=owner.headers)
        assert withdrawn.status_code == 200, withdrawn.text
        ctx["earlier_id"] = cid
        ctx["consultation_id"] = (await open_consultation(client, owner))["id"]
    await extra_context(frozenset(needs), ctx, client, people, supervisor)
    auth = await headers_for(actor, people, container, ctx)
    request = row.request(ctx)
    headers = {**auth, **request.pop("headers", {})}
    path = row.path.format(**{**{k: v for k, v in ctx.items() if k != "owner"}, **row.path_values})
    return path, headers, request


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_matrix(row: Row, actor: str, client, people, container) -> None:  # type: ignore[no-untyped-def]
    path, headers, request = await prepare(row, actor, client, people, container)
    response = await client.request(row.method, path, headers=headers, **request)
    assert response.status_code == row.expected[actor], (actor, response.text)
