"""The quality loop: drafts and the legal advisor's review, the versioned manual, supervision, the council's
anonymised verification, and the trail."""

from __future__ import annotations

from datetime import timedelta

from domain.actors import Role
from tests.api.consultation_helpers import answer, etag, every_page, intake, open_consultation, take
from tests.clock import month_of, parse_instant, period_around_suite
from tests.conftest import assert_problem

PERIOD = period_around_suite()
NARRATIVE = (
    "私は山田花子です。元同僚の佐藤健一さんが、Xで私の電話番号090-1234-5678と住所"
    "「東京都新宿区西新宿2-8-1」を晒しています。連絡先は hanako.yamada@example.jp です。"
)


async def test_a_draft_that_needs_review_reaches_the_consulter_only_after_approval(client, people) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    advisor = await people.create(Role.legal_advisor)
    c = await open_consultation(client, owner)  # desired outcome identify_poster: the disclosure rule applies
    await take(client, staff, c["id"])
    base = f"/v1/consultations/{c['id']}/answers"
    draft = await client.post(
        base,
        headers=staff.headers,
        json={
            "body": "発信者情報開示命令の申立てをご検討ください。",
            "manual_sections": ["disclosure", "evidence"],
            "template": "disclosure-guide",
        },
    )
    assert draft.status_code == 201
    d = draft.json()
    assert d["needs_review"] and d["review_reasons"] == ["disclosure"] and d["state"] == "draft"
    refs = {r["code"]: r["version"] for r in d["versions"][0]["manual_refs"]}
    assert (
        refs == {"disclosure": 1, "evidence": 1}
        and d["versions"][0]["template"]["code"] == "disclosure-guide"
    )
    url = f"{base}/{d['id']}"
    assert_problem(await client.post(f"{url}/publish", headers=staff.headers), 409, "review_required")
    assert (await client.post(f"{url}/submit", headers=staff.headers)).json()["state"] == "awaiting_review"
    queue = (await client.get("/v1/reviews", headers=advisor.headers)).json()["items"]
    assert [q["draft_id"] for q in queue] == [d["id"]] and queue[0]["waiting_seconds"] >= 0
    case = (await client.get(f"/v1/reviews/{d['id']}", headers=advisor.headers)).json()
    assert case["consultation"]["narrative"] == intake()["narrative"]  # as the consulter wrote it
    assert_problem(
        await client.post(f"/v1/reviews/{d['id']}/return", headers=advisor.headers, json={}),
        422,
        "advice_required",
    )
    advice = "費用の目安と法テラスの民事法律扶助も併記してください。"
    returned = await client.post(
        f"/v1/reviews/{d['id']}/return", headers=advisor.headers, json={"advice": advice}
    )
    assert returned.json()["state"] == "returned" and returned.json()["reviews"][0]["advice"] == advice
    assert (await client.get(url, headers=staff.headers)).json()["reviews"][0]["advice"] == advice
    assert_problem(
        await client.get(f"/v1/reviews/{d['id']}", headers=advisor.headers), 404
    )  # not waiting any more
    revised = await client.post(
        f"{url}/versions",
        headers=staff.headers,
        json={
            "body": "発信者情報開示命令の申立てをご検討ください。費用は法テラスの扶助制度も使えます。",
            "manual_sections": ["disclosure"],
        },
    )
    versions = revised.json()["versions"]
    assert [v["number"] for v in versions] == [1, 2] and versions[0][
        "body"
    ] == "発信者情報開示命令の申立てをご検討ください。"
    await client.post(f"{url}/submit", headers=staff.headers)
    assert_problem(await client.post(f"/v1/reviews/{d['id']}/approve", headers=staff.headers, json={}), 403)
    # No body at all, like submit and publish: approval needs no advice.
    approved = await client.post(f"/v1/reviews/{d['id']}/approve", headers=advisor.headers)
    assert approved.json()["state"] == "approved" and approved.json()["reviews"][-1]["version_number"] == 2
    assert_problem(await client.post(f"{url}/publish", headers=advisor.headers), 403)
    published = await client.post(f"{url}/publish", headers=staff.headers)
    assert published.json()["state"] == "published"
    thread = (await client.get(f"/v1/consultations/{c['id']}/messages", headers=owner.headers)).json()[
        "items"
    ]
    assert [m["body"] for m in thread] == [versions[1]["body"]]


