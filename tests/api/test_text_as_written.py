"""Issue 10 item 4: what people write is stored and shown as they wrote it (circled numbers, ㈱, full-width
brackets and punctuation, half-width kana, full-width spaces); only line endings are unified. Folding happens
only where text is compared: e-mail addresses, desk search, URL hosts."""

from __future__ import annotations

from domain.actors import Role
from tests.api.consultation_helpers import answer, open_consultation, take
from tests.api.test_auth_flow import drain
from tests.conftest import PASSWORD

TITLE = "（続報）㈱ＡＢＣの元社員を名乗るアカウントについて～！"
NARRATIVE = (
    "　2026年11月20日ごろから、①Xで実名をさらされ、②㈱ABCの取引先にまで中傷のDMが届いています。\n"
    "ｱｶｳﾝﾄ名は「ＮＯ．１探偵」です～！　削除と発信者の特定について教えてください。"
)
TRIED = "Ｘの報告フォーム（２回）と、警察相談専用電話＃９１１０に電話しました。"


async def test_intake_stores_the_narrative_exactly_as_written(client, people) -> None:  # type: ignore[no-untyped-def]
    consulter = await people.create()
    sent = {
        "title": TITLE,
        "narrative": NARRATIVE.replace("\n", "\r\n"),
        "tried": TRIED,
        "platform_other": "ﾏｼｭﾏﾛ",
    }
    created = await open_consultation(client, consulter, **sent)
    for body in (
        created,
        (await client.get(f"/v1/consultations/{created['id']}", headers=consulter.headers)).json(),
    ):
        assert body["title"] == TITLE
        assert body["narrative"] == NARRATIVE  # CRLF stored as LF; the opening full-width space (字下げ) kept
        assert body["tried"] == TRIED
        assert body["platform_other"] == "ﾏｼｭﾏﾛ"

    tag = (await client.get(f"/v1/consultations/{created['id']}", headers=consulter.headers)).headers["etag"]
    edited = await client.patch(
        f"/v1/consultations/{created['id']}",
        headers={**consulter.headers, "If-Match": tag},
        json={"title": "（続報２）削除されました！"},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "（続報２）削除されました！"


async def test_messages_and_answers_are_shown_as_written(client, people) -> None:  # type: ignore[no-untyped-def]
    consulter = await people.create()
    case = await open_consultation(
        client, consulter, desired_outcomes=["advice"], categories=["RIGHTS.INSULT"]
    )
    written = "ご回答ありがとうございます～！\n①削除依頼は送りました。\n②㈱ＡＢＣからの返信はまだです。"
    posted = await client.post(
        f"/v1/consultations/{case['id']}/messages", headers=consulter.headers, json={"body": written}
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["body"] == written

    consultant = await people.create(Role.consultant)
    await take(client, consultant, case["id"])
    reply = "ご連絡ありがとうございます。\n　①まず投稿のURLを控えてください（スクリーンショットも）。\n　②～③は後述します。"
    await answer(client, consultant, case["id"], reply, people=people)
    shown = await client.get(f"/v1/consultations/{case['id']}/messages", headers=consulter.headers)
    bodies = [m["body"] for m in shown.json()["items"]]
    assert written in bodies and reply in bodies


async def test_evidence_notes_and_post_urls_are_kept_as_written(client, people) -> None:  # type: ignore[no-untyped-def]
    consulter = await people.create()
    case = await open_consultation(client, consulter)
    item = {
        # The path is the post's address: folding ① to 1 would point at another page. The host, typed in
        # full width, is folded as IDNA would.
        "url": "ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｊｐ/掲示板/①スレ?p=２",
        "poster_account": "＠ｎｏ１＿探偵",
        "excerpt": "〇〇（実名）は㈱ＡＢＣの金を横領している！！",
        "notes": "前後の投稿も保存済み（３枚）。\r\n削除される前に～！",
    }
    created = await client.post(
        f"/v1/consultations/{case['id']}/evidence", headers=consulter.headers, json=item
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == "https://example.jp/掲示板/①スレ?p=２"
    assert body["poster_account"] == item["poster_account"]
    assert body["excerpt"] == item["excerpt"]
    assert body["notes"] == "前後の投稿も保存済み（３枚）。\n削除される前に～！"


async def test_display_names_are_kept_as_written(client, container, mailbox, people) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/v1/auth/register",
        json={"email": "hanako@example.jp", "password": PASSWORD, "display_name": "ﾊﾅｺ㈱"},
    )
    assert response.status_code == 202
    await drain(container)
    assert (
        await client.post("/v1/auth/verify-email", json={"token": mailbox.token_for("hanako@example.jp")})
    ).status_code == 204
    token = await client.post("/v1/auth/token", data={"username": "hanako@example.jp", "password": PASSWORD})
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/v1/me", headers=me)).json()["display_name"] == "ﾊﾅｺ㈱"
    patched = await client.patch("/v1/me", headers=me, json={"display_name": "山田　花子（Ⅱ）"})
    assert patched.json()["display_name"] == "山田　花子（Ⅱ）"

    admin = await people.create(Role.admin)
    invited = await client.post(
        "/v1/users",
        headers=admin.headers,
        json={"email": "soudanin@example.jp", "role": "consultant", "display_name": "佐藤（相談員）①"},
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["display_name"] == "佐藤（相談員）①"


async def test_a_full_width_address_registers_resets_and_signs_in_as_the_same_account(
    client, container, mailbox
) -> None:  # type: ignore[no-untyped-def]
    typed = "ＨＡＮＡＫＯ＠ｅｘａｍｐｌｅ．ｊｐ"
    registered = await client.post("/v1/auth/register", json={"email": typed, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    await drain(container)
    verified = await client.post(
        "/v1/auth/verify-email", json={"token": mailbox.token_for("hanako@example.jp")}
    )
    assert verified.status_code == 204
    for username in (typed, "hanako@example.jp", "Hanako@Example.JP"):
        signed_in = await client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert signed_in.status_code == 200, (username, signed_in.text)

    mailbox.clear()
    reset = await client.post("/v1/auth/password-reset", json={"email": "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ"})
    assert reset.status_code == 202, reset.text
    await drain(container)
    new_password = "夜空にひとつ光る星を見上げて"
    confirmed = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": mailbox.token_for("hanako@example.jp"), "password": new_password},
    )
    assert confirmed.status_code == 204, confirmed.text
    signed_in = await client.post("/v1/auth/token", data={"username": typed, "password": new_password})
    assert signed_in.status_code == 200


async def test_a_full_width_address_is_one_account_for_invitations_too(client, people) -> None:  # type: ignore[no-untyped-def]
    admin = await people.create(Role.admin)
    first = await client.post(
        "/v1/users",
        headers=admin.headers,
        json={"email": "ｓａｔｏ＠ｅｘａｍｐｌｅ．ｊｐ", "role": "consultant"},
    )
    assert first.status_code == 201, first.text
    assert first.json()["email"] == "sato@example.jp"
    again = await client.post(
        "/v1/users", headers=admin.headers, json={"email": "sato@example.jp", "role": "consultant"}
    )
    assert again.status_code == 409


async def test_desk_search_folds_both_sides_but_shows_names_as_written(client, people) -> None:  # type: ignore[no-untyped-def]
    admin = await people.create(Role.admin)
    created = await client.post(
        "/v1/desks",
        headers=admin.headers,
        json={
            "code": "test_desk",
            "name_ja": "ＳＮＳ被害相談窓口（テスト）",
            "name_en": "SNS harm desk (test)",
            "handles_ja": "ＳＮＳでの誹謗中傷",
            "handles_en": "Defamation on social media",
            "phone": "０３－０１２３－４５６７",
            "kind": "legal",
        },
    )
    assert created.status_code == 201, created.text
    desk = created.json()
    assert desk["phone"] == "03-0123-4567"  # an identifier (a tel: link): folded
    assert desk["name_ja"] == "ＳＮＳ被害相談窓口（テスト）"  # words: as written
    for q in ("sns被害", "ＳＮＳ被害", "(テスト)"):
        found = await client.get("/v1/desks", params={"q": q})
        assert "test_desk" in {d["code"] for d in found.json()}, q
