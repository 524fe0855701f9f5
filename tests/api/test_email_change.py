"""Changing one's sign-in address (issue 17 §3): a fresh proof of identity, a link mailed to the new address,
the same answer whether or not the address is in use, the change decided at confirmation by the unique
constraint, other sessions ended and the old address told (without the new one)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from domain.actors import Role
from tests.api.test_step_up import STALE, assert_step_up_required, signs_in
from tests.conftest import PASSWORD, assert_problem

CONFIRM = "/v1/auth/email-change/confirm"


def address(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.jp"


async def named(client, person, display_name: str) -> None:  # type: ignore[no-untyped-def]
    answer = await client.patch("/v1/me", headers=person.headers, json={"display_name": display_name})
    assert answer.status_code == 200, answer.text


async def ask(client, person, email: str):  # type: ignore[no-untyped-def]
    return await client.post("/v1/me/email", headers=person.headers, json={"email": email})


async def me(client, person) -> dict:  # type: ignore[no-untyped-def, type-arg]
    answer = await client.get("/v1/me", headers=person.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def audit_actions(container, user_id: uuid.UUID) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def, type-arg]
    from infra.db.tables_quality import AuditEventRow

    async with container.sessions() as db:
        rows = await db.execute(
            select(AuditEventRow.action, AuditEventRow.detail).where(
                AuditEventRow.object_type == "user", AuditEventRow.object_id == str(user_id)
            )
        )
        return [(a, d) for a, d in rows.all()]


async def test_the_address_changes_through_the_link_mailed_to_the_new_one(  # type: ignore[no-untyped-def]
    client, people, container, mailbox, captured
) -> None:
    old, new = address("yamada.hanako"), address("hanako.new")
    person = await people.create(email=old)
    await named(client, person, "山田 花子")
    other = await people.sign_in(person.id, old, Role.consulter)  # another device

    # Typed in full width on a Japanese keyboard: folded like every address.
    typed = new.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    answer = await ask(client, person, typed)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    assert (await me(client, person))["email"] == old  # nothing changes until the link is used
    await container.worker.run_once()

    mail = mailbox.to(new)[-1]
    body = mailbox.body(mail)
    token = mailbox.token_for(new)
    assert f"/confirm-email-change#token={token}" in body
    assert new not in body and old not in body  # the address travels in no link
    assert "メールアドレス変更の確認" in str(mail["Subject"])

    done = await client.post(CONFIRM, json={"token": token})
    assert done.status_code == 204, done.text
    mine = await me(client, person)  # the session that asked goes on
    assert mine["email"] == new and mine["display_name"] == "山田 花子" and mine["email_verified"]
    assert_problem(await client.get("/v1/me", headers=other.headers), 401, "invalid_token")

    # The old address is told, without the new one.
    await container.worker.run_once()
    notice = mailbox.body(mailbox.to(old)[-1])
    assert "ログイン用メールアドレスが変更されました" in notice and "窓口にご連絡ください" in notice
    assert new not in notice and "@" not in notice

    await container.accounts.throttle.clear(["addr:127.0.0.1"])
    assert await signs_in(client, new, PASSWORD)
    assert not await signs_in(client, old, PASSWORD)

    # Single use.
    assert_problem(await client.post(CONFIRM, json={"token": token}), 422, "invalid_or_expired_token")

    trail = await audit_actions(container, person.id)
    assert [a for a, _ in trail] == ["account.email_change_requested", "account.email_changed"]
    assert all(old not in str(d) and new not in str(d) for _, d in trail)
    # Neither address, nor the token, in any line logged meanwhile.
    assert len(captured) > 10
    for line in captured:
        assert old not in line and new not in line and token not in line, line


async def test_without_a_fresh_proof_nothing_is_asked_or_mailed(
    client, people, container, mailbox, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    clock.advance(STALE)
    new = address("tanaka.jiro")
    assert_step_up_required(await ask(client, person, new))
    await container.worker.run_once()
    assert mailbox.to(new) == []

    proof = await client.post("/v1/auth/step-up", headers=person.headers, json={"password": PASSWORD})
    assert proof.status_code == 200
    assert (await ask(client, person, new)).status_code == 202
    await container.worker.run_once()
    assert mailbox.token_for(new)


async def test_an_address_in_use_answers_the_same_and_changes_nothing(
    client, people, container, mailbox
) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(email=address("sato.keiko"))
    await named(client, owner, "佐藤 恵子")
    requester = await people.create(email=address("suzuki.taro"))
    await named(client, requester, "鈴木 太郎")
    free = address("suzuki.free")

    taken_answer = await ask(client, requester, owner.email)
    free_answer = await ask(client, requester, free)
    assert taken_answer.status_code == free_answer.status_code == 202
    assert taken_answer.json() == free_answer.json()
    assert taken_answer.headers.get("location") is None and free_answer.headers.get("location") is None

    mailbox.clear()
    await container.worker.run_once()
    # The owner of the address is told someone tried it, by no name and with no link to act on; the
    # requester gets nothing that could tell the two apart.
    note = mailbox.body(mailbox.to(owner.email)[-1])
    assert "別のアカウント" in note and "変更はしていません" in note
    assert "#token=" not in note and requester.email not in note and "鈴木" not in note
    assert mailbox.to(requester.email) == []
    assert (await me(client, owner))["email"] == owner.email
    assert (await me(client, requester))["email"] == requester.email
    # The later request (the free address) replaced the earlier: only its link exists.
    assert (await client.post(CONFIRM, json={"token": mailbox.token_for(free)})).status_code == 204
    assert (await me(client, requester))["email"] == free
    assert (await me(client, owner))["email"] == owner.email


async def test_an_address_taken_between_request_and_confirmation_changes_nothing(  # type: ignore[no-untyped-def]
    client, people, container, mailbox
) -> None:
    person = await people.create(email=address("ito.yuki"))
    other = await people.sign_in(person.id, person.email, Role.consulter)
    new = address("ito.new")
    assert (await ask(client, person, new)).status_code == 202
    await container.worker.run_once()
    token = mailbox.token_for(new)
    before = len(mailbox.to(person.email))

    await people.create(email=new)  # someone registers it in the meantime
    refused = await client.post(CONFIRM, json={"token": token})
    body = assert_problem(refused, 409, "email_in_use")
    assert new not in refused.text and person.email not in refused.text
    assert body["title"]
    assert (await me(client, person))["email"] == person.email
    assert (await me(client, other))["email"] == person.email  # no session ended
    await container.worker.run_once()
    assert len(mailbox.to(person.email)) == before  # no notice of a change that did not happen
    assert [a for a, _ in await audit_actions(container, person.id)] == ["account.email_change_requested"]


async def test_a_newer_request_replaces_the_pending_one(client, people, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(email=address("kobayashi.mai"))
    first, second = address("mai.first"), address("mai.second")
    assert (await ask(client, person, first)).status_code == 202
    await container.worker.run_once()
    first_token = mailbox.token_for(first)
    assert (await ask(client, person, second)).status_code == 202
    await container.worker.run_once()
    second_token = mailbox.token_for(second)

    assert_problem(await client.post(CONFIRM, json={"token": first_token}), 422, "invalid_or_expired_token")
    assert (await client.post(CONFIRM, json={"token": second_token})).status_code == 204
    assert (await me(client, person))["email"] == second


async def test_tokens_of_other_purposes_do_not_cross(client, people, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(email=address("kato.ren"))
    assert (await client.post("/v1/auth/password-reset", json={"email": person.email})).status_code == 202
    await container.worker.run_once()
    reset_token = mailbox.token_for(person.email)
    assert_problem(await client.post(CONFIRM, json={"token": reset_token}), 422, "invalid_or_expired_token")

    new = address("kato.new")
    assert (await ask(client, person, new)).status_code == 202
    await container.worker.run_once()
    change_token = mailbox.token_for(new)
    for path in ("/v1/auth/password-reset/confirm", "/v1/auth/verify-email"):
        crossed = await client.post(
            path, json={"token": change_token, "password": "冬の星座を数えながら帰った夜"}
        )
        assert_problem(crossed, 422)
    assert (await me(client, person))["email"] == person.email

    # Once the address changed, the reset link still lying in the old mailbox is dead too.
    assert (await client.post(CONFIRM, json={"token": change_token})).status_code == 204
    reset = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": reset_token, "password": "冬の星座を数えながら帰った夜"},
    )
    assert_problem(reset, 422, "invalid_or_expired_token")


async def test_the_link_expires_after_an_hour(client, people, container, mailbox, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create(email=address("nakamura.sho"))
    new = address("sho.new")
    assert (await ask(client, person, new)).status_code == 202
    await container.worker.run_once()
    token = mailbox.token_for(new)
    clock.advance(timedelta(hours=1, seconds=1))
    assert_problem(await client.post(CONFIRM, json={"token": token}), 422, "invalid_or_expired_token")
    assert await signs_in(client, person.email, PASSWORD)  # still the old address


async def test_bad_input_is_refused_and_asks_nothing(client, people, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(email=address("watanabe.aoi"))
    for bad in ("まちがい", "aoi@", "a" * 250 + "@example.jp", ""):
        assert_problem(await ask(client, person, bad), 422)
    same = person.email.upper()  # the account's own address, however it is typed
    assert_problem(await ask(client, person, same), 422, "email_unchanged")
    extra = await client.post(
        "/v1/me/email", headers=person.headers, json={"email": address("x"), "role": "admin"}
    )
    assert_problem(extra, 422)
    mailbox.clear()
    await container.worker.run_once()
    assert mailbox.messages == []
    assert await audit_actions(container, person.id) == []


async def test_staff_change_their_address_too(client, people, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    staff = await people.create(Role.consultant, email=address("soudanin.kimura"))
    new = address("kimura.new")
    assert (await ask(client, staff, new)).status_code == 202
    await container.worker.run_once()
    assert (await client.post(CONFIRM, json={"token": mailbox.token_for(new)})).status_code == 204
    assert (await me(client, staff))["email"] == new


async def test_requests_per_account_are_capped(client, people, container, settings) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(email=address("hayashi.nao"))
    for _ in range(settings.signup_per_hour):
        assert (await ask(client, person, address("nao"))).status_code == 202
    capped = await ask(client, person, address("nao"))
    assert_problem(capped, 429, "too_many_attempts")
    assert int(capped.headers["retry-after"]) > 0
    # Another account is not held back by this one's count.
    other = await people.create(email=address("hayashi.ken"))
    assert (await ask(client, other, address("ken"))).status_code == 202
