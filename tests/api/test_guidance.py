"""The desk directory (versioned), platforms, guides, the contact-desk chart, triage and referrals."""

from __future__ import annotations

from datetime import timedelta

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take
from tests.conftest import ON_BOTH_COUNTER_STORES, assert_problem

NEW_DESK = {
    "code": "kanagawa_bar",
    "name_ja": "神奈川県弁護士会 法律相談センター",
    "name_en": "Kanagawa Bar Association legal consultation",
    "handles_ja": "ネット上の誹謗中傷について弁護士が相談に応じます。",
    "handles_en": "Lawyers advise on online defamation.",
    "phone": "045-000-0000",
    "kind": "legal",
    "categories": ["RIGHTS.DEFAMATION"],
}


async def test_directory_lists_real_desks_with_filters(client) -> None:
    desks = (await client.get("/v1/desks")).json()
    codes = {d["code"] for d in desks}
    assert len(desks) >= 20 and {"police_110", "houterasu", "sia_hotline", "mamorouyo_kokoro"} <= codes
    # Every desk but the generic "the platform's own report form" pointer says how to reach it.
    assert all(d["phone"] or d["url"] for d in desks if d["kind"] != "platform")
    emergency = {d["code"] for d in (await client.get("/v1/desks", params={"emergency": "true"})).json()}
    assert {"police_110", "police_8103", "onestop_8891"} <= emergency and "houterasu" not in emergency
    police = (await client.get("/v1/desks", params={"kind": "police"})).json()
    assert police and all(d["kind"] == "police" for d in police)
    found = (await client.get("/v1/desks", params={"q": "法テラス"})).json()
    assert [d["code"] for d in found] == ["houterasu"]
    by_category = {
        d["code"]
        for d in (await client.get("/v1/desks", params={"category": "RIGHTS.PRIVATE_SEXUAL"})).json()
    }
    assert "paps" in by_category
    one = await client.get("/v1/desks/police_110")
    assert one.json()["phone"] == "110" and one.headers["etag"] == '"v1"'
    assert_problem(await client.get("/v1/desks/no_such_desk"), 404, "desk_not_found")