async def test_exempt_answers_publish_directly_and_consultants_can_ask_for_review(client, people) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner, desired_outcomes=["advice"], categories=["RIGHTS.INSULT"])
    await take(client, staff, c["id"])
    base = f"/v1/consultations/{c['id']}/answers"
    d = (await client.post(base, headers=staff.headers, json={"body": "悪口への対処法です。"})).json()
    assert d["needs_review"] is False and d["review_reasons"] == []
    assert (await client.post(f"{base}/{d['id']}/publish", headers=staff.headers)).json()[
        "state"
    ] == "published"
    asked = (
        await client.post(base, headers=staff.headers, json={"body": "念のため確認", "request_review": True})
    ).json()
    assert asked["review_reasons"] == ["requested"]
    assert_problem(
        await client.post(f"{base}/{asked['id']}/publish", headers=staff.headers), 409, "review_required"
    )
    assert_problem(
        await client.post(base, headers=staff.headers, json={"body": "x", "manual_sections": ["nope"]}), 422
    )
    # Answers never bypass drafts.
    direct = await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers=staff.headers,
        json={"body": "直接回答", "kind": "answer"},
    )
    assert_problem(direct, 422, "answers_go_through_drafts")


async def test_drafts_are_private_to_those_working_the_case(client, people) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    d = (
        await client.post(
            f"/v1/consultations/{c['id']}/answers", headers=staff.headers, json={"body": "下書き"}
        )
    ).json()
    for person in (owner, await people.create(), await people.create(Role.consultant)):
        assert_problem(
            await client.get(f"/v1/consultations/{c['id']}/answers/{d['id']}", headers=person.headers),
            403 if person is owner else 404,
        )
    for role in (Role.legal_advisor, Role.council, Role.admin):
        someone = await people.create(role)
        assert_problem(await client.get(f"/v1/consultations/{c['id']}/answers", headers=someone.headers), 403)
    advisor = await people.create(Role.legal_advisor)
    assert_problem(await client.get(f"/v1/reviews/{d['id']}", headers=advisor.headers), 404)  # not submitted


async def test_the_manual_has_sections_and_templates_and_nothing_else(client, people) -> None:  # type: ignore[no-untyped-def]
    staff = await people.create(Role.consultant)
    assert (await client.get("/v1/manual/templates", headers=staff.headers)).status_code == 200
    assert_problem(await client.get("/v1/manual/chapters", headers=staff.headers), 404, "not_found")


async def test_manual_versions_and_answers_that_used_an_older_one(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    staff = await people.create(Role.consultant)
    sections = (await client.get("/v1/manual/sections", headers=staff.headers)).json()
    codes = {s["code"] for s in sections}
    assert {
        "delete-yourself",
        "search-delisting",
        "disclosure",
        "evidence",
        "sexual-images",
        "received-letter",
        "police-or-lawyer",
        "platform-act-2025",
    } <= codes
    assert all(s["title_ja"] and s["title_en"] and s["body_ja"] for s in sections)
    templates = (await client.get("/v1/manual/templates", headers=staff.headers)).json()
    assert len(templates) >= 6 and all("{" in t["body_ja"] for t in templates)
    owner = await people.create()
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    d = (
        await client.post(
            f"/v1/consultations/{c['id']}/answers",
            headers=staff.headers,
            json={"body": "証拠保全のお願い", "manual_sections": ["evidence"]},
        )
    ).json()
    assert_problem(
        await client.post(
            "/v1/manual/sections/evidence/versions", headers=staff.headers, json={"body_ja": "改訂"}
        ),
        403,
    )
    revised = await client.post(
        "/v1/manual/sections/evidence/versions",
        headers=supervisor.headers,
        json={"body_ja": "スマートフォンでの保存手順を追記した版。", "note": "手順追加"},
    )
    assert revised.status_code == 201 and revised.json()["version"] == 2
    history = (await client.get("/v1/manual/sections/evidence", headers=staff.headers)).json()
    assert [h["version"] for h in history] == [1, 2]
    stale = (await client.get("/v1/manual/sections/evidence/stale", headers=supervisor.headers)).json()
    assert [(s["draft_id"], s["used_version"], s["current_version"]) for s in stale] == [(d["id"], 1, 2)]
    assert (await client.get("/v1/manual/sections/disclosure/stale", headers=supervisor.headers)).json() == []
    assert_problem(await client.get("/v1/manual/sections", headers=owner.headers), 403)


async def closed_case(client, people, staff, narrative: str = NARRATIVE, **overrides) -> dict:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner, narrative=narrative, **overrides)
    await take(client, staff, c["id"])
    await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers=staff.headers,
        json={"body": "内部メモ: 相談者の勤務先は〇〇商事", "kind": "note"},
    )
    await client.post(
        f"/v1/consultations/{c['id']}/evidence",
        headers=owner.headers,
        json={
            "url": "https://x.com/sato_ken_88/status/1",
            "poster_account": "@sato_ken_88",
            "excerpt": "山田花子は嘘つき",
        },
    )
    await answer(
        client, staff, c["id"], "佐藤健一さんの投稿について、削除依頼の方法をご案内します。", people=people
    )
    response = await client.post(
        f"/v1/consultations/{c['id']}/close",
        headers={**staff.headers, "If-Match": await etag(client, staff, c["id"])},
    )
    assert response.status_code == 200
    return c


