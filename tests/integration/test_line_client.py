"""The LINE adapter against the fake Messaging API on loopback: what goes over the wire, retries with backoff on
429 and 5xx, the retry key that keeps a retried push single, dead letters, the reply-token fallback, the
signature check, and the rich-menu deployment."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from domain.actors import Actor, Client, Role
from domain.errors import Unauthenticated, Unavailable
from infra.db.line import SqlLineDeliveries, SqlLineUsers
from infra.db.tables_line import LineDeliveryRow
from infra.line import LineBot
from infra.line_richmenu import deploy_rich_menu, load_rich_menu
from infra.line_sdk import LineApi, LineCallFailed
from tests.integration.fake_line import (
    ACCESS_TOKEN,
    CHANNEL_SECRET,
    FakeLine,
    line_user_id,
    payload,
    sign,
    text_event,
)

MESSAGES = [{"type": "text", "text": "相談への回答が届きました。"}]
ADMIN = Actor(client=Client.staff, user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.admin)


@pytest.fixture(scope="module")
async def fake_line() -> AsyncIterator[FakeLine]:
    async with FakeLine.running() as fake:
        yield fake


@pytest.fixture(scope="module")
async def bot(settings, database_container, fake_line: FakeLine) -> AsyncIterator[LineBot]:  # type: ignore[no-untyped-def]
    container = database_container
    line_settings = settings.model_copy(
        update={
            "line_channel_secret": SecretStr(CHANNEL_SECRET),
            "line_channel_access_token": SecretStr(ACCESS_TOKEN),
            "line_api_base_url": fake_line.url,
            "line_data_api_base_url": fake_line.url,
            "line_retry_base_seconds": 0.0,
            "line_max_attempts": 3,
        }
    )
    made = LineBot(
        container.engine,
        container.sessions,
        line_settings,
        guidance=container.guidance,
        triage=container.triage,
        knowledge=container.knowledge,
        clock=container.clock,
    )
    yield made
    await made.close()


@pytest.fixture(autouse=True)
def _fresh_fake(fake_line: FakeLine) -> None:
    fake_line.reset()


async def queue_push(container, *, reply_token: str | None = None, age: float = 0.0) -> tuple[uuid.UUID, str]:  # type: ignore[no-untyped-def]
    user = line_user_id()
    now = container.clock.now()
    async with container.sessions() as db:
        await SqlLineUsers(db).seen(user, now)
        row = SqlLineDeliveries(db).add(
            purpose="test",
            line_user_id=user,
            messages=MESSAGES,
            now=now,
            reply_token=reply_token,
            event_at=now - timedelta(seconds=age),
        )
        await db.commit()
        return row.id, user


async def delivery(container, row_id: uuid.UUID) -> LineDeliveryRow:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return (await db.execute(select(LineDeliveryRow).where(LineDeliveryRow.id == row_id))).scalar_one()


async def test_push_and_reply_go_over_the_wire_as_line_expects(bot, fake_line) -> None:  # type: ignore[no-untyped-def]
    await bot.api.push("U" + "1" * 32, MESSAGES, "123e4567-e89b-12d3-a456-426614174000")
    await bot.api.reply("reply-token-1", MESSAGES)
    push, reply = fake_line.calls
    assert push.path == "/v2/bot/message/push" and push.status == 200
    assert push.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert push.headers["x-line-retry-key"] == "123e4567-e89b-12d3-a456-426614174000"
    assert push.body["to"] == "U" + "1" * 32 and push.texts == ["相談への回答が届きました。"]
    assert reply.path == "/v2/bot/message/reply" and reply.body["replyToken"] == "reply-token-1"


async def test_errors_carry_only_the_status(bot, fake_line) -> None:  # type: ignore[no-untyped-def]
    fake_line.fail("push", 429)
    with pytest.raises(LineCallFailed) as caught:
        await bot.api.push("U" + "1" * 32, MESSAGES, str(uuid.uuid4()))
    assert caught.value.status == 429 and caught.value.retryable and caught.value.retry_after == 1.0
    assert str(caught.value) == "line_http_429"  # no headers or bodies in the message
    fake_line.fail("push", 400)
    with pytest.raises(LineCallFailed) as caught:
        await bot.api.push("U" + "1" * 32, MESSAGES, str(uuid.uuid4()))
    assert not caught.value.retryable


async def test_an_unreachable_api_is_a_retryable_network_failure(settings) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    api = LineApi(
        settings.model_copy(
            update={
                "line_channel_access_token": SecretStr(ACCESS_TOKEN),
                "line_api_base_url": f"http://127.0.0.1:{free_port()}",
            }
        )
    )
    try:
        with pytest.raises(LineCallFailed) as caught:
            await api.push("U" + "1" * 32, MESSAGES, str(uuid.uuid4()))
    finally:
        await api.close()
    assert caught.value.status == 0 and caught.value.retryable and caught.value.code == "network"


async def test_a_500_is_retried_with_the_same_retry_key_then_sent_once(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container)
    fake_line.fail("push", 500)
    assert await bot.run_once() == 0
    row = await delivery(container, row_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "http_500")

    assert await bot.run_once() == 1
    assert await bot.run_once() == 0  # sent once, never again
    first, second = fake_line.of("push")
    assert (first.status, second.status) == (500, 200)
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"] == row.retry_key
    row = await delivery(container, row_id)
    assert row.status == "sent" and row.messages is None


async def test_a_retry_after_on_429_is_honoured(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container)
    fake_line.fail("push", 429)
    before = container.clock.now()
    await bot.run_once()
    row = await delivery(container, row_id)
    assert row.status == "pending" and row.next_attempt_at >= before + timedelta(seconds=1)
    assert await bot.run_once() == 0  # not due yet


async def test_backoff_grows_with_attempts(bot) -> None:  # type: ignore[no-untyped-def]
    slow = LineBot(
        bot.engine,
        bot.sessions,
        bot.settings.model_copy(update={"line_retry_base_seconds": 2.0}),
        guidance=bot.guidance,
        triage=bot.triage,
        knowledge=bot.knowledge,
        clock=bot.clock,
    ).deliveries.retry
    assert [slow.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert slow.backoff(30).total_seconds() == 600


async def test_a_push_line_already_accepted_counts_as_sent(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container)
    row = await delivery(container, row_id)
    fake_line.accepted_retry_keys.add(row.retry_key)  # e.g. the first try timed out after LINE took it
    assert await bot.run_once() == 1
    assert fake_line.calls[0].status == 409
    assert (await delivery(container, row_id)).status == "sent"


async def test_the_last_failure_makes_a_dead_letter_that_replays(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container)
    fake_line.fail_always("push", 503)
    for _ in range(5):
        await bot.run_once()
    assert len(fake_line.of("push")) == 3  # line_max_attempts, then it stops
    row = await delivery(container, row_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "http_503")
    assert row.failed_at is not None and row.messages == MESSAGES
    [dead] = await bot.dead_letters.newest(ADMIN)
    assert dead.id == row_id

    fake_line.recover()
    replayed = await bot.dead_letters.replay(ADMIN, row_id)
    assert replayed.status == "pending" and replayed.replays == 1
    assert await bot.run_once() == 1
    assert await bot.dead_letters.newest(ADMIN) == []
    assert fake_line.of("push")[-1].headers["x-line-retry-key"] == row.retry_key


async def test_a_permanent_error_goes_straight_to_the_dead_letters(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container)
    fake_line.fail("push", 400)
    await bot.run_once()
    row = await delivery(container, row_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "http_400")


async def test_fresh_reply_token_replies_and_a_refused_one_falls_back_to_push(
    bot, container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    row_id, user = await queue_push(container, reply_token="fresh-token")
    fake_line.used_reply_tokens.add("fresh-token")  # LINE refuses it (expired or used)
    assert await bot.run_once() == 1
    reply, push = fake_line.calls
    assert (reply.kind, reply.status) == ("reply", 400)
    assert (push.kind, push.status, push.body["to"]) == ("push", 200, user)


async def test_an_old_reply_token_is_not_tried(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    await queue_push(container, reply_token="old-token", age=55)
    assert await bot.run_once() == 1
    assert [c.kind for c in fake_line.calls] == ["push"]


async def test_nothing_is_sent_to_someone_who_blocked_the_bot(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, user = await queue_push(container)
    async with container.sessions() as db:
        users = SqlLineUsers(db)
        await users.seen(user, container.clock.now())
        await users.unfollow(user, container.clock.now())
        await db.commit()
    assert await bot.run_once() == 0
    assert fake_line.calls == []
    row = await delivery(container, row_id)
    assert row.status == "skipped" and row.messages is None


async def test_a_delivery_claimed_by_another_worker_is_left_alone(bot, container, fake_line) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container)
    async with container.engine.begin() as conn:
        await conn.execute(
            update(LineDeliveryRow)
            .where(LineDeliveryRow.id == row_id)
            .values(locked_until=container.clock.now() + timedelta(minutes=1))
        )
    assert await bot.run_once() == 0
    assert fake_line.calls == []


def test_signature_check(bot) -> None:  # type: ignore[no-untyped-def]
    body = payload(text_event(line_user_id(), "テスト"))
    bot.verify(body, sign(body))
    for bad in (None, "", sign(body, "other-secret"), sign(body + b" ")):
        with pytest.raises(Unauthenticated):
            bot.verify(body, bad)
    with pytest.raises(Unauthenticated):
        bot.verify(b"\xff\xfe", sign(b"\xff\xfe"))  # not UTF-8: LINE never sends that


def test_no_secret_means_unavailable_but_no_signature_is_still_unauthenticated(bot, settings) -> None:  # type: ignore[no-untyped-def]
    bare = LineBot(
        bot.engine,
        bot.sessions,
        settings,
        guidance=bot.guidance,
        triage=bot.triage,
        knowledge=bot.knowledge,
        clock=bot.clock,
    )
    assert not bare.configured
    body = payload()
    with pytest.raises(Unavailable):
        bare.verify(body, sign(body))
    with pytest.raises(Unauthenticated):
        bare.verify(body, None)


def test_secrets_never_show_in_settings_reprs(bot) -> None:  # type: ignore[no-untyped-def]
    shown = repr(bot.settings) + str(bot.settings.model_dump())
    assert CHANNEL_SECRET not in shown and ACCESS_TOKEN not in shown


async def test_rich_menu_is_created_with_an_image_of_its_size_and_made_default(bot, fake_line) -> None:  # type: ignore[no-untyped-def]
    from io import BytesIO

    from PIL import Image

    spec = load_rich_menu()
    rich_menu_id = await deploy_rich_menu(bot.api, spec, "https://madoguchi.example.jp")
    create, image, default = fake_line.calls
    assert create.path == "/v2/bot/richmenu" and create.body["size"] == spec["size"]
    assert create.body["chatBarText"] == spec["chat_bar_text"]
    uris = [a["action"]["uri"] for a in create.body["areas"] if a["action"]["type"] == "uri"]
    assert uris and all(u.startswith("https://madoguchi.example.jp") for u in uris)
    assert image.path == f"/v2/bot/richmenu/{rich_menu_id}/content"
    assert image.headers["content-type"] == "image/png"
    png = Image.open(BytesIO(image.body))
    assert png.format == "PNG" and png.size == (spec["size"]["width"], spec["size"]["height"])
    assert default.path == f"/v2/bot/user/all/richmenu/{rich_menu_id}"


def test_rich_menu_file_is_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "menu.yaml"
    bad.write_text(
        "size: {width: 2500, height: 843}\nchat_bar_text: メニュー\nareas:\n"
        "  - {label_ja: a, label_en: a, bounds: {x: 0, y: 0, width: 2600, height: 843},"
        " action: {type: postback, data: 'menu:chart'}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="outside"):
        load_rich_menu(bad)
    bad.write_text(
        bad.read_text(encoding="utf-8").replace("2600", "2500").replace("menu:chart", "menu:nope"),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="does not understand"):
        load_rich_menu(bad)


def test_rich_menu_command_dry_run(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from infra.cli import app

    monkeypatch.setenv("MADOGUCHI_PUBLIC_URL", "https://madoguchi.example.jp")
    out = tmp_path / "menu.png"
    result = CliRunner().invoke(app, ["line-rich-menu", "--dry-run", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG") and "https://madoguchi.example.jp" in result.output


# -- issue 13.10: an answer of an unexpected kind, or any exception, is one failed attempt of one row ------------


async def make_due(container, row_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    async with container.engine.begin() as conn:
        await conn.execute(
            update(LineDeliveryRow)
            .where(LineDeliveryRow.id == row_id)
            .values(next_attempt_at=container.clock.now() - timedelta(seconds=1), locked_until=None)
        )


async def test_a_2xx_with_an_unparseable_body_is_sent_once_and_the_queue_moves_on(
    bot, container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    rows = [await queue_push(container) for _ in range(3)]
    fake_line.garble("push", times=3)
    assert await bot.run_once() == 3
    for row_id, _ in rows:
        await make_due(container, row_id)  # even as if every lease had run out
    assert await bot.run_once() == 0
    assert len(fake_line.of("push")) == 3  # each message went to LINE exactly once
    for row_id, _ in rows:
        row = await delivery(container, row_id)
        assert (row.status, row.attempts, row.last_error) == ("sent", 0, None)


async def test_an_unexpected_exception_is_one_failed_attempt_of_that_row_alone(
    bot, container, fake_line, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    broken_id, broken_user = await queue_push(container)
    fine = [await queue_push(container) for _ in range(2)]
    real_push = bot.api.push

    async def push(to, messages, retry_key):  # type: ignore[no-untyped-def]
        if to == broken_user:
            raise RuntimeError("the SDK could not read the answer")  # an exception type nobody expected
        await real_push(to, messages, retry_key)

    monkeypatch.setattr(bot.api, "push", push)
    before = container.clock.now()
    assert await bot.run_once() == 2  # the other rows are not held up
    row = await delivery(container, broken_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "RuntimeError")
    assert row.locked_until is None and row.next_attempt_at >= before  # backoff, not a stuck lease
    assert await bot.run_once() == 0  # tried once per pass, not in a loop
    for _ in range(3):
        await make_due(container, broken_id)
        await bot.run_once()
    row = await delivery(container, broken_id)
    assert (row.status, row.attempts) == ("dead", 3)  # line_max_attempts, then a dead letter to replay
    assert row.messages == MESSAGES
    assert {c.body["to"] for c in fake_line.sent()} == {user for _, user in fine}


async def test_a_reply_cut_off_after_line_took_it_is_never_said_again_by_push(
    bot, container, fake_line, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    row_id, _ = await queue_push(container, reply_token="token-once")
    real_reply = bot.api.reply

    async def reply_then_lose_the_answer(token, messages):  # type: ignore[no-untyped-def]
        await real_reply(token, messages)
        raise LineCallFailed(0)  # the connection dropped before the answer came back

    monkeypatch.setattr(bot.api, "reply", reply_then_lose_the_answer)
    assert await bot.run_once() == 0
    row = await delivery(container, row_id)
    assert row.status == "pending" and row.last_error == "reply_unsure_network"
    monkeypatch.setattr(bot.api, "reply", real_reply)
    await make_due(container, row_id)
    await bot.run_once()  # the same token again: LINE refuses it as used, so it did go out
    assert [(c.kind, c.status) for c in fake_line.calls] == [("reply", 200), ("reply", 400)]
    row = await delivery(container, row_id)
    assert (row.status, row.last_error) == ("dead", "reply_outcome_unknown")  # an admin decides, no push
