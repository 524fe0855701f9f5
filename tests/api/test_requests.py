"""Issue 15 §1, §2, §5: requests tracked under a consultation, clocks from the rules, reminders through the
outbox, the overdue view, and consultations that follow earlier ones. The pinned clock drives every date."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from domain.actors import Role
from domain.calendar import JST
from infra.db.custody import SqlCustody
from tests.api.consultation_helpers import answer, etag, open_consultation, random_id, take
from tests.conftest import assert_problem
from tests.pdf_tools import pdf_text

START = datetime(2026, 12, 2, 10, 0, tzinfo=JST)  # a Wednesday morning


async def later(clock, people, instant: datetime, *persons):  # type: ignore[no-untyped-def]
    """Move the pinned clock on; access tokens live minutes, so everyone signs in again."""
    clock.set(instant)
    return [await people.sign_in(p.id, p.email, p.role) for p in persons]


def base(cid: str) -> str:
    return f"/v1/consultations/{cid}"


async def add_evidence(client, person, cid: str, posted: str, url: str) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post(
        base(cid) + "/evidence",
        headers=person.headers,
        json={
            "url": url,
            "platform": "x",
            "posted_at": posted,
            "poster_account": "@tokumei_account",
            "excerpt": "〇〇（実名）は会社の金を横領している",
            "context_captured": True,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def create_request(client, person, cid: str, **body) -> dict:  # type: ignore[no-untyped-def]
    payload = {"kind": "platform_form", "target": {"platform": "x", "service": "x"}, **body}
    response = await client.post(base(cid) + "/requests", headers=person.headers, json=payload)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def move(client, person, cid: str, rid: str, status: str, **extra):  # type: ignore[no-untyped-def]
    return await client.post(
        f"{base(cid)}/requests/{rid}/status", headers=person.headers, json={"status": status, **extra}
    )


async def test_the_whole_walk_from_intake_to_closing(client, people, container, mailbox, clock) -> None:
    """intake with two evidence items → a removal request to a designated service, built as a letter and as
    form text → sent → no answer in 7 days → reminder mailed and a next step suggested → a disclosure request
    before the log clock runs out → closed."""
    clock.set(START)
    owner = await people.create()
    staff = await people.create(Role.consultant)
    supervisor = await people.create(Role.supervisor)
    c = await open_consultation(client, owner)
    cid = c["id"]
    assert c["time_to_act_at"] is None  # no evidence yet: no clock, not a guess

    first = await add_evidence(
        client,
        owner,
        cid,
        "2026-11-20T21:15:00+09:00",
        "https://x.com/tokumei_account/status/1859000000000000001",
    )
    second = await add_evidence(
        client,
        owner,
        cid,
        "2026-11-25T08:00:00+09:00",
        "https://x.com/tokumei_account/status/1859000000000000002",
    )
    # Posted 20 November (JST): about three months of logs, to the end of 20 February, Japan time.
    assert first["time_to_act_at"] == "2027-02-20T15:00:00Z"
    assert second["time_to_act_at"] == "2027-02-25T15:00:00Z"
    case = (await client.get(base(cid), headers=owner.headers)).json()
    assert case["time_to_act_at"] == "2027-02-20T15:00:00Z"  # the earliest
    await take(client, staff, cid)
    queue = (await client.get("/v1/consultations", headers=staff.headers)).json()["items"]
    assert [q["time_to_act_at"] for q in queue if q["id"] == cid] == ["2027-02-20T15:00:00Z"]

    # A removal request through X's form: X is a designated service.
    removal = await create_request(
        client,
        owner,
        cid,
        evidence_ids=[first["id"], second["id"]],
        channel="Xのヘルプセンターの報告フォーム",
        notes="実名と勤務先を挙げた投稿2件の削除を求めます。",
    )
    assert removal["status"] == "drafted" and removal["target"]["designated"] is True
    assert removal["clocks"] == []  # not sent: the response clock has not started
    assert removal["allowed_statuses"] == ["sent", "withdrawn"]
    rid = removal["id"]

    # The request's content, built from the two evidence items: the standard removal letter, and the same as
    # text for each field of X's web form, within its limits; the request points to the letter it is sent as.
    made = await client.post(
        f"{base(cid)}/letters",
        headers=owner.headers,
        json={
            "kind": "removal_defamation_privacy",
            "recipient": "X Corp.",
            "evidence_ids": [first["id"], second["id"]],
            "choices": {"right": ["名誉権", "プライバシー権"]},
            "texts": {"reason": "実名と勤務先を挙げて「横領している」と書かれましたが、事実ではありません。"},
        },
    )
    assert made.status_code == 201, made.text
    letter_id = made.json()["id"]
    pdf = await client.get(f"{base(cid)}/letters/{letter_id}/pdf", headers=owner.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    flat = "".join(pdf_text(pdf.content)).replace("\n", "")
    assert first["url"] in flat and second["url"] in flat and "侵害情報の通知書" in flat
    form = await client.get(
        f"{base(cid)}/letters/{letter_id}/form-text", headers=owner.headers, params={"service": "x"}
    )
    assert form.status_code == 200, form.text
    form_text = "".join(f["text"] for f in form.json()["fields"])
    assert first["url"] in form_text and "横領している" in form_text
    linked = await client.patch(
        f"{base(cid)}/requests/{rid}",
        headers={**owner.headers, "If-Match": '"v1"'},
        json={"letter_id": letter_id},
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["letter_id"] == letter_id
    # A letter id from someone else's consultation is refused as if it did not exist.
    stranger = await people.create()
    theirs_case = await open_consultation(client, stranger)
    theirs = await add_evidence(
        client, stranger, theirs_case["id"], "2026-11-20T21:15:00+09:00", first["url"]
    )
    their_letter = await client.post(
        f"{base(theirs_case['id'])}/letters",
        headers=stranger.headers,
        json={"kind": "removal_defamation_privacy", "recipient": "X Corp.", "evidence_ids": [theirs["id"]]},
    )
    assert their_letter.status_code == 201, their_letter.text
    refused = await client.patch(
        f"{base(cid)}/requests/{rid}",
        headers={**owner.headers, "If-Match": linked.headers["etag"]},
        json={"letter_id": their_letter.json()["id"]},
    )
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_letter"
    assert their_letter.json()["id"] not in refused.text

    sent = await move(client, owner, cid, rid, "sent", note="フォームから送信")
    assert sent.status_code == 200, sent.text
    [response_clock] = sent.json()["clocks"]
    assert response_clock["rule"] == "designated_platform_response"
    assert response_clock["counting"] == "calendar" and response_clock["basis"] == "statute"
    assert response_clock["source"].startswith("https://") and response_clock["checked"] == "2026-12-01"
    # Sent on 2 December: the first day does not count, seven days end at 24:00 JST on 9 December.
    assert response_clock["due_at"] == "2026-12-09T15:00:00Z"
    assert response_clock["remind_at"] == "2026-12-07T15:00:00Z"
    await client.patch(
        f"{base(cid)}/requests/{rid}",
        headers={**owner.headers, "If-Match": sent.headers["etag"]},
        json={"reference_number": "XR-2026-120345"},
    )

    # Nothing is due yet: the worker sends nothing.
    await container.worker.run_once()
    assert not mailbox.to(owner.email)

    # Two days before the end: one reminder, by mail, without case content; a second run sends no other.
    owner, staff, supervisor = await later(
        clock, people, datetime(2026, 12, 8, 9, 0, tzinfo=JST), owner, staff, supervisor
    )
    await container.worker.run_once()
    await container.worker.run_once()
    mails = mailbox.to(owner.email)
    assert len(mails) == 1
    text = mailbox.body(mails[0])
    assert "期限が近づいています" in text and cid in text
    assert "横領" not in text and "XR-2026" not in text and "X" not in mails[0]["Subject"]

    # No answer in 7 days: the overdue notice, once; the request suggests the next steps from the chart.
    owner, staff, supervisor = await later(
        clock, people, datetime(2026, 12, 10, 9, 0, tzinfo=JST), owner, staff, supervisor
    )
    await container.worker.run_once()
    await container.worker.run_once()
    mails = mailbox.to(owner.email)
    assert len(mails) == 2 and "期限が過ぎました" in mailbox.body(mails[1])
    got = await client.get(f"{base(cid)}/requests/{rid}", headers=owner.headers)
    assert got.status_code == 200, got.text
    detail = got.json()
    assert detail["overdue"] is True and detail["clocks"][0]["overdue"] is True
    steps = {s["outcome"]: {d["code"] for d in s["desks"]} for s in detail["next_steps"]}
    assert "sia_hotline" in steps["o_delegate"] and "moj_internet_jinken" in steps["o_delegate"]
    assert "bar_association" in steps["o_lawyer"]
    assert all(d["phone"] or d["url"] for s in detail["next_steps"] for d in s["desks"])

    # Staff see it in the overdue view.
    overdue = (await client.get("/v1/clocks/overdue", headers=supervisor.headers)).json()
    assert [(i["clock"]["rule"], i["request"]["id"]) for i in overdue["items"]] == [
        ("designated_platform_response", rid)
    ]
    assert overdue["items"][0]["consultation"]["id"] == cid

    # The consulter records that no answer came; the assigned consultant advises.
    no_answer = await move(client, owner, cid, rid, "no_answer")
    assert no_answer.status_code == 200
    assert no_answer.json()["next_steps"] and no_answer.json()["clocks"][0]["settled"] is True
    advised = await client.post(
        f"{base(cid)}/requests/{rid}/advice",
        headers=staff.headers,
        json={"note": "法務局の人権相談と、誹謗中傷ホットラインへの依頼を検討しましょう。"},
    )
    assert advised.status_code == 200, advised.text
    seen = (await client.get(f"{base(cid)}/requests/{rid}", headers=owner.headers)).json()
    assert seen["advice"].startswith("法務局")
    assert [(h["from_status"], h["to_status"]) for h in seen["history"]] == [
        (None, "drafted"),
        ("drafted", "sent"),
        ("sent", "no_answer"),
    ]
    assert seen["reference_number"] == "XR-2026-120345"
    overdue = (await client.get("/v1/clocks/overdue", headers=supervisor.headers)).json()
    assert overdue["items"] == []

    # A disclosure request to the mobile carrier before the log clock runs out: the logs' clocks settle.
    disclosure = await create_request(
        client,
        owner,
        cid,
        kind="disclosure_request",
        target={"name": "株式会社サンプルモバイル"},
        evidence_ids=[first["id"], second["id"]],
        channel="郵送(発信者情報開示請求書)",
    )
    assert disclosure["target"]["designated"] is False and disclosure["clocks"] == []
    assert (await move(client, owner, cid, disclosure["id"], "sent")).status_code == 200
    clocks = (await client.get(base(cid) + "/clocks", headers=owner.headers)).json()["items"]
    logs = [k for k in clocks if k["rule"] == "access_log_retention"]
    assert len(logs) == 2 and all(k["settled"] and k["approximate"] for k in logs)
    case = (await client.get(base(cid), headers=owner.headers)).json()
    assert case["time_to_act_at"] is None

    # Closed.
    await answer(client, staff, cid, people=people)
    closed = await client.post(
        base(cid) + "/close", headers={**staff.headers, "If-Match": await etag(client, staff, cid)}
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (await container.worker.run_once()) >= 0
    assert len(mailbox.to(owner.email)) == 3  # + the answer notice; no further clock mail


async def test_evidence_of_another_consultation_is_refused_like_an_unknown_id(client, people) -> None:
    """Attack: a consulter names someone else's evidence id (or one of their own other case) in a request."""
    owner, other = await people.create(), await people.create()
    mine = await open_consultation(client, owner)
    theirs = await open_consultation(client, other)
    foreign = await add_evidence(
        client, other, theirs["id"], "2026-11-20T21:15:00+09:00", "https://x.com/a/status/1"
    )
    own_other_case = await open_consultation(client, owner)
    elsewhere = await add_evidence(
        client, owner, own_other_case["id"], "2026-11-20T21:15:00+09:00", "https://x.com/b/status/2"
    )
    answers = []
    for evidence_id in (foreign["id"], elsewhere["id"], random_id()):
        response = await client.post(
            base(mine["id"]) + "/requests",
            headers=owner.headers,
            json={
                "kind": "removal_letter",
                "target": {"name": "さくらサーバー"},
                "evidence_ids": [evidence_id],
            },
        )
        body = assert_problem(response, 422, "unknown_evidence")
        answers.append({k: v for k, v in body.items() if k not in ("instance", "request_id")})
        assert evidence_id not in response.text
    assert answers[0] == answers[1] == answers[2]  # the same answer: nothing learnt about what exists
    # Linking it as a reply is refused the same way.
    r = await create_request(client, owner, mine["id"])
    reply = await client.post(
        f"{base(mine['id'])}/requests/{r['id']}/replies",
        headers=owner.headers,
        json={"evidence_id": foreign["id"]},
    )
    assert_problem(reply, 422, "unknown_evidence")


