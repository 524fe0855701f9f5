"""The homepage chatbot over HTTP: sessions, turns, rate limits, token isolation, hand-off, retention, and an
anonymous chat that ends as a submitted consultation."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from domain.actors import Role
from domain.chart import iter_paths as chart_paths
from domain.chatbot import CHART_PREFIX, FREE_TEXT_PLACEHOLDER, iter_paths
from infra.db.chatbot import purge_chatbot
from infra.db.tables_chatbot import ChatbotDraftRow, ChatbotSessionRow, ChatbotTurnRow
from infra.worker import OutboxWorker
from tests.api.consultation_helpers import intake
from tests.conftest import ON_BOTH_COUNTER_STORES, assert_problem

SESSIONS = "/v1/chatbot/sessions"


async def start(client) -> tuple[str, dict[str, str], dict]:  # type: ignore[no-untyped-def,type-arg]
    response = await client.post(SESSIONS)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["session_id"], {"X-Chatbot-Token": body["session_token"]}, body


async def send_turn(client, sid: str, headers: dict[str, str], **body: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await client.post(f"{SESSIONS}/{sid}/messages", headers=headers, json=body)


async def choose(client, sid: str, headers: dict[str, str], *choices: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    body: dict = {}  # type: ignore[type-arg]
    for choice in choices:
        response = await send_turn(client, sid, headers, choice_id=choice)
        assert response.status_code == 200, (choice, response.text)
        body = response.json()
    return body


def other_client(app, address: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# -- sessions --------------------------------------------------------------------------------------


async def test_a_session_starts_anonymously_with_a_greeting_and_the_menu(client, container) -> None:
    response = await client.post(SESSIONS)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{SESSIONS}/{body['session_id']}"
    assert response.headers["cache-control"] == "no-store"
    token = body["session_token"]
    assert len(token) >= 43  # token_urlsafe(32): 256 bits
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=29) < expires - container.clock.now() <= timedelta(minutes=30)
    greeting = body["turn"]["messages"][0]["text"]
    assert "住所" in greeting and "入力しないでください" in greeting and "110番" in greeting
    # The emergency desk comes from the directory, with a dialable link.
    assert {"title": "110 に電話する", "url": "tel:110"} in body["turn"]["messages"][1]["links"]
    ids = [c["id"] for c in body["turn"]["choices"]]
    assert ids[0] == "flow:delete_post" and "flow:handoff" in ids and "flow:chart" in ids
    async with container.sessions() as db:
        row = await db.get(ChatbotSessionRow, uuid.UUID(body["session_id"]))
    assert row is not None and row.token_digest == container.tokens.digest(token)
    assert token not in str(row.model_dump())


async def test_a_guided_flow_gives_advice_desks_and_guides(client, container) -> None:
    sid, headers, _ = await start(client)
    body = await choose(
        client, sid, headers, "flow:delete_post", "delete_what_privacy", "delete_where_sns", "delete_sns_x"
    )
    texts = "\n".join(m["text"] for m in body["messages"])
    assert "7日以内" in texts and "みんなの人権110番" in texts
    links = {link["url"] for m in body["messages"] for link in m["links"]}
    assert "https://help.x.com/ja/forms" in links  # the platform's own route, from platforms.yaml
    assert "https://madoguchi.example.jp/guides/delete-request" in links
    assert [c["id"] for c in body["choices"]][-3:] == ["menu", "flow:handoff", "end"]
    assert datetime.fromisoformat(body["expires_at"]) > container.clock.now()


async def test_the_chart_runs_inside_the_chat_and_keeps_its_answers(client, container) -> None:
    sid, headers, _ = await start(client)
    first = await choose(client, sid, headers, "flow:chart")
    assert [c["id"] for c in first["choices"]] == ["chart:danger_yes", "chart:danger_no", "menu"]
    outcome = await choose(client, sid, headers, "chart:danger_yes")
    assert "110" in "\n".join(m["text"] for m in outcome["messages"])
    async with container.sessions() as db:
        row = await db.get(ChatbotSessionRow, uuid.UUID(sid))
    assert row is not None and row.state["chart"] == ["danger_yes"]
    assert_problem(await send_turn(client, sid, headers, choice_id="chart:danger_no"), 422, "unknown_choice")


async def test_every_path_of_every_flow_through_the_service(container) -> None:
    """Generated from the data: each path in a fresh session, through the real database and desk directory."""
    bot = container.chatbot
    paths = [list(p) for p in iter_paths(bot.flows)]
    paths += [
        ["flow:chart", *(CHART_PREFIX + a for a in answers)]
        for answers in chart_paths(container.knowledge.chart)
    ]
    for path in paths:
        opened = await bot.open(address=None)
        reply = opened.reply
        for choice in path:
            assert choice in dict(reply.choices), (path, choice)
            reply = await bot.reply(str(opened.session_id), opened.token, choice_id=choice, address=None)
            assert reply.messages and reply.choices
            for m in reply.messages:
                assert all(link.url.startswith(("https://", "http://", "tel:")) for link in m.links)
        assert "menu" in dict(reply.choices)


async def test_free_text_is_triaged_and_never_stored_or_logged(client, container, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sid, headers, _ = await start(client)
    prompt = await choose(client, sid, headers, "flow:free_text")
    assert "入力しないでください" in prompt["messages"][0]["text"]
    secret = "死にたい。元交際相手に裸の写真をばらまくと脅されています。目印ZQX"
    response = await send_turn(client, sid, headers, text=secret)
    assert response.status_code == 200
    body = response.json()
    # Urgent flags put emergency desks first, before the ordinary suggestions.
    assert body["messages"][0]["text"].startswith("急いで")
    urgent_links = {link["url"] for m in body["messages"][1:4] for link in m["links"]}
    assert urgent_links & {"https://www.mhlw.go.jp/mamorouyokokoro/", "tel:%238103"}
    assert "flow:sexual_images" in [c["id"] for c in body["choices"]]
    transcript = (await client.get(f"{SESSIONS}/{sid}", headers=headers)).json()
    assert transcript["turns"][-2]["text"] == FREE_TEXT_PLACEHOLDER
    async with container.sessions() as db:
        stored = (await db.execute(select(ChatbotTurnRow.payload))).scalars().all()
        session_state = (await db.execute(select(ChatbotSessionRow.state))).scalars().all()
    assert "ZQX" not in str(stored) + str(session_state)
    assert "ZQX" not in caplog.text


async def test_a_hand_off_after_free_text_keeps_what_triage_suggested(client, people, container) -> None:
    sid, headers, _ = await start(client)
    await choose(client, sid, headers, "flow:free_text")
    text = "元交際相手に裸の写真をネットにばらまくと脅されています"
    suggested = [s.code for s in container.triage.triage(text).categories]
    assert suggested[0] == "RIGHTS.PRIVATE_SEXUAL" and "ILLEGAL.CSAM" in suggested
    assert (await send_turn(client, sid, headers, text=text)).status_code == 200
    ticket = (await choose(client, sid, headers, "flow:handoff"))["handoff"]
    consulter = await people.create(Role.consulter)
    claimed = await client.post(
        "/v1/chatbot/drafts/claim", headers=consulter.headers, json={"claim_token": ticket["claim_token"]}
    )
    assert claimed.status_code == 200, claimed.text
    # The leading suggestion, not every weak side match (here: not child sexual abuse material).
    assert claimed.json()["categories"] == ["RIGHTS.PRIVATE_SEXUAL"]
    # The text itself never reaches the draft.
    assert "写真" not in claimed.text


async def test_the_transcript_survives_a_reload(client) -> None:
    sid, headers, created = await start(client)
    await choose(client, sid, headers, "flow:evidence", "evidence_device_pc")
    response = await client.get(f"{SESSIONS}/{sid}", headers=headers)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert [t["role"] for t in body["turns"]] == ["bot", "user", "bot", "user", "bot"]
    assert body["turns"][0]["messages"] == created["turn"]["messages"]
    assert body["turns"][1]["text"] == "証拠の残し方を知りたい"
    assert [c["id"] for c in body["choices"]] == ["menu", "flow:handoff", "end"]


async def test_input_is_validated(client) -> None:
    sid, headers, _ = await start(client)
    assert_problem(await send_turn(client, sid, headers), 422, "validation_failed")
    assert_problem(
        await send_turn(client, sid, headers, choice_id="menu", text="両方"), 422, "validation_failed"
    )
    assert_problem(await send_turn(client, sid, headers, text="あ" * 1001), 422, "validation_failed")
    assert_problem(await send_turn(client, sid, headers, choice_id="delete_sns_x"), 422, "unknown_choice")
    response = await client.post(
        f"{SESSIONS}/{sid}/messages", headers=headers, json={"choice_id": "menu", "x": 1}
    )
    assert_problem(response, 422, "validation_failed")


# -- isolation and expiry ----------------------------------------------------------------------------


async def test_a_token_reads_only_its_own_session(client, container) -> None:
    sid_a, headers_a, _ = await start(client)
    sid_b, headers_b, _ = await start(client)
    await choose(client, sid_a, headers_a, "flow:evidence")
    bodies = []
    for sid, headers in (
        (sid_a, headers_b),  # another session's token
        (sid_a, {}),  # no token
        (sid_a, {"X-Chatbot-Token": "x" * 43}),  # a made-up token
        (sid_a, {"X-Chatbot-Token": "x" * 5000}),  # an absurd one
        (str(uuid.uuid4()), headers_a),  # no such session
        ("not-a-uuid", headers_a),
    ):
        for response in (
            await client.get(f"{SESSIONS}/{sid}", headers=headers),
            await send_turn(client, sid, headers, choice_id="menu"),
        ):
            body = assert_problem(response, 404, "chatbot_session_not_found")
            bodies.append({k: v for k, v in body.items() if k not in ("request_id", "instance")})
    assert all(b == bodies[0] for b in bodies)
    # Session A is untouched by all of that.
    transcript = (await client.get(f"{SESSIONS}/{sid_a}", headers=headers_a)).json()
    assert len(transcript["turns"]) == 3
    assert (await client.get(f"{SESSIONS}/{sid_b}", headers=headers_b)).json()["turns"][0]["role"] == "bot"


async def test_sessions_slide_and_expire(client, container) -> None:
    sid, headers, created = await start(client)
    first_expiry = datetime.fromisoformat(created["expires_at"])
    body = await choose(client, sid, headers, "flow:evidence")
    assert datetime.fromisoformat(body["expires_at"]) >= first_expiry
    # Near the absolute cap, the idle timeout no longer extends the session past 4 hours from its start.
    started = container.clock.now() - timedelta(hours=3, minutes=50)
    async with container.engine.begin() as conn:
        await conn.execute(
            update(ChatbotSessionRow).where(ChatbotSessionRow.id == uuid.UUID(sid)).values(created_at=started)
        )
    body = await choose(client, sid, headers, "menu")
    assert abs(datetime.fromisoformat(body["expires_at"]) - (started + timedelta(hours=4))) < timedelta(
        seconds=1
    )
    async with container.engine.begin() as conn:
        await conn.execute(
            update(ChatbotSessionRow)
            .where(ChatbotSessionRow.id == uuid.UUID(sid))
            .values(expires_at=container.clock.now() - timedelta(seconds=1))
        )
    assert_problem(await client.get(f"{SESSIONS}/{sid}", headers=headers), 404, "chatbot_session_not_found")
    assert_problem(await send_turn(client, sid, headers, choice_id="menu"), 404, "chatbot_session_not_found")


# -- rate limits -------------------------------------------------------------------------------------


@ON_BOTH_COUNTER_STORES
async def test_session_creation_is_rate_limited_per_address(client, app, container) -> None:
    limit = container.settings.chatbot_sessions_per_hour
    for _ in range(limit):
        assert (await client.post(SESSIONS)).status_code == 201
    refused = await client.post(SESSIONS)
    assert_problem(refused, 429, "too_many_requests")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    async with other_client(app, "198.51.100.7") as elsewhere:
        assert (await elsewhere.post(SESSIONS)).status_code == 201


@ON_BOTH_COUNTER_STORES
async def test_turns_are_rate_limited_per_address(client, container) -> None:
    sid, headers, _ = await start(client)
    limit = container.settings.chatbot_turns_per_minute
    for _ in range(limit):
        assert (
            await send_turn(client, sid, headers, choice_id="flow:evidence" if _ % 2 == 0 else "menu")
        ).status_code == 200
    refused = await send_turn(client, sid, headers, choice_id="menu")
    assert_problem(refused, 429, "too_many_requests")
    assert 0 < int(refused.headers["retry-after"]) <= 60
    # Reading the transcript counts too: a token cannot be guessed at leisure through it.
    assert_problem(await client.get(f"{SESSIONS}/{sid}", headers=headers), 429, "too_many_requests")


# -- hand-off ----------------------------------------------------------------------------------------


async def handoff(client, *choices: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    sid, headers, _ = await start(client)
    body = await choose(client, sid, headers, *choices, "flow:handoff")
    assert body["handoff"] is not None
    assert [c["id"] for c in body["choices"]] == ["menu", "end"]
    return body["handoff"]  # type: ignore[no-any-return]


async def test_a_claim_token_is_single_use_and_for_consulters_only(client, people, container) -> None:
    ticket = await handoff(
        client, "flow:identify_poster", "identify_when_recent", "identify_goal_compensation"
    )
    expires = datetime.fromisoformat(ticket["expires_at"])
    assert timedelta(hours=23) < expires - container.clock.now() <= timedelta(hours=24)
    claim = {"claim_token": ticket["claim_token"]}
    async with container.sessions() as db:
        stored = (await db.execute(select(ChatbotDraftRow.token_digest))).scalars().all()
    assert stored == [container.tokens.digest(ticket["claim_token"])]

    assert_problem(await client.post("/v1/chatbot/drafts/claim", json=claim), 401)
    consultant = await people.create(Role.consultant)
    assert_problem(
        await client.post("/v1/chatbot/drafts/claim", headers=consultant.headers, json=claim),
        403,
        "role_not_allowed",
    )
    consulter = await people.create(Role.consulter)
    first = await client.post("/v1/chatbot/drafts/claim", headers=consulter.headers, json=claim)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "categories": [],
        "desired_outcomes": ["identify_poster", "compensation_or_punishment"],
        "platforms": [],
        "channel": "chatbot",
    }
    second = await client.post("/v1/chatbot/drafts/claim", headers=consulter.headers, json=claim)
    assert_problem(second, 422, "invalid_or_expired_token")
    other = await people.create(Role.consulter)
    assert_problem(
        await client.post("/v1/chatbot/drafts/claim", headers=other.headers, json=claim),
        422,
        "invalid_or_expired_token",
    )
    assert_problem(
        await client.post("/v1/chatbot/drafts/claim", headers=other.headers, json={"claim_token": "t" * 43}),
        422,
        "invalid_or_expired_token",
    )


async def test_an_expired_claim_token_is_refused(client, people, container) -> None:
    ticket = await handoff(client)
    async with container.engine.begin() as conn:
        await conn.execute(
            update(ChatbotDraftRow).values(expires_at=container.clock.now() - timedelta(seconds=1))
        )
    consulter = await people.create(Role.consulter)
    response = await client.post(
        "/v1/chatbot/drafts/claim", headers=consulter.headers, json={"claim_token": ticket["claim_token"]}
    )
    assert_problem(response, 422, "invalid_or_expired_token")


async def test_from_an_anonymous_chat_to_a_submitted_consultation(client, people) -> None:
    """chat → hand-off → sign in as a consulter → claim → the person submits the prefilled consultation."""
    sid, headers, _ = await start(client)
    await choose(
        client,
        sid,
        headers,
        "flow:delete_post",
        "delete_what_defamation",
        "delete_where_board",
        "delete_board_5ch",
    )
    await send_turn(client, sid, headers, text="掲示板に会社の悪口を書かれています")
    ticket = (await choose(client, sid, headers, "flow:handoff"))["handoff"]

    consulter = await people.create(Role.consulter)
    claimed = await client.post(
        "/v1/chatbot/drafts/claim", headers=consulter.headers, json={"claim_token": ticket["claim_token"]}
    )
    assert claimed.status_code == 200, claimed.text
    draft = claimed.json()
    assert draft == {
        # The guided path's category first, then what triage suggested for the free text (issue 10.9).
        "categories": ["RIGHTS.DEFAMATION", "RIGHTS.INSULT"],
        "desired_outcomes": ["delete"],
        "platforms": ["five_ch"],
        "channel": "chatbot",
    }
    body = intake(
        channel=draft["channel"],
        categories=draft["categories"],
        desired_outcomes=draft["desired_outcomes"],
        platforms=draft["platforms"],
        title="掲示板で誹謗中傷を受けています",
        narrative="5ちゃんねるのスレッドで、事実ではない悪口を繰り返し書かれています。削除の方法を知りたいです。",
        tried=None,
    )
    submitted = await client.post("/v1/consultations", headers=consulter.headers, json=body)
    assert submitted.status_code == 201, submitted.text
    consultation = submitted.json()
    assert consultation["channel"] == "chatbot"
    assert consultation["categories"] == ["RIGHTS.DEFAMATION", "RIGHTS.INSULT"]
    assert consultation["platforms"] == ["five_ch"]
    mine = (await client.get("/v1/consultations", headers=consulter.headers)).json()["items"]
    assert [c["id"] for c in mine] == [consultation["id"]]


# -- retention ---------------------------------------------------------------------------------------


async def _age(container, sid: str, days: int) -> None:  # type: ignore[no-untyped-def]
    async with container.engine.begin() as conn:
        await conn.execute(
            update(ChatbotSessionRow)
            .where(ChatbotSessionRow.id == uuid.UUID(sid))
            .values(last_seen_at=container.clock.now() - timedelta(days=days))
        )


async def _count(container, table) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return int((await db.execute(select(func.count()).select_from(table))).scalar_one())


async def test_transcripts_are_purged_after_the_retention_period(client, container) -> None:
    old_sid, old_headers, _ = await start(client)
    await choose(client, old_sid, old_headers, "flow:handoff")
    new_sid, new_headers, _ = await start(client)
    await choose(client, new_sid, new_headers, "flow:evidence")
    await _age(container, old_sid, 31)
    retention = timedelta(days=container.settings.chatbot_retention_days)
    assert await purge_chatbot(container.sessions, container.clock.now(), retention) == 1
    assert await _count(container, ChatbotSessionRow) == 1
    assert await _count(container, ChatbotDraftRow) == 0
    async with container.sessions() as db:
        left = (await db.execute(select(ChatbotTurnRow.session_id).distinct())).scalars().all()
    assert [str(s) for s in left] == [new_sid]
    assert await purge_chatbot(container.sessions, container.clock.now(), retention) == 0


async def test_the_worker_purges_on_its_passes(client, container) -> None:
    sid, headers, _ = await start(client)
    await _age(container, sid, container.settings.chatbot_retention_days + 1)
    worker = OutboxWorker(
        container.sessions,
        container.settings,
        container.worker.mailer,
        container.tokens.unseal,
        container.clock,
    )
    await worker.run_once()
    assert await _count(container, ChatbotSessionRow) == 0
    # …at most hourly: a second pass right away does not query again.
    assert await worker.purge_chatbot_due(container.clock.now()) == 0


@pytest.mark.parametrize("days", [29])
async def test_recent_transcripts_are_kept(client, container, days: int) -> None:
    sid, _, _ = await start(client)
    await _age(container, sid, days)
    retention = timedelta(days=container.settings.chatbot_retention_days)
    assert await purge_chatbot(container.sessions, container.clock.now(), retention) == 0
