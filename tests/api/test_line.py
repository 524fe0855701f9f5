"""The LINE official account over HTTP: signed webhooks of every event shape the bot handles, the worker's
answers through a fake Messaging API on loopback, account linking, answer notices and dead letters."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text, update

from domain.actors import Actor, Client, Role
from domain.errors import ValidationFailed
from domain.line import ANSWER_NOTICE
from infra.db.tables_line import LineDeliveryRow, LineInboxRow, LineLinkNonceRow, LineUserRow
from tests.api.consultation_helpers import answer, open_consultation, take
from tests.conftest import assert_problem
from tests.integration.fake_line import (
    ACCESS_TOKEN,
    BOT_USER_ID,
    CHANNEL_SECRET,
    FakeLine,
    account_link_event,
    event,
    line_user_id,
    payload,
    postback_event,
    sign,
    text_event,
)

WEBHOOK = "/v1/line/webhook"
LOGIN_URL = "https://mypage.example.jp/line/link"


@pytest.fixture(scope="module")
async def fake_line() -> AsyncIterator[FakeLine]:
    async with FakeLine.running() as fake:
        yield fake


@pytest.fixture(scope="module")
async def line_container(settings, suite_clock, fake_line: FakeLine):  # type: ignore[no-untyped-def]
    from infra.container import build_container

    c = build_container(
        settings.model_copy(
            update={
                "line_channel_secret": SecretStr(CHANNEL_SECRET),
                "line_channel_access_token": SecretStr(ACCESS_TOKEN),
                "line_api_base_url": fake_line.url,
                "line_data_api_base_url": fake_line.url,
                "line_login_url": LOGIN_URL,
                "line_bot_user_id": BOT_USER_ID,
                "line_retry_base_seconds": 0.0,
                "line_max_attempts": 3,
            }
        ),
        suite_clock,
    )
    yield c
    await c.close()


@pytest.fixture(scope="module")
def line_app(line_container):  # type: ignore[no-untyped-def]
    from api.main import create_app

    return create_app(container=line_container)


@pytest.fixture
async def line_client(line_app, container, fake_line: FakeLine) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    fake_line.reset()
    transport = httpx.ASGITransport(app=line_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def deliver(client: httpx.AsyncClient, *events: dict, **headers: str) -> httpx.Response:  # type: ignore[type-arg]
    body = payload(*events)
    return await client.post(
        WEBHOOK,
        content=body,
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body), **headers},
    )


async def count(c, table) -> int:  # type: ignore[no-untyped-def]
    async with c.sessions() as db:
        return int((await db.execute(select(func.count()).select_from(table))).scalar_one())


async def line_user(c, user: str) -> LineUserRow | None:  # type: ignore[no-untyped-def]
    async with c.sessions() as db:
        return (
            await db.execute(select(LineUserRow).where(LineUserRow.line_user_id == user))
        ).scalar_one_or_none()


def quick_replies(call) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    items = []
    for message in call.body["messages"]:
        items += [i["action"] for i in message.get("quickReply", {}).get("items", [])]
    return items


# -- the signature gate ------------------------------------------------------------------------------


@pytest.mark.parametrize("signature", [None, "", "   ", "bm90IGEgc2lnbmF0dXJl", "wrong-secret"])
async def test_missing_empty_or_wrong_signature_is_401_and_nothing_is_stored(
    line_client, line_container, signature
) -> None:  # type: ignore[no-untyped-def]
    body = payload(text_event(line_user_id(), "こんにちは"))
    headers = {"Content-Type": "application/json"}
    if signature == "wrong-secret":
        headers["X-Line-Signature"] = sign(body, "another-channel-secret")
    elif signature is not None:
        headers["X-Line-Signature"] = signature
    response = await line_client.post(WEBHOOK, content=body, headers=headers)
    assert_problem(response, 401)
    assert await count(line_container, LineInboxRow) == 0


async def test_a_reserialised_body_fails_the_signature(line_client, line_container) -> None:  # type: ignore[no-untyped-def]
    body = payload(text_event(line_user_id(), "削除してほしい書き込みがあります"))
    signature = sign(body)
    reserialised = json.dumps(json.loads(body)).encode()  # same data, other bytes (escapes, spaces)
    assert reserialised != body
    response = await line_client.post(
        WEBHOOK,
        content=reserialised,
        headers={"Content-Type": "application/json", "X-Line-Signature": signature},
    )
    assert_problem(response, 401, "invalid_signature")
    assert await count(line_container, LineInboxRow) == 0


async def test_a_bearer_token_is_no_substitute_for_the_signature(line_client, people) -> None:  # type: ignore[no-untyped-def]
    admin = await people.create(Role.admin)
    body = payload(text_event(line_user_id(), "こんにちは"))
    response = await line_client.post(
        WEBHOOK, content=body, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 401, "missing_signature")


async def test_without_a_channel_secret_the_webhook_is_503_never_500(client) -> None:  # type: ignore[no-untyped-def]
    body = payload(text_event(line_user_id(), "こんにちは"))
    response = await client.post(
        WEBHOOK, content=body, headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    )
    assert_problem(response, 503, "line_not_configured")
    assert "retry-after" in response.headers


async def test_another_destination_is_refused(line_client, line_container) -> None:  # type: ignore[no-untyped-def]
    body = payload(text_event(line_user_id(), "こんにちは"), destination="U" + "0" * 32)
    response = await line_client.post(
        WEBHOOK, content=body, headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    )
    assert_problem(response, 401, "wrong_destination")
    assert await count(line_container, LineInboxRow) == 0


async def test_the_body_limit_applies(line_client) -> None:  # type: ignore[no-untyped-def]
    body = payload(text_event(line_user_id(), "あ" * 30_000))  # 90 kB > the suite's 64 kB limit
    response = await line_client.post(
        WEBHOOK, content=body, headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    )
    assert_problem(response, 413)


async def test_verification_request_with_no_events_is_200(line_client) -> None:  # type: ignore[no-untyped-def]
    response = await deliver(line_client)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 0}


# -- conversations -----------------------------------------------------------------------------------


async def test_follow_greets_with_the_menu_by_reply(line_client, line_container, fake_line, settings) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    response = await deliver(line_client, event("follow", user))
    assert response.status_code == 200 and response.json() == {"stored": 1}
    assert fake_line.calls == []  # answered before anything is sent: the worker does the talking

    await line_container.worker.run_once()
    [call] = fake_line.calls
    assert call.kind == "reply" and call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    joined = "\n".join(call.texts)
    assert "友だち追加ありがとうございます" in joined and settings.public_url in joined
    labels = [a["label"] for a in quick_replies(call)]
    assert {"窓口チャート", "相談のしかた", "証拠の残し方", "ホームページ"} <= set(labels)
    row = await line_user(line_container, user)
    assert row is not None and row.followed_at is not None and row.user_id is None


async def test_free_text_gets_triage_and_desks_and_is_never_stored_or_logged(
    line_client, line_container, fake_line, caplog
) -> None:  # type: ignore[no-untyped-def]
    words = "元交際相手にネットで裸の写真をばらまかれて、殺すと脅されています"
    caplog.set_level(logging.DEBUG)
    response = await deliver(line_client, text_event(line_user_id(), words))
    assert response.status_code == 200

    async with line_container.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT payload FROM line_inbox"))).scalar_one()
    assert "写真" not in str(stored) and "殺す" not in str(stored)
    assert (stored if isinstance(stored, dict) else json.loads(stored))["intent"] == "triage"

    await line_container.worker.run_once()
    [call] = fake_line.sent()
    reply = "\n".join(call.texts)
    assert "110" in reply  # urgent: the emergency line comes first
    assert "窓口" in reply
    assert "殺す" not in reply and "写真をばらまかれ" not in reply  # nothing of the text is echoed
    async with line_container.engine.connect() as conn:
        for table in ("line_inbox", "line_delivery", "line_user"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608 - fixed names
            assert "殺す" not in str(rows)
    assert all("殺す" not in r.getMessage() and "写真" not in r.getMessage() for r in caplog.records)


async def test_menu_keyword_shows_the_menu(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    await deliver(line_client, text_event(line_user_id(), "メニュー"))
    await line_container.worker.run_once()
    [call] = fake_line.sent()
    assert "メニューから選んでください" in call.texts[0]


async def test_a_sticker_gets_a_polite_hint(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    sticker = event(
        "message", line_user_id(), message={"id": "9", "type": "sticker", "packageId": "1", "stickerId": "1"}
    )
    await deliver(line_client, sticker)
    await line_container.worker.run_once()
    [call] = fake_line.sent()
    assert "スタンプ" in call.texts[0]


async def test_postbacks_walk_the_chart_statelessly(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    await deliver(line_client, postback_event(user, "menu:chart"))
    await line_container.worker.run_once()
    first = fake_line.sent()[-1]
    assert "危険" in first.texts[0]
    choices = {a["displayText"]: a["data"] for a in quick_replies(first) if a["type"] == "postback"}
    no_danger = next(data for label, data in choices.items() if label == "いいえ")
    assert no_danger == "chart:danger_no"

    await deliver(line_client, postback_event(user, no_danger))
    await line_container.worker.run_once()
    second = fake_line.sent()[-1]
    abuse = next(a["data"] for a in quick_replies(second) if a["data"].endswith("topic_threat"))
    assert abuse == "chart:danger_no,topic_threat"

    await deliver(line_client, postback_event(user, abuse))
    await line_container.worker.run_once()
    outcome = "\n".join(fake_line.sent()[-1].texts)
    assert "相談窓口" in outcome and "警察" in outcome


async def test_a_stale_or_altered_chart_path_starts_over(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    await deliver(line_client, postback_event(line_user_id(), "chart:danger_no,no_such_option"))
    await line_container.worker.run_once()
    texts = fake_line.sent()[-1].texts
    assert "最初から" in texts[0] and "危険" in texts[1]


async def test_howto_and_evidence_menu_items(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    await deliver(line_client, postback_event(user, "menu:howto"), postback_event(user, "menu:evidence"))
    await line_container.worker.run_once()
    howto, evidence = fake_line.sent()
    assert "相談のしかた" in howto.texts[0]
    assert "証拠の残し方" in evidence.texts[0] and "URL" in evidence.texts[0]


async def test_an_unknown_event_type_is_stored_ignored_and_200(
    line_client, line_container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    response = await deliver(
        line_client, event("videoPlayComplete", line_user_id(), videoPlayComplete={"trackingId": "t"})
    )
    assert response.status_code == 200 and response.json() == {"stored": 1}
    await line_container.worker.run_once()
    assert fake_line.calls == []
    async with line_container.sessions() as db:
        row = (await db.execute(select(LineInboxRow))).scalar_one()
    assert row.processed_at is not None and row.payload is None and row.reply_token is None


async def test_a_redelivered_event_is_processed_once(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    original = postback_event(line_user_id(), "menu:howto")
    assert (await deliver(line_client, original)).json() == {"stored": 1}
    again = {**original, "deliveryContext": {"isRedelivery": True}}
    assert (await deliver(line_client, again)).json() == {"stored": 0}
    await line_container.worker.run_once()
    assert (await deliver(line_client, again)).json() == {"stored": 0}  # also after processing
    await line_container.worker.run_once()
    assert len(fake_line.sent()) == 1
    assert await count(line_container, LineInboxRow) == 1


async def test_a_delivery_is_stored_in_one_statement_however_many_events(
    line_client, line_container, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Each event was its own INSERT (a delivery of five took five statements in its transaction): all events of
    a delivery now go in one INSERT … ON CONFLICT DO NOTHING, and a redelivered one among them is not stored
    again nor counted. That statement is its own transaction: on PostgreSQL no BEGIN and COMMIT travel around
    it (they were two more round trips per delivery; they are not cursor statements, so they are watched on the
    driver's connection)."""
    user = line_user_id()
    seen_before = postback_event(user, "menu:howto")
    assert (await deliver(line_client, seen_before)).json() == {"stored": 1}
    events = [
        text_event(user, "削除してほしい書き込みがあります"),
        postback_event(user, "menu:evidence"),
        {**seen_before, "deliveryContext": {"isRedelivery": True}},
        event("follow", user),
    ]
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    transactions: list[object] = []
    if line_container.engine.dialect.name == "postgresql":
        import asyncpg

        opened = asyncpg.Connection.transaction

        def counted(self, *a, **k):  # type: ignore[no-untyped-def]
            transactions.append(self)
            return opened(self, *a, **k)

        monkeypatch.setattr(asyncpg.Connection, "transaction", counted)
    sa_event.listen(line_container.engine.sync_engine, "before_cursor_execute", seen)
    try:
        response = await deliver(line_client, *events)
    finally:
        sa_event.remove(line_container.engine.sync_engine, "before_cursor_execute", seen)
    assert response.status_code == 200 and response.json() == {"stored": 3}
    assert len(statements) == 1, statements
    assert transactions == []
    assert statements[0].startswith("INSERT INTO line_inbox")
    assert await count(line_container, LineInboxRow) == 4