async def test_council_sees_sampled_cases_anonymised_and_records_findings(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    staff = await people.create(Role.consultant)
    council = await people.create(Role.council)
    cases = [await closed_case(client, people, staff) for _ in range(3)]
    open_one = await open_consultation(client, await people.create())
    assert_problem(
        await client.post(
            "/v1/council/samples",
            headers=council.headers,
            json={"period_from": PERIOD["from"], "period_to": PERIOD["to"], "size": 2},
        ),
        403,
    )
    sample = (
        await client.post(
            "/v1/council/samples",
            headers=supervisor.headers,
            json={
                "period_from": PERIOD["from"],
                "period_to": PERIOD["to"],
                "size": 5,
                "method": "stratified",
                "seed": 7,
            },
        )
    ).json()
    assert sample["size"] == 3 and sample["items"] == ["S001", "S002", "S003"]  # only the closed ones
    listed = (await client.get("/v1/council/samples", headers=council.headers)).json()["items"]
    assert [s["id"] for s in listed] == [sample["id"]]
    item = await client.get(f"/v1/council/samples/{sample['id']}/items/S001", headers=council.headers)
    body = item.json()
    text = item.text
    for leaked in (
        "山田花子",
        "佐藤健一",
        "090-1234-5678",
        "西新宿2-8-1",
        "hanako.yamada@example.jp",
        "sato_ken_88",
        "x.com",
        "〇〇商事",
        *[c["id"] for c in cases],
        open_one["id"],
    ):
        assert leaked not in text, leaked
    assert (
        "［電話番号］" in body["narrative"] and body["messages"] and body["evidence"][0]["has_file"] is False
    )
    assert all("id" not in e for e in body["evidence"]) and "owner_id" not in body
    assert_problem(
        await client.get(f"/v1/council/samples/{sample['id']}/items/S999", headers=council.headers), 404
    )
    finding = await client.post(
        f"/v1/council/samples/{sample['id']}/items/S001/findings",
        headers=council.headers,
        json={"accuracy": 4, "timeliness": 2, "tone": 5, "referral_fit": 3, "comment": "初回回答が遅い。"},
    )
    assert finding.status_code == 201
    assert_problem(
        await client.post(
            f"/v1/council/samples/{sample['id']}/items/S001/findings",
            headers=council.headers,
            json={"accuracy": 9, "timeliness": 2, "tone": 5, "referral_fit": 3},
        ),
        422,
    )
    findings = (
        await client.get(f"/v1/council/samples/{sample['id']}/findings", headers=supervisor.headers)
    ).json()["items"]
    assert [(f["pseudonym"], f["timeliness"]) for f in findings] == [("S001", 2)]
    # Findings page by (created_at, id): three more, two at a time, none lost or repeated.
    for pseudonym in ("S002", "S003", "S001"):
        made = await client.post(
            f"/v1/council/samples/{sample['id']}/items/{pseudonym}/findings",
            headers=council.headers,
            json={"accuracy": 3, "timeliness": 3, "tone": 3, "referral_fit": 3},
        )
        assert made.status_code == 201, made.text
    url = f"/v1/council/samples/{sample['id']}/findings"
    everything = (await client.get(url, headers=supervisor.headers)).json()["items"]
    paged: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, headers=supervisor.headers, params=params)).json()
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(everything) == 4 and paged == everything
    assert len({f["id"] for f in paged}) == 4
    assert_problem(
        await client.get(url, headers=supervisor.headers, params={"cursor": "%%%"}), 422, "invalid_cursor"
    )
    # Council accounts read and comment; they never reach raw case data.
    for url in ("/v1/consultations", f"/v1/consultations/{cases[0]['id']}", "/v1/reviews"):
        assert_problem(await client.get(url, headers=council.headers), 403)


