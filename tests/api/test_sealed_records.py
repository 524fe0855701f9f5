"""Issue 17 §1: letters (their content and the values a template was filled with), request reference numbers,
the council's finding comments and the 24-hour idempotency answers are stored sealed; each test reads the raw
row and finds no plaintext, reads the value back through the API as written, and a shredded case leaves them
empty or unreadable."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from domain.actors import Role
from infra.crypto import TEXT_PREFIX, opened_json
from infra.db.tables import CaseKeyRow, IdempotencyRow
from infra.db.tables_letters import LetterVersionRow
from infra.db.tables_quality import AnswerVersionRow, CouncilFindingRow
from infra.db.tables_requests import RequestRow
from tests.api.consultation_helpers import intake, open_consultation, take
from tests.api.test_letters import complete, evidence, letter
from tests.api.test_quality import PERIOD, closed_case
from tests.conftest import assert_problem

SENDER = "山田 花子"
REFERENCE = "XR-2026-120345"
COMMENT = "初回回答まで4日かかり、相談者の不安に触れていない。"


def sealed_json(stored: object) -> bool:
    return (
        isinstance(stored, dict)
        and set(stored) == {"sealed"}
        and str(stored["sealed"]).startswith(TEXT_PREFIX)
    )


async def a_letter(client, owner, cid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    ev = await evidence(client, owner, cid)
    return await letter(client, owner, cid, complete("removal_defamation_privacy", [ev]))


async def a_templated_draft(client, people, owner, cid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    staff = await people.create(Role.consultant)
    await take(client, staff, cid)
    suggestions = await client.get(f"/v1/consultations/{cid}/answer-suggestions", headers=staff.headers)
    platform = {s["template"]: s for s in suggestions.json()}["platform-request-guide"]
    draft = await client.post(
        f"/v1/consultations/{cid}/answers",
        headers=staff.headers,
        json={"body": platform["body"], "template": "platform-request-guide"},
    )
    assert draft.status_code == 201, draft.text
    assert draft.json()["versions"][0]["template_values"]["consulter_name"] == "山田花子"
    return draft.json()  # type: ignore[no-any-return]


async def a_request(client, owner, cid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    made = await client.post(
        f"/v1/consultations/{cid}/requests",
        headers=owner.headers,
        json={
            "kind": "platform_form",
            "target": {"platform": "x", "service": "x"},
            "reference_number": REFERENCE,
        },
    )
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


async def test_letter_content_is_sealed_at_rest_and_read_back_as_written(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner)
    made = await a_letter(client, owner, c["id"])
    read = await client.get(f"/v1/consultations/{c['id']}/letters/{made['id']}", headers=owner.headers)
    assert read.status_code == 200 and SENDER in read.text and "X Corp." in read.text
    async with container.sessions() as db:
        [stored] = list((await db.execute(select(LetterVersionRow.content))).scalars())
    raw = json.dumps(stored, ensure_ascii=False)
    assert sealed_json(stored)
    for plain in (SENDER, "hanako@example.jp", "X Corp.", "x.com", "anon_account"):
        assert plain not in raw, plain


async def test_letters_stored_before_sealing_are_read_as_they_were(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner)
    made = await a_letter(client, owner, c["id"])
    before = (
        await client.get(f"/v1/consultations/{c['id']}/letters/{made['id']}", headers=owner.headers)
    ).json()
    async with container.sessions() as db:
        version_id, stored = (await db.execute(select(LetterVersionRow.id, LetterVersionRow.content))).one()
    async with container.consultations.uow() as uow:
        key = await uow.case_keys.for_consultation(uuid.UUID(c["id"]))
    plain = opened_json(key, stored, "letter_version.content", version_id)
    assert plain["sender"]["name"] == SENDER  # as it was stored before sealing
    async with container.sessions() as db:
        await db.execute(
            update(LetterVersionRow).where(LetterVersionRow.id == version_id).values(content=plain)
        )
        await db.commit()
    after = (
        await client.get(f"/v1/consultations/{c['id']}/letters/{made['id']}", headers=owner.headers)
    ).json()
    assert after == before


async def test_template_values_are_sealed_at_rest(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    assert (
        await client.patch("/v1/me", headers=owner.headers, json={"display_name": "山田花子"})
    ).status_code == 200
    c = await open_consultation(client, owner)
    await a_templated_draft(client, people, owner, c["id"])
    async with container.sessions() as db:
        [stored] = list((await db.execute(select(AnswerVersionRow.template_values))).scalars())
    assert sealed_json(stored) and "山田花子" not in json.dumps(stored, ensure_ascii=False)


async def test_reference_numbers_are_sealed_at_rest(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner)
    made = await a_request(client, owner, c["id"])
    assert made["reference_number"] == REFERENCE
    listed = (await client.get(f"/v1/consultations/{c['id']}/requests", headers=owner.headers)).json()
    assert REFERENCE in json.dumps(listed)
    async with container.sessions() as db:
        stored = (await db.execute(select(RequestRow.reference_number))).scalar_one()
    assert stored.startswith(TEXT_PREFIX) and REFERENCE not in stored and "120345" not in stored
    # One stored before (plain) is read as it was.
    async with container.sessions() as db:
        await db.execute(update(RequestRow).values(reference_number="OLD-1"))
        await db.commit()
    listed = (await client.get(f"/v1/consultations/{c['id']}/requests", headers=owner.headers)).json()
    assert "OLD-1" in json.dumps(listed)


async def test_finding_comments_are_sealed_with_the_sampled_case_key(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    supervisor = await people.create(Role.supervisor)
    staff = await people.create(Role.consultant)
    council = await people.create(Role.council)
    case = await closed_case(client, people, staff)
    sample = (
        await client.post(
            "/v1/council/samples",
            headers=supervisor.headers,
            json={"period_from": PERIOD["from"], "period_to": PERIOD["to"], "size": 5},
        )
    ).json()
    assert sample["items"] == ["S001"]
    finding = await client.post(
        f"/v1/council/samples/{sample['id']}/items/S001/findings",
        headers=council.headers,
        json={"accuracy": 4, "timeliness": 2, "tone": 5, "referral_fit": 3, "comment": COMMENT},
    )
    assert finding.status_code == 201, finding.text
    url = f"/v1/council/samples/{sample['id']}/findings"
    findings = (await client.get(url, headers=supervisor.headers)).json()["items"]
    assert [f["comment"] for f in findings] == [COMMENT]
    async with container.sessions() as db:
        stored = (await db.execute(select(CouncilFindingRow.comment))).scalar_one()
    assert stored.startswith(TEXT_PREFIX) and "初回回答" not in stored
    # Shredded, the case takes the comment with it; the scores stay for the council's counts.
    clock.advance(timedelta(days=1096))
    supervisor = await people.sign_in(supervisor.id, supervisor.email, supervisor.role)
    assert (await container.retention.apply()).shredded >= 1
    async with container.sessions() as db:
        row = (await db.execute(select(CouncilFindingRow))).scalar_one()
        key = await db.get(CaseKeyRow, uuid.UUID(case["id"]))
    assert row.comment is None and row.timeliness == 2 and key is not None and key.wrapped is None
    findings = (await client.get(url, headers=supervisor.headers)).json()["items"]
    assert [(f["timeliness"], f["comment"]) for f in findings] == [(2, None)]


async def test_idempotent_answers_are_sealed_and_replayed_as_given(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    narrative = "元交際相手が私の写真を掲示板に貼り、勤務先の名前まで書いています。"
    headers = {**owner.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = intake(narrative=narrative)
    first = await client.post("/v1/consultations", headers=headers, json=body)
    assert first.status_code == 201, first.text
    async with container.sessions() as db:
        row = (await db.execute(select(IdempotencyRow))).scalar_one()
    assert row.response_body is not None and row.response_body.startswith(TEXT_PREFIX)
    assert "掲示板" not in row.response_body and narrative not in row.response_body
    again = await client.post("/v1/consultations", headers=headers, json=body)
    assert again.status_code == 201 and again.content == first.content
    # An answer that no longer opens (another master secret) is rebuilt from the row the create made.
    async with container.sessions() as db:
        await db.execute(update(IdempotencyRow).values(response_body=TEXT_PREFIX + "AAAA"))
        await db.commit()
    rebuilt = await client.post("/v1/consultations", headers=headers, json=body)
    assert rebuilt.status_code == 201 and json.loads(rebuilt.content) == json.loads(first.content)


async def test_a_shredded_case_leaves_its_letters_templates_references_and_answers_unreadable(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    assert (
        await client.patch("/v1/me", headers=owner.headers, json={"display_name": "山田花子"})
    ).status_code == 200
    c = await open_consultation(client, owner)
    made = await a_letter(client, owner, c["id"])
    await a_templated_draft(client, people, owner, c["id"])
    await a_request(client, owner, c["id"])
    message = await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"body": "加害者の投稿が増えました"},
    )
    assert message.status_code == 201, message.text
    async with container.sessions() as db:
        assert (await db.execute(select(IdempotencyRow))).scalars().all()
    assert (
        await client.post(f"/v1/consultations/{c['id']}/withdraw", headers=owner.headers)
    ).status_code == 200
    clock.advance(timedelta(days=366))
    owner = await people.sign_in(owner.id, owner.email, owner.role)
    assert (await container.retention.apply()).shredded == 1
    assert_problem(
        await client.get(f"/v1/consultations/{c['id']}/letters/{made['id']}", headers=owner.headers), 404
    )
    async with container.sessions() as db:
        contents = list((await db.execute(select(LetterVersionRow.content))).scalars())
        values = list((await db.execute(select(AnswerVersionRow.template_values))).scalars())
        references = list((await db.execute(select(RequestRow.reference_number))).scalars())
        answers = list((await db.execute(select(IdempotencyRow))).scalars())
    assert contents == [{}] and values == [None] and references == [None] and answers == []