async def test_a_delivery_whose_write_fails_is_not_acknowledged_and_leaves_nothing(
    line_client, line_container, caplog
) -> None:  # type: ignore[no-untyped-def]
    """200 means the events are committed: the delivery's one statement commits by itself, so when it fails
    the LINE Platform gets an error (and redelivers), nothing is left half stored, and the redelivery is
    stored as new."""
    words = "削除してほしい書き込みがあります"
    original = text_event(line_user_id(), words)

    def refuse(*_: object) -> None:
        raise RuntimeError("the database went away")

    caplog.set_level(logging.DEBUG)
    sa_event.listen(line_container.engine.sync_engine, "before_cursor_execute", refuse)
    try:
        response = await deliver(line_client, original)
    finally:
        sa_event.remove(line_container.engine.sync_engine, "before_cursor_execute", refuse)
    assert response.status_code >= 500 and "stored" not in response.text
    assert await count(line_container, LineInboxRow) == 0
    assert all(
        words not in r.getMessage() and original["source"]["userId"] not in str(vars(r))
        for r in caplog.records
    )

    again = await deliver(line_client, {**original, "deliveryContext": {"isRedelivery": True}})
    assert again.status_code == 200 and again.json() == {"stored": 1}
    assert await count(line_container, LineInboxRow) == 1