async def test_council_proposal_becomes_a_manual_version_when_accepted(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    council = await people.create(Role.council)
    proposal = (
        await client.post(
            "/v1/council/proposals",
            headers=council.headers,
            json={
                "section_code": "evidence",
                "proposed_body": "スマートフォンの場合の保存手順を加える。",
                "rationale": "スマートフォンからの相談で保存が不十分な事例が続いた。",
            },
        )
    ).json()
    assert proposal["state"] == "open" and proposal["based_on_version"] == 1
    accepted = await client.post(
        "/v1/manual/sections/evidence/versions",
        headers=supervisor.headers,
        json={
            "body_ja": proposal["proposed_body"],
            "note": "推進協議会の提案を採用",
            "proposal_id": proposal["id"],
        },
    )
    assert accepted.status_code == 201
    proposals = (await client.get("/v1/council/proposals", headers=council.headers)).json()["items"]
    assert proposals[0]["state"] == "accepted" and proposals[0]["resulting_version"] == 2
    again = await client.post(
        "/v1/manual/sections/evidence/versions",
        headers=supervisor.headers,
        json={"body_ja": "x", "proposal_id": proposal["id"]},
    )
    assert_problem(again, 409, "proposal_decided")
    second = (
        await client.post(
            "/v1/council/proposals",
            headers=council.headers,
            json={"section_code": "disclosure", "proposed_body": "…", "rationale": "…"},
        )
    ).json()
    rejected = await client.post(f"/v1/council/proposals/{second['id']}/reject", headers=supervisor.headers)
    assert rejected.json()["state"] == "rejected"


async def test_supervisor_overview_and_council_statistics_with_suppression(client, people, clock) -> None:
    # Two hours before a month ends, so the cases' month can be read by the council once it has.
    this_month = month_of(clock.now())
    clock.set(parse_instant(this_month["to"]) - timedelta(hours=2))
    supervisor = await people.create(Role.supervisor)
    council = await people.create(Role.council)
    staff = await people.create(Role.consultant)
    for _ in range(6):
        await open_consultation(client, await people.create(), channel="web")
    line = await open_consultation(client, await people.create(), channel="line")
    await take(client, staff, line["id"])
    overview = (
        await client.get("/v1/supervision/overview", headers=supervisor.headers, params=this_month)
    ).json()
    assert overview["by_channel"] == {"web": 6, "line": 1}
    assert overview["by_status"] == {"submitted": 6, "in_progress": 1}
    assert [(w["staff_id"], w["open"]) for w in overview["workload"]] == [(str(staff.id), 1)]
    assert overview["review"]["waiting"] == 0 and sum(overview["by_month"].values()) == 7
    # The council counts one month once it has ended.
    assert_problem(
        await client.get("/v1/council/statistics", headers=council.headers, params=this_month),
        422,
        "period_not_a_closed_month",
    )
    clock.set(parse_instant(this_month["to"]) + timedelta(hours=1))
    council = await people.sign_in(council.id, council.email, council.role)
    supervisor = await people.sign_in(supervisor.id, supervisor.email, supervisor.role)
    stats = (await client.get("/v1/council/statistics", headers=council.headers, params=this_month)).json()
    # One LINE consultation among seven: showing web 6 would give it away through the total (7 in by_month),
    # so the complement is withheld too (the one rule of domain/disclosure.py).
    assert stats["by_channel"] == {"web": None, "line": None}
    assert stats["by_status"] == {"submitted": None, "in_progress": None}
    assert list(stats["by_month"].values()) == [7]
    assert_problem(await client.get("/v1/supervision/overview", headers=council.headers, params=PERIOD), 403)
    bad = {"from": PERIOD["to"], "to": PERIOD["from"]}
    assert_problem(await client.get("/v1/supervision/overview", headers=supervisor.headers, params=bad), 422)


async def test_staff_reads_reviews_samples_and_manual_changes_are_on_the_trail(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    staff = await people.create(Role.consultant)
    admin = await people.create(Role.admin)
    c = await closed_case(client, people, staff)
    await client.post(
        "/v1/council/samples",
        headers=supervisor.headers,
        json={"period_from": PERIOD["from"], "period_to": PERIOD["to"], "size": 1},
    )
    await client.post(
        "/v1/manual/sections/evidence/versions", headers=supervisor.headers, json={"body_ja": "改訂"}
    )
    events = await every_page(client, "/v1/audit-events", admin.headers, limit=100)
    actions = {e["action"] for e in events}
    assert {
        "consultation.read",
        "answer.submitted_for_review",
        "answer.review_approved",
        "answer.published",
        "council.sample_drawn",
        "manual.revised",
    } <= actions
    reads = await every_page(
        client, "/v1/audit-events", supervisor.headers, object_type="consultation", object_id=c["id"]
    )
    # Reads on the trail are staff reads; the consulter's own acts (intake, changes) are there too since the
    # chain of custody (issue 16 §3) records every event on the record.
    assert reads and all(e["actor_role"] != "consulter" for e in reads if e["action"] == "consultation.read")
    assert ("consultation.created", "consulter") in {(e["action"], e["actor_role"]) for e in reads}
    assert NARRATIVE[:10] not in str(events)
    assert_problem(await client.get("/v1/audit-events", headers=staff.headers), 403)


async def test_a_draft_on_a_harmless_case_cannot_skip_review_once_the_case_or_the_text_changes(
    client, people
) -> None:  # type: ignore[no-untyped-def]
    """Issue 13.13: the need for the legal advisor was decided once, at creation. A category added later
    (sexual images), the consulter's own words revised (a minor), or the answer's text revised let the draft
    publish unreviewed. It is decided again at revision, submit and publish."""
    owner = await people.create()
    staff = await people.create(Role.consultant)

    async def harmless_draft() -> tuple[str, str]:
        c = await open_consultation(
            client,
            owner,
            desired_outcomes=["advice"],
            categories=["RIGHTS.INSULT"],
            title="掲示板で悪口を書かれた",
            narrative="匿名掲示板に悪口を書き込まれています。対処法を教えてください。",
            tried=None,
        )
        assert c["urgent"] is False
        await take(client, staff, c["id"])
        base = f"/v1/consultations/{c['id']}/answers"
        d = (await client.post(base, headers=staff.headers, json={"body": "悪口への対処法です。"})).json()
        assert d["needs_review"] is False
        return c["id"], f"{base}/{d['id']}"

    # 1. A staff member adds the category "private sexual images" to the case.
    cid, draft = await harmless_draft()
    tag = await etag(client, staff, cid)
    changed = await client.patch(
        f"/v1/consultations/{cid}",
        headers={**staff.headers, "If-Match": tag},
        json={"categories": ["RIGHTS.INSULT", "RIGHTS.PRIVATE_SEXUAL"]},
    )
    assert changed.status_code == 200, changed.text
    refused = assert_problem(
        await client.post(f"{draft}/publish", headers=staff.headers), 409, "review_required"
    )
    assert refused["reasons"] == ["sexual_images"]
    submitted = (await client.post(f"{draft}/submit", headers=staff.headers)).json()
    assert submitted["state"] == "awaiting_review" and submitted["review_reasons"] == ["sexual_images"]

    # 2. The consulter adds that the victim is their daughter, in junior high school.
    cid, draft = await harmless_draft()
    tag = await etag(client, owner, cid)
    changed = await client.patch(
        f"/v1/consultations/{cid}",
        headers={**owner.headers, "If-Match": tag},
        json={"tried": "書かれているのは中学生の娘のことです。"},
    )
    assert changed.status_code == 200, changed.text
    refused = assert_problem(
        await client.post(f"{draft}/publish", headers=staff.headers), 409, "review_required"
    )
    assert refused["reasons"] == ["minor"]

    # 3. The answer itself is revised to speak about intimate images being spread.
    cid, draft = await harmless_draft()
    revised = await client.post(
        f"{draft}/versions",
        headers=staff.headers,
        json={"body": "リベンジポルノとして拡散された画像の削除は、警察と専門窓口にもご相談ください。"},
    )
    assert revised.status_code == 200, revised.text
    assert revised.json()["review_reasons"] == ["sexual_images"] and revised.json()["needs_review"]
    assert_problem(await client.post(f"{draft}/publish", headers=staff.headers), 409, "review_required")
    thread = (await client.get(f"/v1/consultations/{cid}/messages", headers=owner.headers)).json()["items"]
    assert not [m for m in thread if m["kind"] == "answer"]


async def test_the_council_cannot_subtract_two_periods_to_find_one_case(client, people, clock) -> None:
    """Security review: `from`/`to` were free, so a period and the same period a moment longer, both published
    (10 and 11 cases, nothing under 5), gave by subtraction the one case of that moment, its channel and
    status. Only whole closed months are accepted now, and months never overlap."""
    this_month = month_of(clock.now())
    clock.set(parse_instant(this_month["to"]) - timedelta(hours=3))
    council = await people.create(Role.council)
    for _ in range(10):
        await open_consultation(client, await people.create(), channel="web")
    moment = clock.now()
    clock.advance(timedelta(minutes=1))
    await open_consultation(client, await people.create(), channel="line")
    clock.set(parse_instant(this_month["to"]) + timedelta(minutes=5))
    council = await people.sign_in(council.id, council.email, council.role)
    start = this_month["from"]
    for end in (moment.isoformat(), (moment + timedelta(minutes=2)).isoformat()):
        assert_problem(
            await client.get(
                "/v1/council/statistics", headers=council.headers, params={"from": start, "to": end}
            ),
            422,
            "period_not_a_closed_month",
        )
    whole = (await client.get("/v1/council/statistics", headers=council.headers, params=this_month)).json()
    assert whole["by_channel"] == {"web": None, "line": None}  # 1 LINE case: withheld, and web with it


async def test_audit_events_page_newest_first_by_cursor_within_their_filter(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    staff = await people.create(Role.consultant)
    owner = await people.create()
    first, second = [await open_consultation(client, owner) for _ in range(2)]
    for case in (first, second):
        for _ in range(3):  # every staff read is an event on the case's trail, all at the pinned time
            assert (
                await client.get(f"/v1/consultations/{case['id']}", headers=staff.headers)
            ).status_code == 200
    mine = {"object_type": "consultation", "object_id": first["id"]}
    everything = await every_page(client, "/v1/audit-events", supervisor.headers, limit=100, **mine)
    assert len(everything) >= 4 and {e["object_id"] for e in everything} == {first["id"]}
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)
    page = (
        await client.get("/v1/audit-events", headers=supervisor.headers, params={**mine, "limit": 2})
    ).json()
    rest = await every_page(
        client, "/v1/audit-events", supervisor.headers, limit=2, cursor=page["next_cursor"], **mine
    )
    assert [e["id"] for e in page["items"]] + [e["id"] for e in rest] == [e["id"] for e in everything]
    assert not {e["id"] for e in page["items"]} & {e["id"] for e in rest}
    # The cursor is a position, not a grant: used with another case's filter it gives that case's events only.
    theirs = {"object_type": "consultation", "object_id": second["id"], "cursor": page["next_cursor"]}
    other = (await client.get("/v1/audit-events", headers=supervisor.headers, params=theirs)).json()
    assert {e["object_id"] for e in other["items"]} <= {second["id"]}
    assert_problem(
        await client.get("/v1/audit-events", headers=supervisor.headers, params={"cursor": "not-a-cursor"}),
        422,
        "invalid_cursor",
    )


async def test_drafts_page_oldest_first_and_a_cursor_reads_only_its_own_case(client, people, clock) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    mine, other = await open_consultation(client, owner), await open_consultation(client, owner)
    for case in (mine, other):
        await take(client, staff, case["id"])
    ids = []
    for text in ("一", "二", "三"):
        clock.advance(timedelta(seconds=1))
        made = await client.post(
            f"/v1/consultations/{mine['id']}/answers", headers=staff.headers, json={"body": text}
        )
        ids.append(made.json()["id"])
    theirs = (
        await client.post(
            f"/v1/consultations/{other['id']}/answers", headers=staff.headers, json={"body": "別"}
        )
    ).json()["id"]
    url = f"/v1/consultations/{mine['id']}/answers"
    first = (await client.get(url, headers=staff.headers, params={"limit": 2})).json()
    assert [d["id"] for d in first["items"]] == ids[:2] and first["next_cursor"]
    rest = (
        await client.get(url, headers=staff.headers, params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [d["id"] for d in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    # The cursor is a position, not a grant: on the other case's list it gives that case's drafts only.
    there = await client.get(
        f"/v1/consultations/{other['id']}/answers",
        headers=staff.headers,
        params={"cursor": first["next_cursor"]},
    )
    assert {d["id"] for d in there.json()["items"]} <= {theirs}
    assert_problem(
        await client.get(url, headers=staff.headers, params={"cursor": "%%%"}), 422, "invalid_cursor"
    )


async def test_the_review_queue_pages_longest_waiting_first(client, people, clock) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    advisor = await people.create(Role.legal_advisor)
    waiting = []
    for _ in range(3):
        case = await open_consultation(client, owner)
        await take(client, staff, case["id"])
        base = f"/v1/consultations/{case['id']}/answers"
        d = (await client.post(base, headers=staff.headers, json={"body": "ご相談の件"})).json()
        clock.advance(timedelta(seconds=10))
        assert (await client.post(f"{base}/{d['id']}/submit", headers=staff.headers)).status_code == 200
        waiting.append(d["id"])
    first = (await client.get("/v1/reviews", headers=advisor.headers, params={"limit": 2})).json()
    assert [q["draft_id"] for q in first["items"]] == waiting[:2] and first["next_cursor"]
    assert first["items"][0]["waiting_seconds"] > first["items"][1]["waiting_seconds"]
    rest = (
        await client.get(
            "/v1/reviews", headers=advisor.headers, params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [q["draft_id"] for q in rest["items"]] == waiting[2:] and rest["next_cursor"] is None
    # The queue is the advisor's: a cursor does not open it to anyone else.
    refused = await client.get("/v1/reviews", headers=staff.headers, params={"cursor": first["next_cursor"]})
    assert_problem(refused, 403)


async def test_council_proposals_and_samples_page_newest_first(client, people, clock) -> None:
    supervisor = await people.create(Role.supervisor)
    council = await people.create(Role.council)
    staff = await people.create(Role.consultant)
    await closed_case(client, people, staff)
    proposals, samples = [], []
    for n in range(3):
        clock.advance(timedelta(seconds=1))
        made = await client.post(
            "/v1/council/proposals",
            headers=council.headers,
            json={"section_code": "evidence", "proposed_body": f"改訂案{n}", "rationale": "事例が続いた。"},
        )
        assert made.status_code == 201, made.text
        proposals.append(made.json()["id"])
        drawn = await client.post(
            "/v1/council/samples",
            headers=supervisor.headers,
            json={"period_from": PERIOD["from"], "period_to": PERIOD["to"], "size": 1},
        )
        assert drawn.status_code == 201, drawn.text
        samples.append(drawn.json()["id"])
    for url, ids in (("/v1/council/proposals", proposals), ("/v1/council/samples", samples)):
        first = (await client.get(url, headers=council.headers, params={"limit": 2})).json()
        assert [x["id"] for x in first["items"]] == ids[::-1][:2] and first["next_cursor"]
        rest = (
            await client.get(
                url, headers=council.headers, params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        assert [x["id"] for x in rest["items"]] == ids[:1] and rest["next_cursor"] is None
        assert_problem(
            await client.get(url, headers=staff.headers, params={"cursor": first["next_cursor"]}), 403
        )