async def test_supervisors_edit_desks_and_every_change_is_a_version(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    created = await client.post("/v1/desks", headers=supervisor.headers, json={**NEW_DESK, "note": "新設"})
    assert created.status_code == 201 and created.headers["location"] == "/v1/desks/kanagawa_bar"
    assert_problem(
        await client.post("/v1/desks", headers=supervisor.headers, json=NEW_DESK), 409, "desk_exists"
    )
    url = "/v1/desks/kanagawa_bar"
    assert_problem(await client.patch(url, headers=supervisor.headers, json={"hours_ja": "平日"}), 428)
    changed = await client.patch(
        url,
        headers={**supervisor.headers, "If-Match": '"v1"'},
        json={"hours_ja": "平日 9:30〜16:30", "note": "公式サイトで確認"},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = await client.patch(
        url, headers={**supervisor.headers, "If-Match": '"v1"'}, json={"hours_ja": "土曜"}
    )
    assert_problem(stale, 412, "stale_version")
    versions = (await client.get(f"{url}/versions", headers=supervisor.headers)).json()
    assert [(v["version"], v["note"], v["desk"]["hours_ja"]) for v in versions] == [
        (1, "新設", None),
        (2, "公式サイトで確認", "平日 9:30〜16:30"),
    ]
    assert versions[1]["changed_by"] == str(supervisor.id)
    assert (await client.get(url)).json()["hours_ja"] == "平日 9:30〜16:30"


async def test_desk_edits_are_validated_and_limited_to_editors(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    for body, code in (
        ({**NEW_DESK, "kind": "ufo"}, "unknown_code"),
        ({**NEW_DESK, "categories": ["NOPE"]}, "unknown_code"),
        ({**NEW_DESK, "url": "javascript:alert(1)"}, "invalid_url"),
        # Issue 13: desk pages are links for anonymous people, so https only, and no look-alike user part.
        ({**NEW_DESK, "url": "http://www.example.jp/soudan"}, "invalid_url"),
        ({**NEW_DESK, "url": "https://www.npa.go.jp@attacker.example/"}, "invalid_url"),
        ({**NEW_DESK, "url": "//attacker.example/"}, "invalid_url"),
        ({**NEW_DESK, "phone": None}, "desk_needs_contact"),
    ):
        assert_problem(await client.post("/v1/desks", headers=supervisor.headers, json=body), 422, code)
    for role in (Role.consulter, Role.consultant, Role.council, Role.legal_advisor):
        person = await people.create(role)
        assert_problem(await client.post("/v1/desks", headers=person.headers, json=NEW_DESK), 403)
        assert_problem(
            await client.patch(
                "/v1/desks/police_110", headers={**person.headers, "If-Match": '"v1"'}, json={"phone": "000"}
            ),
            403,
        )
    assert (await client.get("/v1/desks/police_110")).json()["phone"] == "110"
    downgraded = await client.patch(
        "/v1/desks/police_110",
        headers={**supervisor.headers, "If-Match": '"v1"'},
        json={"url": "http://www.npa.go.jp/"},
    )
    assert_problem(downgraded, 422, "invalid_url")
    assert (await client.get("/v1/desks/police_110")).json()["url"] != "http://www.npa.go.jp/"
    # The reference file's rules hold for edits too: a required name cannot be removed, no text is only blanks.
    for change in ({"name_ja": None}, {"hours_ja": "　 "}, {"categories": None}):
        refused = await client.patch(
            "/v1/desks/police_110", headers={**supervisor.headers, "If-Match": "*"}, json=change
        )
        assert_problem(refused, 422, "invalid_desk")
    assert_problem(
        await client.post("/v1/desks", headers=supervisor.headers, json={**NEW_DESK, "notes_ja": " "}),
        422,
        "invalid_desk",
    )
    kept = (await client.get("/v1/desks/police_110")).json()
    assert kept["name_ja"] and kept["version"] == 1


async def test_an_edited_desk_is_what_intake_shows(client, people) -> None:
    admin = await people.create(Role.admin)
    response = await client.patch(
        "/v1/desks/police_8103",
        headers={**admin.headers, "If-Match": '"v1"'},
        json={"hours_ja": "２４時間（一部地域を除く）"},
    )
    assert response.status_code == 200
    consulter = await people.create()
    body = await open_consultation(client, consulter, categories=["RIGHTS.PRIVATE_SEXUAL"])
    shown = {d["code"]: d for d in body["urgency_desks"]}
    assert shown["police_8103"]["hours_ja"] == "２４時間（一部地域を除く）"  # stored as the editor wrote it


async def test_platforms_and_guides(client) -> None:
    platforms = {p["code"]: p for p in (await client.get("/v1/platforms")).json()}
    assert platforms["x"]["designated"] is True and platforms["x"]["report_routes"]
    assert platforms["domestic_hosting"]["accepts_standard_letters"] == "yes"
    designated = (await client.get("/v1/platforms", params={"designated": "true"})).json()
    assert designated and all(p["designated"] for p in designated)
    guides = {g["slug"] for g in (await client.get("/v1/guides")).json()}
    assert {"evidence-preservation", "delete-request", "search-delisting", "identify-poster"} <= guides
    evidence = (await client.get("/v1/guides/evidence-preservation")).json()
    assert len(evidence["steps"]) >= 5 and evidence["title_ja"]
    assert_problem(await client.get("/v1/guides/nope"), 404, "guide_not_found")


async def test_chart_is_served_whole_and_walked_step_by_step(client) -> None:
    chart = (await client.get("/v1/chart")).json()
    nodes = {n["id"]: n for n in chart["nodes"]}
    start = nodes[chart["start"]]
    assert start["kind"] == "question" and start["options"]
    # YAML 1.1 would read the unquoted `label_en: No` of いいえ as a boolean and serve "False".
    no = next(o for o in start["options"] if o["label_ja"] == "いいえ")
    assert no["label_en"] == "No"
    every_label = [o["label_en"] for n in chart["nodes"] for o in n.get("options") or []]
    assert all(isinstance(x, str) and x not in ("True", "False") for x in every_label)
    first = await client.post("/v1/chart/walk", json={"answers": []})
    assert first.json()["done"] is False and first.json()["node"]["id"] == chart["start"]
    danger = await client.post("/v1/chart/walk", json={"answers": ["danger_yes"]})
    outcome = danger.json()
    assert outcome["done"] is True and outcome["node"]["kind"] == "outcome"
    assert outcome["desks"][0]["code"] == "police_110" and outcome["desks"][0]["phone"] == "110"
    bad = await client.post("/v1/chart/walk", json={"answers": ["danger_no", "<script>私の名前</script>"]})
    body = assert_problem(bad, 422, "invalid_chart_answer")
    assert body["position"] == 1 and "script" not in bad.text and "私の名前" not in bad.text


async def test_triage_of_japanese_text_explains_itself(client) -> None:
    text = "爆サイに実名と勤務先を書かれて「死ね」「消えろ」と毎日のように言われています。削除してもらう方法を知りたいです。"
    response = await client.post("/v1/triage", json={"text": text})
    assert response.status_code == 200
    body = response.json()
    top3 = [c["code"] for c in body["categories"][:3]]
    assert {"RIGHTS.PRIVACY_ID", "RIGHTS.INSULT", "RIGHTS.DEFAMATION"} & set(top3)
    for suggestion in body["categories"]:
        assert suggestion["triggers"] and all(t in text for t in suggestion["triggers"])
        assert suggestion["label_ja"]
    assert body["desks"] and body["guides"] and body["rules_version"]
    urgent = (
        await client.post("/v1/triage", json={"text": "もう生きているのがつらい。今夜死にたい。"})
    ).json()
    flags = {f["flag"]: f for f in urgent["urgency"]}
    assert "suicide" in flags and urgent["desks"][0]["code"] in {"police_110", "mamorouyo_kokoro"}


@ON_BOTH_COUNTER_STORES
async def test_triage_is_rate_limited_per_address(client, container) -> None:
    limit = container.settings.triage_per_minute
    for _ in range(limit):
        assert (await client.post("/v1/triage", json={"text": "相談です"})).status_code == 200
    blocked = await client.post("/v1/triage", json={"text": "相談です"})
    assert_problem(blocked, 429, "too_many_requests")
    assert int(blocked.headers["retry-after"]) <= 60


async def test_referral_lifecycle_and_isolation(client, people) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    base = f"/v1/consultations/{c['id']}/referrals"
    reason = "発信者情報開示命令の申立てには弁護士が必要なため、法テラスをご案内します。"
    assert_problem(
        await client.post(base, headers=staff.headers, json={"desk_code": "houterasu", "reason": reason}),
        403,
        "not_assigned",
    )
    await take(client, staff, c["id"])
    assert_problem(
        await client.post(base, headers=staff.headers, json={"desk_code": "nope", "reason": reason}),
        422,
        "unknown_code",
    )
    created = await client.post(
        base, headers=staff.headers, json={"desk_code": "houterasu", "reason": reason}
    )
    assert created.status_code == 201 and created.json()["state"] == "proposed"
    rid = created.json()["id"]
    mine = (await client.get(base, headers=owner.headers)).json()["items"]
    assert mine[0]["desk"]["phone"] and mine[0]["reason"] == reason
    assert_problem(await client.post(f"{base}/{rid}/make", headers=staff.headers), 409, "invalid_transition")
    assert_problem(await client.post(f"{base}/{rid}/consent", headers=staff.headers), 403, "role_not_allowed")
    stranger = await people.create()
    assert_problem(await client.get(base, headers=stranger.headers), 404)
    assert_problem(await client.post(f"{base}/{rid}/consent", headers=stranger.headers), 404)
    assert (await client.post(f"{base}/{rid}/consent", headers=owner.headers)).json()["state"] == "consented"
    assert (await client.post(f"{base}/{rid}/make", headers=staff.headers)).json()["state"] == "made"
    assert (await client.post(f"{base}/{rid}/close", headers=staff.headers)).json()["state"] == "closed"
    assert_problem(await client.post(f"{base}/{rid}/withdraw", headers=staff.headers), 409)
    second = (
        await client.post(
            base, headers=staff.headers, json={"desk_code": "sia_hotline", "reason": "代行依頼"}
        )
    ).json()
    declined = await client.post(f"{base}/{second['id']}/decline", headers=owner.headers)
    assert declined.json()["state"] == "declined"
    other = await open_consultation(client, owner)
    assert_problem(
        await client.post(f"/v1/consultations/{other['id']}/referrals/{rid}/consent", headers=owner.headers),
        404,
        "referral_not_found",
    )


async def test_chart_walk_combines_goals_and_names_its_government_source(client) -> None:
    chart = (await client.get("/v1/chart")).json()
    assert chart["source"]["publisher_ja"] == "法務省・総務省" and chart["source"]["urls"]
    nodes = {n["id"]: n for n in chart["nodes"]}
    assert nodes["q_goal"]["multiple"] is True and nodes["q_goal"]["origin"] == "government"
    assert nodes["q_topic"]["origin"] == "centre"
    answers = ["danger_no", "topic_abuse", "need_solution", "goal_self", "goal_compensation"]
    walked = (await client.post("/v1/chart/walk", json={"answers": answers})).json()
    assert walked["done"] is True and walked["node"]["id"] == "o_self_service"
    assert walked["also"][0]["id"] == "o_lawyer" and "bar_association" in walked["also"][0]["desks"]
    assert walked["answers"] == answers


async def test_guides_are_served_in_english_too(client) -> None:
    guide = (await client.get("/v1/guides/filtering")).json()
    assert guide["summary_en"] and all(s["body_en"] and s["title_en"] for s in guide["steps"])
    desks = {d["code"] for d in (await client.get("/v1/desks")).json()}
    assert {"moj_foreign_language", "yorisoi_foreign", "police_station"} <= desks


async def _service_headers(container, *scopes: str) -> tuple[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    import uuid

    from domain.actors import Client

    client_id = f"svc-{uuid.uuid4().hex[:6]}"
    _, secret = await container.accounts.add_service_client(
        client_id=client_id, name="相談フォーム連携", kind=Client.service, scopes=frozenset(scopes)
    )
    pair = await container.accounts.login_client(client_id, secret, None, address=None)
    return client_id, {"Authorization": f"Bearer {pair.access_token}"}


async def test_service_clients_need_the_scope_each_public_operation_names(client, container) -> None:
    text = {"text": "ネットに悪口を書かれました"}
    _, chart_only = await _service_headers(container, "chart:read")
    _, both = await _service_headers(container, "chart:read", "triage:run")
    assert (await client.post("/v1/triage", json=text)).status_code == 200  # anonymous: public
    assert_problem(await client.post("/v1/triage", json=text, headers=chart_only), 403, "insufficient_scope")
    assert (await client.post("/v1/triage", json=text, headers=both)).status_code == 200
    assert (await client.get("/v1/chart", headers=chart_only)).status_code == 200
    _, triage_only = await _service_headers(container, "triage:run")
    assert_problem(await client.get("/v1/chart", headers=triage_only), 403, "insufficient_scope")
    assert_problem(
        await client.post("/v1/chart/walk", json={"answers": []}, headers=triage_only),
        403,
        "insufficient_scope",
    )
    # A token that is sent must be valid, even on a public route.
    assert_problem(
        await client.get("/v1/chart", headers={"Authorization": "Bearer nope"}), 401, "invalid_token"
    )


@ON_BOTH_COUNTER_STORES
async def test_a_service_client_is_rate_limited_as_itself_not_as_its_address(client, container) -> None:
    limit = container.settings.triage_per_minute
    _, first = await _service_headers(container, "triage:run")
    _, second = await _service_headers(container, "triage:run")
    text = {"text": "ネットに悪口を書かれました"}
    for _ in range(limit):
        assert (await client.post("/v1/triage", json=text, headers=first)).status_code == 200
    assert_problem(await client.post("/v1/triage", json=text, headers=first), 429, "too_many_requests")
    # Same server address, another client: its own bucket; and anonymous callers from that address too.
    assert (await client.post("/v1/triage", json=text, headers=second)).status_code == 200
    assert (await client.post("/v1/triage", json=text)).status_code == 200


async def test_referrals_page_oldest_first_and_a_cursor_reads_only_its_own_case(
    client, people, clock
) -> None:
    owner, stranger = await people.create(), await people.create()
    staff = await people.create(Role.consultant)
    mine, other = await open_consultation(client, owner), await open_consultation(client, owner)
    made = []
    for case in (mine, other):
        await take(client, staff, case["id"])
    for desk in ("houterasu", "sia_hotline", "houterasu"):
        clock.advance(timedelta(seconds=1))
        created = await client.post(
            f"/v1/consultations/{mine['id']}/referrals",
            headers=staff.headers,
            json={"desk_code": desk, "reason": "ご案内します"},
        )
        made.append(created.json()["id"])
    theirs = (
        await client.post(
            f"/v1/consultations/{other['id']}/referrals",
            headers=staff.headers,
            json={"desk_code": "houterasu", "reason": "別件"},
        )
    ).json()["id"]
    url = f"/v1/consultations/{mine['id']}/referrals"
    first = (await client.get(url, headers=owner.headers, params={"limit": 2})).json()
    assert [r["id"] for r in first["items"]] == made[:2] and first["next_cursor"]
    rest = (
        await client.get(url, headers=owner.headers, params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [r["id"] for r in rest["items"]] == made[2:] and rest["next_cursor"] is None
    there = await client.get(
        f"/v1/consultations/{other['id']}/referrals",
        headers=owner.headers,
        params={"cursor": first["next_cursor"]},
    )
    assert {r["id"] for r in there.json()["items"]} <= {theirs}
    assert_problem(
        await client.get(url, headers=stranger.headers, params={"cursor": first["next_cursor"]}), 404
    )