async def test_only_the_owner_and_the_case_staff_see_requests(client, people) -> None:
    owner, other = await people.create(), await people.create()
    staff, bystander = await people.create(Role.consultant), await people.create(Role.consultant)
    advisor = await people.create(Role.legal_advisor)
    c = await open_consultation(client, owner)
    r = await create_request(client, owner, c["id"])
    path = f"{base(c['id'])}/requests/{r['id']}"
    # Another consulter: 404 everywhere, never a hint.
    for method, url, body in (
        ("GET", path, None),
        ("GET", base(c["id"]) + "/requests", None),
        ("POST", path + "/status", {"status": "sent"}),
        ("POST", base(c["id"]) + "/requests", {"kind": "platform_form", "target": {"name": "example"}}),
        ("GET", base(c["id"]) + "/clocks", None),
    ):
        response = await client.request(method, url, headers=other.headers, json=body)
        assert_problem(response, 404, "consultation_not_found")
    # A request id under the attacker's own consultation: not found either.
    theirs = await open_consultation(client, other)
    assert_problem(
        await client.get(f"{base(theirs['id'])}/requests/{r['id']}", headers=other.headers),
        404,
        "request_not_found",
    )
    assert_problem(await client.get(path, headers=advisor.headers), 403)
    await take(client, staff, c["id"])
    assert (await client.get(path, headers=staff.headers)).status_code == 200
    # The bystander no longer sees the assigned case.
    assert_problem(await client.get(path, headers=bystander.headers), 404)
    # Staff advise but do not act for the consulter.
    assert_problem(await move(client, staff, c["id"], r["id"], "sent"), 403, "role_not_allowed")