async def test_a_late_event_is_answered_by_push_with_a_retry_key(
    line_client, line_container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    await deliver(line_client, postback_event(user, "menu:howto", age_seconds=120))
    await line_container.worker.run_once()
    [call] = fake_line.calls
    assert call.kind == "push" and call.body["to"] == user
    uuid.UUID(call.headers["x-line-retry-key"])


async def test_standby_and_group_events_get_no_answer(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    standby = {**postback_event(line_user_id(), "menu:howto"), "mode": "standby"}
    group = postback_event(line_user_id(), "menu:howto")
    group["source"] = {"type": "group", "groupId": "C" + "1" * 32, "userId": line_user_id()}
    await deliver(line_client, standby, group)
    await line_container.worker.run_once()
    assert fake_line.calls == []


# -- account linking ---------------------------------------------------------------------------------


async def link_account(line_client, line_container, fake_line, person, user: str) -> None:  # type: ignore[no-untyped-def]
    """The whole LINE flow: menu → link token → my-page nonce → accountLink event."""
    await deliver(line_client, event("follow", user), postback_event(user, "menu:link"))
    await line_container.worker.run_once()
    assert len(fake_line.of("link_token")) == 1
    assert fake_line.of("link_token")[0].path == f"/v2/bot/user/{user}/linkToken"
    prompt = fake_line.sent()[-1]
    [button] = [a for a in quick_replies(prompt) if a["type"] == "uri"]
    assert button["uri"].startswith(LOGIN_URL + "?linkToken=")
    link_token = parse_qs(urlparse(button["uri"]).query)["linkToken"][0]

    made = await line_client.post(
        "/v1/line/link-nonce", headers=person.headers, json={"link_token": link_token}
    )
    assert made.status_code == 200, made.text
    redirect = urlparse(made.json()["redirect_url"])
    assert (redirect.scheme, redirect.netloc, redirect.path) == (
        "https",
        "access.line.me",
        "/dialog/bot/accountLink",
    )
    query = parse_qs(redirect.query)
    assert query["linkToken"] == [link_token] and query["nonce"] == [made.json()["nonce"]]
    assert 10 <= len(made.json()["nonce"]) <= 255

    await deliver(line_client, account_link_event(user, made.json()["nonce"]))
    await line_container.worker.run_once()
    assert "連携が完了しました" in fake_line.sent()[-1].texts[0]


async def test_account_linking_end_to_end(line_client, line_container, fake_line, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    user = line_user_id()
    assert (await line_client.get("/v1/line/link", headers=person.headers)).json()["linked"] is False

    await link_account(line_client, line_container, fake_line, person, user)

    status = await line_client.get("/v1/line/link", headers=person.headers)
    assert status.status_code == 200
    assert status.json()["linked"] is True and status.json()["following"] is True
    assert user not in status.text  # the LINE user id is never shown
    row = await line_user(line_container, user)
    assert row is not None and row.user_id == person.id
    assert await count(line_container, LineLinkNonceRow) == 0  # consumed

    # Asking to link again from LINE says it is already done (and issues no new link token).
    await deliver(line_client, postback_event(user, "menu:link"))
    await line_container.worker.run_once()
    assert len(fake_line.of("link_token")) == 1
    assert "すでに" in fake_line.sent()[-1].texts[0]


async def test_a_nonce_is_single_use_and_a_wrong_one_binds_nothing(
    line_client, line_container, fake_line, people
) -> None:  # type: ignore[no-untyped-def]
    victim = await people.create(Role.consulter)
    made = await line_client.post(
        "/v1/line/link-nonce", headers=victim.headers, json={"link_token": "a" * 32}
    )
    nonce = made.json()["nonce"]
    owner_line, intruder_line = line_user_id(), line_user_id()

    await deliver(line_client, account_link_event(owner_line, nonce))
    await deliver(line_client, account_link_event(intruder_line, nonce))  # replayed nonce
    await deliver(line_client, account_link_event(line_user_id(), "x" * 43))  # unknown nonce
    await deliver(line_client, account_link_event(line_user_id(), nonce, result="failed"))
    await line_container.worker.run_once()

    assert (await line_user(line_container, owner_line)).user_id == victim.id  # type: ignore[union-attr]
    assert (await line_user(line_container, intruder_line)).user_id is None  # type: ignore[union-attr]
    async with line_container.sessions() as db:
        bound = (await db.execute(select(func.count()).where(LineUserRow.user_id.is_not(None)))).scalar_one()  # type: ignore[union-attr]
    assert bound == 1
    texts = [c.texts[0] for c in fake_line.sent()]
    assert sum("連携が完了しました" in t for t in texts) == 1
    assert sum("連携できませんでした" in t for t in texts) == 3


async def test_an_expired_nonce_binds_nothing(line_client, line_container, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    made = await line_client.post(
        "/v1/line/link-nonce", headers=person.headers, json={"link_token": "b" * 32}
    )
    async with line_container.engine.begin() as conn:
        await conn.execute(
            update(LineLinkNonceRow).values(expires_at=line_container.clock.now() - timedelta(seconds=1))
        )
    user = line_user_id()
    await deliver(line_client, account_link_event(user, made.json()["nonce"]))
    await line_container.worker.run_once()
    assert (await line_user(line_container, user)).user_id is None  # type: ignore[union-attr]


async def test_link_nonce_input_is_checked_and_staff_get_none(line_client, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    bad = await line_client.post(
        "/v1/line/link-nonce", headers=person.headers, json={"link_token": "<script>"}
    )
    assert_problem(bad, 422)
    staff = await people.create(Role.consultant)
    refused = await line_client.post(
        "/v1/line/link-nonce", headers=staff.headers, json={"link_token": "c" * 32}
    )
    assert_problem(refused, 403, "role_not_allowed")


async def test_only_a_link_token_of_lines_shape_reaches_the_redirect_url(
    line_client, line_container, people
) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: any `link_token` went into the redirect URL. Whoever calls the service, a token that could
    add parameters, a fragment, a path or a line break is refused before any URL is built."""
    person = await people.create(Role.consulter)
    actor = Actor(client=Client.web, user_id=person.id, role=Role.consulter)
    attacks = (
        "a" * 32 + "&nonce=attacker",
        "a" * 32 + "#x",
        "a" * 32 + "\r\nLocation: https://attacker.example/",
        "../../evil" + "a" * 10,
        "ａ" * 32,
        "a" * 7,
        "a" * 129,
    )
    for token in attacks:
        with pytest.raises(ValidationFailed) as refused:
            await line_container.line.linking.create_nonce(actor, token)
        assert refused.value.code == "invalid_link_token"
        response = await line_client.post(
            "/v1/line/link-nonce", headers=person.headers, json={"link_token": token}
        )
        body = assert_problem(response, 422)
        assert "attacker" not in response.text and body["code"] in ("validation_failed", "invalid_link_token")
    made = await line_container.line.linking.create_nonce(actor, "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY")
    assert made.redirect_url.startswith(
        "https://access.line.me/dialog/bot/accountLink?linkToken=NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY&nonce="
    )


async def test_unlink_from_the_my_page(line_client, line_container, fake_line, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    user = line_user_id()
    await link_account(line_client, line_container, fake_line, person, user)
    assert (await line_client.delete("/v1/line/link", headers=person.headers)).status_code == 204
    assert (await line_client.delete("/v1/line/link", headers=person.headers)).status_code == 204
    assert (await line_client.get("/v1/line/link", headers=person.headers)).json()["linked"] is False
    assert (await line_user(line_container, user)).user_id is None  # type: ignore[union-attr]


# -- answer notices ----------------------------------------------------------------------------------


async def test_a_published_answer_pushes_to_a_linked_user_only(
    line_client, line_container, fake_line, people, client
) -> None:  # type: ignore[no-untyped-def]
    linked, unlinked = await people.create(Role.consulter), await people.create(Role.consulter)
    user = line_user_id()
    await link_account(line_client, line_container, fake_line, linked, user)
    fake_line.reset()
    consultant = await people.create(Role.consultant)
    secret_words = "削除依頼書の書き方を具体的にご案内します。"
    for person in (linked, unlinked):
        consultation = await open_consultation(client, person)
        await take(client, consultant, consultation["id"])
        await answer(client, consultant, consultation["id"], secret_words, people=people)
        if person is linked:
            linked_consultation = consultation["id"]

    await line_container.worker.run_once()
    [push] = fake_line.of("push")
    assert push.status == 200 and push.body["to"] == user
    assert push.texts[0].startswith(ANSWER_NOTICE)
    assert linked_consultation in push.texts[0]
    assert secret_words not in json.dumps(push.body, ensure_ascii=False)
    uuid.UUID(push.headers["x-line-retry-key"])
    await line_container.worker.run_once()
    assert len(fake_line.of("push")) == 1  # once


async def test_unfollow_unlinks_and_stops_pushes(
    line_client, line_container, fake_line, people, client
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    user = line_user_id()
    await link_account(line_client, line_container, fake_line, person, user)
    await deliver(line_client, event("unfollow", user))
    await line_container.worker.run_once()
    row = await line_user(line_container, user)
    assert row is not None and row.unfollowed_at is not None and row.user_id is None
    assert (await line_client.get("/v1/line/link", headers=person.headers)).json()["linked"] is False

    fake_line.reset()
    consultant = await people.create(Role.consultant)
    consultation = await open_consultation(client, person)
    await take(client, consultant, consultation["id"])
    await answer(client, consultant, consultation["id"], people=people)
    await line_container.worker.run_once()
    assert fake_line.calls == []


async def test_only_the_line_user_id_is_kept(line_client, line_container, fake_line, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    user = line_user_id()
    await link_account(line_client, line_container, fake_line, person, user)
    assert not [c for c in fake_line.calls if "/profile" in c.path]  # the profile is never fetched
    assert set(LineUserRow.model_fields) == {
        "id",
        "line_user_id",
        "user_id",
        "followed_at",
        "unfollowed_at",
        "linked_at",
        "language",  # the language the person chose for the bot's replies (issue 14 item 23), not a profile
        "created_at",
        "updated_at",
    }
    async with line_container.sessions() as db:
        inbox = (await db.execute(select(LineInboxRow))).scalars().all()
        deliveries = (await db.execute(select(LineDeliveryRow))).scalars().all()
    assert inbox and all(r.payload is None and r.reply_token is None for r in inbox)
    assert deliveries and all(r.messages is None and r.reply_token is None for r in deliveries)


# -- dead letters ------------------------------------------------------------------------------------


async def test_dead_letters_are_listed_and_replayed_by_admins(
    line_client, line_container, fake_line, people
) -> None:  # type: ignore[no-untyped-def]
    admin = await people.create(Role.admin)
    user = line_user_id()
    fake_line.fail_always("reply", 500)
    fake_line.fail_always("push", 500)
    await deliver(line_client, event("follow", user))
    for _ in range(3):  # line_max_attempts
        await line_container.worker.run_once()
    assert [c.status for c in fake_line.calls] == [500, 500, 500]

    listed = await line_client.get("/v1/line/dead-letters", headers=admin.headers)
    assert listed.status_code == 200
    [dead] = listed.json()
    assert dead["purpose"] == "event_follow" and dead["attempts"] == 3 and dead["last_error"] == "http_500"
    assert user not in listed.text

    fake_line.recover()
    replayed = await line_client.post(f"/v1/line/dead-letters/{dead['id']}/replay", headers=admin.headers)
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    again = await line_client.post(f"/v1/line/dead-letters/{dead['id']}/replay", headers=admin.headers)
    assert_problem(again, 409, "not_a_dead_letter")
    await line_container.worker.run_once()
    last = fake_line.calls[-1]
    assert last.kind == "push" and last.status == 200 and "友だち追加" in last.texts[0]
    assert (await line_client.get("/v1/line/dead-letters", headers=admin.headers)).json() == []
    missing = await line_client.post(f"/v1/line/dead-letters/{uuid.uuid4()}/replay", headers=admin.headers)
    assert_problem(missing, 404)


async def test_a_nul_in_a_line_event_is_dropped_not_a_500(line_client, line_container, fake_line) -> None:  # type: ignore[no-untyped-def]
    """Issue 13 item 2 at the LINE front door: PostgreSQL stores neither a NUL in text nor \\u0000 in JSON."""
    user = line_user_id()
    broken_id = event("follow", user)
    broken_id["webhookEventId"] += "\x00"
    response = await deliver(line_client, postback_event(user, "menu:chart\x00"), broken_id)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "stored": 1
    }  # the event without an id is dropped; the postback kept, data cleared
    await line_container.worker.run_once()
    async with line_container.sessions() as db:
        row = (await db.execute(select(LineInboxRow))).scalar_one()
    assert row.processed_at is not None and "\x00" not in json.dumps(row.payload)
