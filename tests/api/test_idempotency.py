"""Idempotency-Key on every create (issues 13.12 and 10.8): a front end may retry any write after a 503 or a lost
answer and gets the first answer again (201, the same body, the same Location and ETag), never a second
object; the same key with another request is refused; and every timestamp the API sends has one form."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from api.main import api_routes
from domain.actors import Role
from infra import idempotency
from infra.db.tables import ConsultationRow, MessageRow
from tests.api.consultation_helpers import intake, open_consultation, take
from tests.conftest import assert_problem

UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def timestamps(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in timestamps(v)]
    return [value] if isinstance(value, str) and TIMESTAMP.match(value) else []


async def count(container, table) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(table)) or 0)


def database_gone() -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))


# -- the same answer, never a second object ---------------------------------------------------------------


async def test_every_create_takes_the_key_and_says_so_in_the_contract(app) -> None:  # type: ignore[no-untyped-def]
    schema = app.openapi()
    # Not the anonymous chatbot session (no person to own a key; a second session is harmless) and not a TOTP
    # enrolment (its answer is the shared secret, which must not be kept a second time; a retry just begins a
    # new enrolment that replaces the first).
    exempt = {"chatbot_session_create", "me_totp_begin"}
    creates = [
        r
        for r in api_routes(app)
        if "POST" in r.original_route.methods and r.original_route.status_code == 201
    ]
    assert len(creates) >= 10
    # The serializer that writes timestamps in UTC leaves the contract's field types alone.
    created_at = schema["components"]["schemas"]["IntakeOut"]["properties"]["created_at"]
    assert created_at == {"format": "date-time", "title": "Created At", "type": "string"}
    for route in creates:
        operation = schema["paths"][route.path]["post"]
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("Idempotency-Key" in names) != (operation["operationId"] in exempt), operation["operationId"]


async def test_an_intake_replay_is_the_first_answer_with_one_timestamp_form(
    client, people, container
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    headers = {**person.headers, **key()}
    first = await client.post("/v1/consultations", headers=headers, json=intake())
    again = await client.post("/v1/consultations", headers=headers, json=intake())
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert (again.headers["location"], again.headers["etag"]) == (
        first.headers["location"],
        first.headers["etag"],
    )
    # The due time is computed in JST; it is sent in UTC like every other timestamp, first time and after.
    body = first.json()
    stamps = timestamps(body)
    assert {"created_at", "first_answer_due_at", "consented_at"} <= {
        k for k, v in body.items() if v in stamps
    }
    assert all(UTC_Z.match(t) for t in stamps), stamps
    read = await client.get(first.headers["location"], headers=person.headers)
    assert read.json()["first_answer_due_at"] == body["first_answer_due_at"]
    assert read.json()["created_at"] == body["created_at"]
    assert await count(container, ConsultationRow) == 1


async def test_messages_evidence_referrals_and_drafts_replay_the_same_answer(
    client, people, container
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    consultant = await people.create(Role.consultant)
    case = await open_consultation(client, person)
    cid = case["id"]
    await take(client, consultant, cid)
    base = f"/v1/consultations/{cid}"
    creates = [
        (person, f"{base}/messages", {"body": "追加の情報です。相手のアカウント名が変わりました。"}),
        (
            person,
            f"{base}/evidence",
            {"url": "https://x.example.com/status/1", "notes": "削除される前に保存しました", "platform": "x"},
        ),
        (
            consultant,
            f"{base}/referrals",
            {"desk_code": "police_8103", "reason": "脅迫の相談窓口をご案内します"},
        ),
        (
            consultant,
            f"{base}/answers",
            {"body": "削除依頼の方法をご案内します。", "manual_sections": ["evidence"]},
        ),
    ]
    for actor, path, body in creates:
        headers = {**actor.headers, **key()}
        first = await client.post(path, headers=headers, json=body)
        assert first.status_code == 201, (path, first.text)
        again = await client.post(path, headers=headers, json=body)
        assert again.status_code == 201 and again.content == first.content, path
        listed = (await client.get(path, headers=actor.headers)).json()
        items = listed["items"] if isinstance(listed, dict) else listed
        assert [i["id"] for i in items].count(first.json()["id"]) == 1, path
        assert all(UTC_Z.match(t) for t in timestamps(first.json()))


async def test_the_same_key_with_another_request_is_refused(client, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    case = await open_consultation(client, person)
    other = await open_consultation(client, person, title="二件目の相談")
    headers = {**person.headers, **key()}
    path = f"/v1/consultations/{case['id']}/messages"
    assert (await client.post(path, headers=headers, json={"body": "一通目"})).status_code == 201
    changed = await client.post(path, headers=headers, json={"body": "二通目"})
    assert_problem(changed, 422, "idempotency_key_reused")
    elsewhere = await client.post(
        f"/v1/consultations/{other['id']}/messages", headers=headers, json={"body": "一通目"}
    )
    assert_problem(elsewhere, 422, "idempotency_key_reused")
    # Key order and spacing do not make another request.
    same = await client.post(
        path, headers={**headers, "Content-Type": "application/json"}, content='{ "body" : "一通目" }'
    )
    assert same.status_code == 201


async def test_a_key_is_the_persons_own(client, people) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = await people.create(), await people.create()
    shared = key()
    mine = await client.post("/v1/consultations", headers={**owner.headers, **shared}, json=intake())
    theirs = await client.post("/v1/consultations", headers={**stranger.headers, **shared}, json=intake())
    assert (
        theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]
    )  # nothing of the owner's leaks
    path = f"/v1/consultations/{mine.json()['id']}/messages"
    probe = await client.post(path, headers={**stranger.headers, **key()}, json={"body": "のぞき見"})
    assert_problem(probe, 404)


# -- a write that committed, then answered 503 ---------------------------------------------------------------


async def test_an_intake_that_committed_then_answered_503_is_returned_by_the_retry(
    client, people, container, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    headers = {**person.headers, **key()}
    import api.routes.consultations as routes

    real = routes.intake_out

    def gone(*_: object) -> None:
        raise database_gone()  # after the intake's commit: the database went away mid-answer

    monkeypatch.setattr(routes, "intake_out", gone)
    failed = await client.post("/v1/consultations", headers=headers, json=intake())
    assert_problem(failed, 503)
    assert await count(container, ConsultationRow) == 1  # it did commit
    monkeypatch.setattr(routes, "intake_out", real)
    retried = await client.post("/v1/consultations", headers=headers, json=intake())
    assert retried.status_code == 201, retried.text
    assert await count(container, ConsultationRow) == 1  # no second consultation
    again = await client.post("/v1/consultations", headers=headers, json=intake())
    assert again.content == retried.content and again.headers["etag"] == retried.headers["etag"]
    assert retried.headers["location"] == f"/v1/consultations/{retried.json()['id']}"


async def test_a_message_whose_answer_was_lost_is_not_posted_twice(
    client, people, container, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    case = await open_consultation(client, person)
    path = f"/v1/consultations/{case['id']}/messages"
    headers = {**person.headers, **key()}
    body = {"body": "相手から新しい投稿がありました。"}

    import api.routes.consultations as routes

    real_out = routes.message_out

    def lost(message):  # type: ignore[no-untyped-def]
        raise database_gone()

    monkeypatch.setattr(routes, "message_out", lost)
    assert_problem(await client.post(path, headers=headers, json=body), 503)
    monkeypatch.setattr(routes, "message_out", real_out)
    before = await count(container, MessageRow)
    retried = await client.post(path, headers=headers, json=body)
    assert retried.status_code == 201, retried.text
    assert retried.json()["body"] == body["body"]
    assert await count(container, MessageRow) == before  # the retry made nothing new
    thread = (await client.get(path, headers=person.headers)).json()["items"]
    assert [m["body"] for m in thread].count(body["body"]) == 1


async def test_an_answer_that_could_not_be_stored_is_rebuilt_the_same(client, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    headers = {**person.headers, **key()}

    async def not_stored(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise database_gone()

    monkeypatch.setattr(idempotency, "store_answer", not_stored)
    first = await client.post("/v1/consultations", headers=headers, json=intake())
    assert first.status_code == 201  # the create stands
    monkeypatch.undo()
    again = await client.post("/v1/consultations", headers=headers, json=intake())
    assert again.status_code == 201
    assert json.loads(again.content) == json.loads(first.content)
    assert again.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize("bad", ["short", "x" * 201])
async def test_a_malformed_key_is_a_422_problem(client, people, bad: str) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    response = await client.post(
        "/v1/consultations", headers={**person.headers, "Idempotency-Key": bad}, json=intake()
    )
    assert_problem(response, 422)


def test_every_response_model_with_a_timestamp_sends_it_in_utc(app) -> None:  # type: ignore[no-untyped-def]
    """The rule holds for models yet to be written: any response model carrying a datetime derives from
    Output, whose serializer writes every timestamp as UTC with `Z`."""
    import typing
    from datetime import datetime

    from pydantic import BaseModel

    from api.schemas.common import Output, utc_timestamp

    def models(tp: Any) -> list[type[BaseModel]]:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return [tp]
        return [m for arg in typing.get_args(tp) for m in models(arg)]

    def has_datetime(tp: Any) -> bool:
        return tp is datetime or any(has_datetime(a) for a in typing.get_args(tp))

    seen: set[type[BaseModel]] = set()
    todo = [m for r in api_routes(app) for m in models(r.original_route.response_model)]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for field in model.model_fields.values():
            todo.extend(models(field.annotation))
            if has_datetime(field.annotation):
                assert issubclass(model, Output), model.__name__
    assert len(seen) > 20
    from datetime import timedelta, timezone

    jst = timezone(timedelta(hours=9))
    assert utc_timestamp(datetime(2026, 12, 4, 17, 0, tzinfo=jst)) == "2026-12-04T08:00:00Z"


@pytest.mark.parametrize(
    ("role", "path", "body", "table"),
    [
        (Role.admin, "/v1/users", {"email": "tanaka@madoguchi.example.jp", "role": "consultant"}, "app_user"),
        (
            Role.supervisor,
            "/v1/desks",
            {
                "code": "desk_retry",
                "name_ja": "再送テスト窓口",
                "name_en": "Retry desk",
                "handles_ja": "相談",
                "handles_en": "Advice",
                "phone": "03-0000-0000",
                "kind": "legal",
            },
            "desk_version",
        ),
        (
            Role.council,
            "/v1/council/proposals",
            {
                "section_code": "evidence",
                "proposed_body": "保存方法の説明を増やす案",
                "rationale": "相談が多いため",
            },
            "manual_proposal",
        ),
    ],
)
async def test_staff_creates_replay_too(client, people, container, role, path, body, table) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables import metadata

    staff = await people.create(role)
    headers = {**staff.headers, **key()}
    first = await client.post(path, headers=headers, json=body)
    assert first.status_code == 201, first.text
    rows = await count(container, metadata.tables[table])
    again = await client.post(path, headers=headers, json=body)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers.get("location") == first.headers.get("location")
    assert await count(container, metadata.tables[table]) == rows  # not a second one (nor a 409 "taken")


async def test_a_request_whose_answer_could_not_be_stored_is_rebuilt_from_its_row(
    client, people, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The guard named the table 'request' (it is 'consultation_request'): the created row was never noted, so
    such a retry was refused 409 instead of being answered from the row."""
    owner = await people.create()
    c = await open_consultation(client, owner)
    headers = {**owner.headers, **key()}
    body = {"kind": "platform_form", "target": {"platform": "x", "service": "x"}}

    async def not_stored(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise database_gone()

    monkeypatch.setattr(idempotency, "store_answer", not_stored)
    first = await client.post(f"/v1/consultations/{c['id']}/requests", headers=headers, json=body)
    assert first.status_code == 201, first.text
    monkeypatch.undo()
    again = await client.post(f"/v1/consultations/{c['id']}/requests", headers=headers, json=body)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    listed = (await client.get(f"/v1/consultations/{c['id']}/requests", headers=owner.headers)).json()
    assert len(listed["items"] if isinstance(listed, dict) else listed) == 1