async def test_the_state_machine_refuses_impossible_moves(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    r = await create_request(client, owner, c["id"])
    assert_problem(await move(client, owner, c["id"], r["id"], "removed"), 409, "invalid_transition")
    assert (await move(client, owner, c["id"], r["id"], "sent")).status_code == 200
    assert (await move(client, owner, c["id"], r["id"], "refused")).status_code == 200
    refused = (await client.get(f"{base(c['id'])}/requests/{r['id']}", headers=owner.headers)).json()
    assert refused["allowed_statuses"] == [] and refused["next_steps"]
    assert_problem(await move(client, owner, c["id"], r["id"], "sent"), 409, "invalid_transition")
    future = (datetime.now(JST) + timedelta(days=400)).isoformat()
    r2 = await create_request(client, owner, c["id"])
    assert_problem(await move(client, owner, c["id"], r2["id"], "sent", at=future), 422, "date_in_future")


async def test_a_non_designated_or_unknown_service_has_no_response_clock(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    for target in ({"name": "小さな掲示板"}, {"platform": "meta"}, {"platform": "line", "service": "talk"}):
        r = await create_request(client, owner, c["id"], target=target)
        sent = await move(client, owner, c["id"], r["id"], "sent")
        assert sent.status_code == 200, sent.text
        assert sent.json()["clocks"] == [], target
    assert_problem(
        await client.post(
            base(c["id"]) + "/requests",
            headers=owner.headers,
            json={"kind": "platform_form", "target": {"platform": "x", "service": "nope"}},
        ),
        422,
        "unknown_code",
    )


async def test_a_removal_inquiry_reply_runs_seven_days_or_two_for_private_sexual_images(
    client, people, clock
) -> None:
    clock.set(START)
    owner = await people.create()
    c = await open_consultation(client, owner)
    received = "2026-12-01T15:00:00+09:00"
    plain = await create_request(
        client,
        owner,
        c["id"],
        kind="inquiry_reply",
        inquiry="removal",
        received_at=received,
        target={"name": "レンタルサーバー事業者"},
    )
    assert [(k["rule"], k["due_at"]) for k in plain["clocks"]] == [
        ("removal_inquiry_reply", "2026-12-08T15:00:00Z")
    ]
    sexual = await create_request(
        client,
        owner,
        c["id"],
        kind="inquiry_reply",
        inquiry="removal",
        received_at=received,
        private_sexual_image=True,
        target={"name": "レンタルサーバー事業者"},
    )
    [k] = sexual["clocks"]
    assert k["variant"] == "private_sexual_image" and k["due_at"] == "2026-12-03T15:00:00Z"
    assert "私事性的画像" in k["law_ja"]
    disclosure = await create_request(
        client,
        owner,
        c["id"],
        kind="inquiry_reply",
        inquiry="disclosure",
        received_at=received,
        target={"name": "レンタルサーバー事業者"},
    )
    assert disclosure["clocks"] == []  # a disclosure inquiry has no statutory period: no clock
    assert_problem(
        await client.post(
            base(c["id"]) + "/requests",
            headers=owner.headers,
            json={"kind": "inquiry_reply", "target": {"name": "x"}},
        ),
        422,
        "inquiry_required",
    )


async def test_complaint_and_limitation_periods_need_the_dates_the_person_gives(
    client, people, clock
) -> None:
    clock.set(START)
    owner, other = await people.create(), await people.create()
    c = await open_consultation(client, owner)  # 名誉毀損 among its categories
    assert (await client.get(base(c["id"]) + "/clocks", headers=owner.headers)).json()["items"] == []
    put = await client.put(
        base(c["id"]) + "/clock-facts", headers=owner.headers, json={"offender_known_on": "2026-11-25"}
    )
    assert put.status_code == 200, put.text
    clocks = {
        k["rule"]: k
        for k in (await client.get(base(c["id"]) + "/clocks", headers=owner.headers)).json()["items"]
    }
    assert set(clocks) == {"complaint_period"}  # the damage date is unknown: no limitation clock
    assert clocks["complaint_period"]["due_at"] == "2027-05-25T15:00:00Z"
    await client.put(
        base(c["id"]) + "/clock-facts",
        headers=owner.headers,
        json={"offender_known_on": "2026-11-25", "damage_known_on": "2026-11-20"},
    )
    clocks = {
        k["rule"]: k
        for k in (await client.get(base(c["id"]) + "/clocks", headers=owner.headers)).json()["items"]
    }
    assert clocks["civil_limitation"]["due_at"] == "2029-11-25T15:00:00Z"  # from the later of the two
    assert_problem(await client.put(base(c["id"]) + "/clock-facts", headers=other.headers, json={}), 404)
    assert_problem(
        await client.put(
            base(c["id"]) + "/clock-facts", headers=owner.headers, json={"damage_known_on": "2030-01-01"}
        ),
        422,
        "date_in_future",
    )
    # A number is not a day: lax parsing took 0 for 1970-01-01 and started a limitation clock from it.
    for not_a_day in (0, 20261120, True):
        refused = await client.put(
            base(c["id"]) + "/clock-facts",
            headers=owner.headers,
            json={"offender_known_on": "2026-11-25", "damage_known_on": not_a_day},
        )
        assert_problem(refused, 422, "validation_failed")
        assert refused.json()["errors"][0]["type"] == "date_type"
    kept = await client.get(base(c["id"]) + "/clock-facts", headers=owner.headers)
    assert kept.json() == {"offender_known_on": "2026-11-25", "damage_known_on": "2026-11-20"}
    # A case without 名誉毀損・侮辱 has no complaint period.
    privacy = await open_consultation(client, owner, categories=["RIGHTS.PRIVACY_ID"])
    await client.put(
        base(privacy["id"]) + "/clock-facts", headers=owner.headers, json={"offender_known_on": "2026-11-25"}
    )
    assert (await client.get(base(privacy["id"]) + "/clocks", headers=owner.headers)).json()["items"] == []


async def test_an_old_post_raises_priority_and_brings_an_urgent_first_answer_forward(
    client, people, clock
) -> None:
    clock.set(START)
    owner = await people.create()
    c = await open_consultation(
        client, owner, narrative="殺すぞと書かれ、住所も晒されています。投稿は9月の初めです。"
    )
    assert c["urgent"] is True
    # Posted on 5 September: the logs' three months end with 5 December, before the 3-business-day due time.
    await add_evidence(client, owner, c["id"], "2026-09-05T12:00:00+09:00", "https://x.com/c/status/3")
    case = (await client.get(base(c["id"]), headers=owner.headers)).json()
    assert case["time_to_act_at"] == "2026-12-05T15:00:00Z"
    assert case["first_answer_due_at"] == "2026-12-05T15:00:00Z"
    ordinary = await open_consultation(client, owner)
    assert ordinary["priority"] == "normal"
    await add_evidence(client, owner, ordinary["id"], "2026-09-20T12:00:00+09:00", "https://x.com/d/status/4")
    case = (await client.get(base(ordinary["id"]), headers=owner.headers)).json()
    assert case["priority"] == "high"  # within 30 days of the logs' end
    assert case["first_answer_due_at"] == ordinary["first_answer_due_at"]  # not urgent: the due time stays


async def test_a_returning_consulter_links_a_new_consultation_to_an_earlier_one_of_theirs(
    client, people, clock, container
) -> None:
    clock.set(START)
    owner, other = await people.create(), await people.create()
    staff = await people.create(Role.consultant)
    earlier = await open_consultation(client, owner)
    e = await add_evidence(
        client, owner, earlier["id"], "2026-11-20T21:15:00+09:00", "https://x.com/e/status/5"
    )
    r = await create_request(client, owner, earlier["id"], evidence_ids=[e["id"]])
    await move(client, owner, earlier["id"], r["id"], "sent")
    await take(client, staff, earlier["id"])
    await answer(client, staff, earlier["id"], people=people)
    await client.post(
        base(earlier["id"]) + "/close",
        headers={**staff.headers, "If-Match": await etag(client, staff, earlier["id"])},
    )
    # Past the 30-day reopen window.
    owner, other, staff = await later(clock, people, START + timedelta(days=45), owner, other, staff)
    assert_problem(await client.post(base(earlier["id"]) + "/reopen", headers=owner.headers), 409)
    new = await open_consultation(client, owner)
    theirs = await open_consultation(client, other)
    await client.post(base(theirs["id"]) + "/withdraw", headers=other.headers)
    # Another person's consultation: not found, exactly as a random id.
    for earlier_id in (theirs["id"], random_id()):
        assert_problem(
            await client.post(
                base(new["id"]) + "/follows", headers=owner.headers, json={"earlier_id": earlier_id}
            ),
            404,
            "consultation_not_found",
        )
    # Nobody links someone else's case to theirs either.
    assert_problem(
        await client.post(
            base(theirs["id"]) + "/follows", headers=owner.headers, json={"earlier_id": earlier["id"]}
        ),
        404,
    )
    linked = await client.post(
        base(new["id"]) + "/follows", headers=owner.headers, json={"earlier_id": earlier["id"]}
    )
    assert linked.status_code == 200, linked.text
    assert [x["id"] for x in linked.json()] == [earlier["id"]]
    again = await client.post(
        base(new["id"]) + "/follows", headers=owner.headers, json={"earlier_id": earlier["id"]}
    )
    assert_problem(again, 409, "already_linked")
    # Requests and clocks carry over, and may be updated from the new consultation.
    carried = (await client.get(base(new["id"]) + "/requests", headers=owner.headers)).json()["items"]
    assert [(x["id"], x["consultation_id"]) for x in carried] == [(r["id"], earlier["id"])]
    rules = {
        k["rule"]
        for k in (await client.get(base(new["id"]) + "/clocks", headers=owner.headers)).json()["items"]
    }
    assert rules == {"designated_platform_response", "access_log_retention"}
    # The reply to the earlier request arrives now: kept as evidence of the new consultation, linked to it.
    reply = await client.post(
        base(new["id"]) + "/evidence",
        headers=owner.headers,
        json={"notes": "Xからの回答メール(削除しました)", "captured_at": "2027-01-15T09:00:00+09:00"},
    )
    linked_reply = await client.post(
        f"{base(new['id'])}/requests/{r['id']}/replies",
        headers=owner.headers,
        json={"evidence_id": reply.json()["id"]},
    )
    assert linked_reply.status_code == 200, linked_reply.text
    assert linked_reply.json()["reply_evidence_ids"] == [reply.json()["id"]]
    moved = await move(client, owner, new["id"], r["id"], "removed")
    assert moved.status_code == 200 and moved.json()["clocks"][0]["settled"] is True
    # Staff see the history.
    await take(client, staff, new["id"])
    history = await client.get(base(new["id"]) + "/earlier", headers=staff.headers)
    assert [x["id"] for x in history.json()] == [earlier["id"]]
    # The earlier case's own trail shows that read, and through which case it was made (security review: the
    # history of a case is visible to whoever sees the new one, so every such read is on record).
    async with container.sessions() as db:
        links = await SqlCustody(db, container.clock).links(uuid.UUID(earlier["id"]))
    via = [x for x in links if x.action == "consultation.read" and x.detail.get("via") == new["id"]]
    assert via and all(x.actor_id == staff.id for x in via)
    detail = (await client.get(base(new["id"]), headers=staff.headers)).json()
    assert detail["follows_id"] == earlier["id"]
    assert_problem(await client.get(base(new["id"]) + "/earlier", headers=other.headers), 404)


async def test_reminders_go_once_with_line_notices_and_never_after_withdrawal(
    client, people, container, mailbox, clock
) -> None:
    from sqlalchemy import select

    from infra.db.tables import OutboxRow

    clock.set(START)
    owner, quitter = await people.create(), await people.create()
    kept = await open_consultation(client, owner)
    gone = await open_consultation(client, quitter)
    for person, c in ((owner, kept), (quitter, gone)):
        r = await create_request(client, person, c["id"])
        assert (await move(client, person, c["id"], r["id"], "sent")).status_code == 200
    assert (await client.post(base(gone["id"]) + "/withdraw", headers=quitter.headers)).status_code == 200
    clock.set(datetime(2026, 12, 11, 9, 0, tzinfo=JST))  # past the end: only the overdue notice is owed
    for _ in range(3):
        await container.worker.run_once()
    assert len(mailbox.to(owner.email)) == 1 and not mailbox.to(quitter.email)
    async with container.sessions() as db:
        rows = (await db.execute(select(OutboxRow).where(OutboxRow.kind.like("%clock%")))).scalars().all()
    assert sorted(r.kind for r in rows) == ["line.clock_overdue", "mail.clock_overdue"]
    assert all(r.dedupe_key and r.dedupe_key.split(":")[0] in ("mail-clock", "line-clock") for r in rows)


async def test_the_overdue_view_pages_oldest_first_within_what_the_staff_member_sees(
    client, people, clock
) -> None:
    clock.set(START)
    owner = await people.create()
    mine, theirs = await people.create(Role.consultant), await people.create(Role.consultant)
    supervisor = await people.create(Role.supervisor)
    cases = [await open_consultation(client, owner) for _ in range(3)]
    for day, c in enumerate(cases):
        r = await create_request(client, owner, c["id"])
        at = datetime(2026, 11, 20 + day, 10, 0, tzinfo=JST).isoformat()
        assert (await move(client, owner, c["id"], r["id"], "sent", at=at)).status_code == 200
    await take(client, mine, cases[0]["id"])
    await take(client, theirs, cases[1]["id"])
    owner, mine, theirs, supervisor = await later(
        clock, people, datetime(2026, 12, 3, 9, 0, tzinfo=JST), owner, mine, theirs, supervisor
    )
    first = (await client.get("/v1/clocks/overdue", params={"limit": 2}, headers=supervisor.headers)).json()
    assert [i["consultation"]["id"] for i in first["items"]] == [cases[0]["id"], cases[1]["id"]]
    assert [i["clock"]["due_at"] for i in first["items"]] == ["2026-11-27T15:00:00Z", "2026-11-28T15:00:00Z"]
    second = (
        await client.get(
            "/v1/clocks/overdue",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=supervisor.headers,
        )
    ).json()
    assert [i["consultation"]["id"] for i in second["items"]] == [cases[2]["id"]]
    assert second["next_cursor"] is None
    # A consultant sees their own cases and the unassigned queue, not a colleague's case.
    seen = (await client.get("/v1/clocks/overdue", headers=mine.headers)).json()
    assert {i["consultation"]["id"] for i in seen["items"]} == {cases[0]["id"], cases[2]["id"]}
    assert_problem(await client.get("/v1/clocks/overdue", headers=owner.headers), 403)
    assert_problem(
        await client.get("/v1/clocks/overdue", params={"cursor": "not-a-cursor"}, headers=supervisor.headers),
        422,
    )


async def pages(client, person, url: str, limit: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every item of a keyset-paged list, `limit` at a time, following `next_cursor` to the end."""
    found: list[dict] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, headers=person.headers, params=params)
        assert response.status_code == 200, response.text
        found += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


async def test_requests_and_clocks_of_a_case_page_with_a_cursor(client, people, clock) -> None:
    clock.set(START)
    owner = await people.create()
    c = await open_consultation(client, owner)
    cid = c["id"]
    await add_evidence(client, owner, cid, "2026-11-20T21:15:00+09:00", "https://x.com/a/status/1")
    made = []
    for _ in range(5):
        made.append((await create_request(client, owner, cid))["id"])
        clock.set(clock.now() + timedelta(minutes=1))
    for rid in made[:3]:
        assert (await move(client, owner, cid, rid, "sent")).status_code == 200
    everything = (await client.get(base(cid) + "/requests", headers=owner.headers)).json()
    assert everything["next_cursor"] is None and [r["id"] for r in everything["items"]] == made
    assert [r["id"] for r in await pages(client, owner, base(cid) + "/requests", 2)] == made

    clocks = (await client.get(base(cid) + "/clocks", headers=owner.headers)).json()["items"]
    assert len(clocks) >= 3
    paged = await pages(client, owner, base(cid) + "/clocks", 2)
    assert paged == clocks and len({(k["rule"], k["subject"], k["subject_id"]) for k in paged}) == len(clocks)

    for url in ("/requests", "/clocks"):
        assert_problem(
            await client.get(base(cid) + url, headers=owner.headers, params={"cursor": "%%%"}),
            422,
            "invalid_cursor",
        )
    stranger = await people.create()
    assert_problem(
        await client.get(base(cid) + "/clocks", headers=stranger.headers, params={"limit": 1}), 404
    )
