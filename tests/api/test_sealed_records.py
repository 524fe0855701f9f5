"""Issue 17 §1: letters (their content and the values a template was filled with), request reference numbers,
the council's finding comments, the 24-hour idempotency answers, the advice of letter and answer reviews, the
notes of request status changes, a request's target name, referral reasons and the reasons of upload slots and
legal holds are stored sealed; each test reads the raw row and finds no plaintext, reads the value back through
the API as written, and a shredded case leaves them empty or unreadable; a ciphertext copied to another case's
row does not open."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from domain.actors import Role
from domain.case_keys import CaseKey
from domain.errors import NotFound
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


# -- what staff and people write about a case's steps (issue 17 §1): reviews' advice, request event notes and
# target names, referral reasons, upload-slot and legal-hold reasons ------------------------------------------

LETTER_ADVICE = "投稿者は元交際相手の可能性があります。本文の推測は削ってください。"
ANSWER_ADVICE = "元交際相手による投稿と断定せず、法テラスの案内を添えてください。"
EVENT_NOTE = "投稿者は元交際相手の可能性があります。フォームから送信しました。"
TARGET_NAME = "さくらレンタル掲示板(元交際相手が使っている)"
REFERRAL_REASON = (
    "投稿者は元交際相手の可能性があり、ストーカー規制法の相談のため警察相談専用電話をご案内します。"
)
SLOT_REASON = "ご本人が、元交際相手による投稿の画像そのものを証拠として預けたいと強く希望されたため"
LEGAL_HOLD_REASON = "投稿者は元交際相手の可能性があります。代理人弁護士からの証拠保全依頼(令和8年)"
PLAIN = (
    LETTER_ADVICE,
    ANSWER_ADVICE,
    EVENT_NOTE,
    TARGET_NAME,
    REFERRAL_REASON,
    SLOT_REASON,
    LEGAL_HOLD_REASON,
)
FRAGMENTS = ("元交際相手", "投稿者", "さくら", "警察", "弁護士", "証拠")


async def a_case_with_notes(client, people, owner, supervisor) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """A hash-only case (an adult's intimate images) with one of each: a letter reviewed with advice, an answer
    returned with advice, a request with a target name moved with a note, a referral, an upload slot and a
    legal hold. Returns the ids, and the people who read them."""
    from tests.api.test_intimate_images import SEXUAL, add_item

    c = await open_consultation(client, owner, **SEXUAL)
    cid = c["id"]
    base = f"/v1/consultations/{cid}"
    consultant = await people.create(Role.consultant)
    advisor = await people.create(Role.legal_advisor)
    await take(client, consultant, cid)
    # A letter the person sends to review; the assigned consultant approves it with advice.
    made = await a_letter(client, owner, cid)
    assert (
        await client.post(f"{base}/letters/{made['id']}/submit", headers=owner.headers)
    ).status_code == 200
    reviewed = await client.post(
        f"/v1/letter-reviews/{made['id']}",
        headers=consultant.headers,
        json={"decision": "approved", "advice": LETTER_ADVICE},
    )
    assert reviewed.status_code == 200, reviewed.text
    # An answer that needs the legal advisor's review, returned with advice.
    draft = await client.post(
        f"{base}/answers",
        headers=consultant.headers,
        json={"body": "発信者情報開示命令の申立てをご検討ください。", "template": "disclosure-guide"},
    )
    assert draft.status_code == 201, draft.text
    did = draft.json()["id"]
    assert (await client.post(f"{base}/answers/{did}/submit", headers=consultant.headers)).status_code == 200
    returned = await client.post(
        f"/v1/reviews/{did}/return", headers=advisor.headers, json={"advice": ANSWER_ADVICE}
    )
    assert returned.status_code == 200, returned.text
    # A request to a site named in words, sent with a note.
    request = await client.post(
        f"{base}/requests",
        headers=owner.headers,
        json={"kind": "platform_form", "target": {"name": TARGET_NAME}},
    )
    assert request.status_code == 201, request.text
    rid = request.json()["id"]
    moved = await client.post(
        f"{base}/requests/{rid}/status", headers=owner.headers, json={"status": "sent", "note": EVENT_NOTE}
    )
    assert moved.status_code == 200, moved.text
    # A referral the consultant proposes with a reason.
    referral = await client.post(
        f"{base}/referrals",
        headers=consultant.headers,
        json={"desk_code": "houterasu", "reason": REFERRAL_REASON},
    )
    assert referral.status_code == 201, referral.text
    # A supervisor's upload slot on an evidence item, and a legal hold on the case.
    item = await add_item(client, owner, cid, url="https://example-uploader.jp/v/abc123")
    slot = await client.post(
        f"{base}/evidence/{item['id']}/upload-slot", headers=supervisor.headers, json={"reason": SLOT_REASON}
    )
    assert slot.status_code == 200, slot.text
    hold = await client.put(
        f"{base}/legal-hold", headers=supervisor.headers, json={"reason": LEGAL_HOLD_REASON}
    )
    assert hold.status_code == 201, hold.text
    return {
        "id": cid,
        "letter": made["id"],
        "draft": did,
        "request": rid,
        "referral": referral.json()["id"],
        "evidence": item["id"],
        "consultant": consultant,
        "advisor": advisor,
    }


def sealed_columns() -> dict[str, tuple[Any, str]]:
    """The columns this section seals: the name they are sealed under, their table and attribute."""
    from infra.db.tables import EvidenceRow, LegalHoldRow, ReferralRow
    from infra.db.tables_letters import LetterReviewRow
    from infra.db.tables_quality import AnswerReviewRow
    from infra.db.tables_requests import RequestEventRow

    return {
        "letter_review.advice": (LetterReviewRow, "advice"),
        "answer_review.advice": (AnswerReviewRow, "advice"),
        "request_event.note": (RequestEventRow, "note"),
        "request.target_name": (RequestRow, "target_name"),
        "referral.reason": (ReferralRow, "reason"),
        "evidence.upload_slot_reason": (EvidenceRow, "upload_slot_reason"),
        "legal_hold.reason": (LegalHoldRow, "reason"),
    }


async def stored_notes(container, cid: str) -> dict[str, tuple[uuid.UUID, str | None]]:  # type: ignore[no-untyped-def]
    """The raw values of the columns this section seals, for one case, each with its row's id."""
    from infra.db.tables import EvidenceRow, LegalHoldRow, ReferralRow
    from infra.db.tables_letters import LetterReviewRow, LetterRow
    from infra.db.tables_quality import AnswerDraftRow, AnswerReviewRow
    from infra.db.tables_requests import RequestEventRow

    case_id = uuid.UUID(cid)
    letters = select(LetterRow.id).where(LetterRow.consultation_id == case_id)
    drafts = select(AnswerDraftRow.id).where(AnswerDraftRow.consultation_id == case_id)
    requests = select(RequestRow.id).where(RequestRow.consultation_id == case_id)
    queries = {
        "letter_review.advice": select(LetterReviewRow.id, LetterReviewRow.advice).where(
            LetterReviewRow.letter_id.in_(letters)  # type: ignore[attr-defined]
        ),
        "answer_review.advice": select(AnswerReviewRow.id, AnswerReviewRow.advice).where(
            AnswerReviewRow.draft_id.in_(drafts)  # type: ignore[attr-defined]
        ),
        "request_event.note": select(RequestEventRow.id, RequestEventRow.note).where(
            RequestEventRow.request_id.in_(requests),  # type: ignore[attr-defined]
            RequestEventRow.to_status == "sent",
        ),
        "request.target_name": select(RequestRow.id, RequestRow.target_name).where(
            RequestRow.consultation_id == case_id
        ),
        "referral.reason": select(ReferralRow.id, ReferralRow.reason).where(
            ReferralRow.consultation_id == case_id
        ),
        "evidence.upload_slot_reason": select(EvidenceRow.id, EvidenceRow.upload_slot_reason).where(
            EvidenceRow.consultation_id == case_id,
            EvidenceRow.upload_slot_opened_by.is_not(None),  # type: ignore[union-attr]
        ),
        "legal_hold.reason": select(LegalHoldRow.id, LegalHoldRow.reason).where(
            LegalHoldRow.consultation_id == case_id
        ),
    }
    async with container.sessions() as db:
        return {column: tuple((await db.execute(q)).one()) for column, q in queries.items()}  # type: ignore[misc]


async def test_review_advice_request_notes_referral_slot_and_hold_reasons_are_sealed_at_rest(
    client, people, container
) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    case = await a_case_with_notes(client, people, owner, supervisor)
    base = f"/v1/consultations/{case['id']}"
    consultant = case["consultant"]
    # Read back exactly as written, by those who read them.
    letter_read = (await client.get(f"{base}/letters/{case['letter']}", headers=owner.headers)).json()
    assert [r["advice"] for r in letter_read["reviews"]] == [LETTER_ADVICE]
    drafts = (await client.get(f"{base}/answers", headers=consultant.headers)).json()
    assert ANSWER_ADVICE in json.dumps(drafts, ensure_ascii=False)
    request = (await client.get(f"{base}/requests/{case['request']}", headers=owner.headers)).json()
    assert request["target"]["name"] == TARGET_NAME
    assert [h["note"] for h in request["history"]] == [None, EVENT_NOTE]
    listed = (await client.get(f"{base}/requests", headers=owner.headers)).json()["items"]
    assert [r["target"]["name"] for r in listed] == [TARGET_NAME]
    referrals = (await client.get(f"{base}/referrals", headers=owner.headers)).json()["items"]
    assert [r["reason"] for r in referrals] == [REFERRAL_REASON]
    item = (await client.get(f"{base}/evidence/{case['evidence']}", headers=supervisor.headers)).json()
    assert item["upload_slot"]["reason"] == SLOT_REASON
    hold = (await client.get(f"{base}/legal-hold", headers=supervisor.headers)).json()
    assert hold["reason"] == LEGAL_HOLD_REASON
    # At rest, none of it is there in the clear.
    stored = {column: value for column, (_, value) in (await stored_notes(container, case["id"])).items()}
    assert all(v and v.startswith(TEXT_PREFIX) for v in stored.values()), stored
    raw = json.dumps(stored, ensure_ascii=False)
    for plain in (*PLAIN, *FRAGMENTS):
        assert plain not in raw, plain
    # Rows stored before this release hold their text in the clear: read as they were stored.
    await write_plain(container, case["id"], "（以前の記録）")
    letter_read = (await client.get(f"{base}/letters/{case['letter']}", headers=owner.headers)).json()
    drafts = (await client.get(f"{base}/answers", headers=consultant.headers)).json()
    request = (await client.get(f"{base}/requests/{case['request']}", headers=owner.headers)).json()
    referrals = (await client.get(f"{base}/referrals", headers=owner.headers)).json()["items"]
    item = (await client.get(f"{base}/evidence/{case['evidence']}", headers=supervisor.headers)).json()
    hold = (await client.get(f"{base}/legal-hold", headers=supervisor.headers)).json()
    assert [r["advice"] for r in letter_read["reviews"]] == ["letter_review.advice（以前の記録）"]
    assert "answer_review.advice（以前の記録）" in json.dumps(drafts, ensure_ascii=False)
    assert request["target"]["name"] == "request.target_name（以前の記録）"
    assert request["history"][-1]["note"] == "request_event.note（以前の記録）"
    assert [r["reason"] for r in referrals] == ["referral.reason（以前の記録）"]
    assert item["upload_slot"]["reason"] == "evidence.upload_slot_reason（以前の記録）"
    assert hold["reason"] == "legal_hold.reason（以前の記録）"


async def write_plain(container, cid: str, suffix: str) -> None:  # type: ignore[no-untyped-def]
    """Each sealed column of the case's rows set to its name and the suffix, in the clear (as before sealing)."""
    stored = await stored_notes(container, cid)
    async with container.sessions() as db:
        for column, (table, name) in sealed_columns().items():
            row_id = stored[column][0]
            await db.execute(update(table).where(table.id == row_id).values({name: column + suffix}))
        await db.commit()


async def test_a_sealed_note_copied_to_another_case_does_not_open(client, people, container) -> None:  # type: ignore[no-untyped-def]
    from domain.policy import All

    supervisor = await people.create(Role.supervisor)
    a = await a_case_with_notes(client, people, await people.create(), supervisor)
    b = await a_case_with_notes(client, people, await people.create(), supervisor)
    b_id = uuid.UUID(b["id"])
    sealed, own = await stored_notes(container, a["id"]), await stored_notes(container, b["id"])

    def reads(uow):  # type: ignore[no-untyped-def]
        """Every read of case b that opens one of the columns, by column."""
        return {
            "letter_review.advice": lambda: uow.letters.get(uuid.UUID(b["letter"]), All()),
            "answer_review.advice": lambda: uow.answers.get(uuid.UUID(b["draft"]), All()),
            "request_event.note": lambda: uow.requests.events([uuid.UUID(b["request"])], All()),
            "request.target_name": lambda: uow.requests.get([b_id], uuid.UUID(b["request"]), All()),
            "referral.reason": lambda: uow.referrals.get(b_id, uuid.UUID(b["referral"]), All()),
            "evidence.upload_slot_reason": lambda: uow.consultations.get_evidence(
                b_id, uuid.UUID(b["evidence"]), All()
            ),
            "legal_hold.reason": lambda: uow.retention.hold(b_id),
        }

    tables = sealed_columns()
    assert set(tables) == set(sealed) == set(own)
    for column, (table, name) in tables.items():
        async with container.consultations.uow() as uow:
            assert await reads(uow)[column]() is not None  # b's own value opens
        row_id, original = own[column]
        async with container.sessions() as db:
            await db.execute(update(table).where(table.id == row_id).values({name: sealed[column][1]}))
            await db.commit()
        async with container.consultations.uow() as uow:
            with pytest.raises(ValueError):
                await reads(uow)[column]()
        async with container.sessions() as db:
            await db.execute(update(table).where(table.id == row_id).values({name: original}))
            await db.commit()


async def test_a_shredded_case_leaves_its_advice_notes_and_reasons_unreadable(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    from infra.crypto import derived_kek, text_context, unseal
    from infra.db.tables import EvidenceRow, LegalHoldRow, ReferralRow
    from infra.db.tables_letters import LetterReviewRow
    from infra.db.tables_quality import AnswerReviewRow
    from infra.db.tables_requests import RequestEventRow

    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    case = await a_case_with_notes(client, people, owner, supervisor)
    cid, case_id = case["id"], uuid.UUID(case["id"])
    backup = await stored_notes(container, cid)  # as a backup taken before shredding holds them
    # The hold keeps the case; once lifted, the withdrawn case's retention runs out and it is shredded.
    assert (await client.post(f"/v1/consultations/{cid}/withdraw", headers=owner.headers)).status_code == 200
    clock.advance(timedelta(days=366))
    supervisor = await people.sign_in(supervisor.id, supervisor.email, supervisor.role)
    assert (await container.retention.apply()).shredded == 0
    lifted = await client.delete(f"/v1/consultations/{cid}/legal-hold", headers=supervisor.headers)
    assert lifted.status_code == 204, lifted.text
    assert (await container.retention.apply()).shredded == 1
    # The rows keep nothing readable: emptied; the lifted hold keeps who and when, not why.
    async with container.sessions() as db:
        key = await db.get(CaseKeyRow, case_id)
        left = {
            "letter_review.advice": list((await db.execute(select(LetterReviewRow.advice))).scalars()),
            "answer_review.advice": list((await db.execute(select(AnswerReviewRow.advice))).scalars()),
            "request_event.note": list((await db.execute(select(RequestEventRow.note))).scalars()),
            "request.target_name": list((await db.execute(select(RequestRow.target_name))).scalars()),
            "referral.reason": list((await db.execute(select(ReferralRow.reason))).scalars()),
            "evidence.upload_slot_reason": list(
                (await db.execute(select(EvidenceRow.upload_slot_reason))).scalars()
            ),
        }
        hold = (await db.execute(select(LegalHoldRow))).scalar_one()
    assert key is not None and key.wrapped is None
    assert left == {
        "letter_review.advice": [None],
        "answer_review.advice": [None],
        "request_event.note": [None, None],
        "request.target_name": [None],
        "referral.reason": [""],
        "evidence.upload_slot_reason": [None, None],  # the letter's item and the slot's
    }
    assert hold.lifted_at is not None and hold.placed_by == supervisor.id and hold.reason == ""
    # The copies in a backup open with nothing left: the case has no key, and neither the KEK nor the master
    # secret opens them.
    async with container.consultations.uow() as uow:
        with pytest.raises(NotFound):
            await uow.case_keys.for_consultation(case_id)
    candidates = (derived_kek(container.settings.signing_key), container.settings.signing_key[:32])
    for column, (row_id, value) in backup.items():
        assert value is not None and value.startswith(TEXT_PREFIX)
        sealed_bytes = base64.urlsafe_b64decode(value[len(TEXT_PREFIX) :])
        for candidate in candidates:
            context = text_context(CaseKey(case_id, candidate), column, row_id)
            with pytest.raises(ValueError):
                unseal(candidate, sealed_bytes, context=context)
    # And through the service the case is simply gone.
    assert_problem(await client.get(f"/v1/consultations/{cid}/legal-hold", headers=supervisor.headers), 404)
