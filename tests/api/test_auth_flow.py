"""Registration, verification by mail, sign-in, refresh rotation, logout, password change."""

from __future__ import annotations

import asyncio

import pytest

from domain.actors import Role
from tests.conftest import ON_BOTH_COUNTER_STORES, PASSWORD, assert_problem


async def drain(container) -> None:  # type: ignore[no-untyped-def]
    await container.worker.run_once()


async def register_and_verify(client, container, mailbox, email: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": "花子"}
    )
    assert response.status_code == 202
    await drain(container)
    token = mailbox.token_for(email)
    response = await client.post("/v1/auth/verify-email", json={"token": token})
    assert response.status_code == 204


async def test_register_verify_login_and_read_me(client, container, mailbox) -> None:
    await register_and_verify(client, container, mailbox, "hanako@example.jp")
    response = await client.post(
        "/v1/auth/token", data={"username": "hanako@example.jp", "password": PASSWORD}
    )
    assert response.status_code == 200
    tokens = response.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] <= 900 and tokens["refresh_token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "hanako@example.jp"
    assert me.json()["display_name"] == "花子"
    assert me.json()["role"] == "consulter"
    assert me.headers["cache-control"] == "no-store"


async def test_full_width_email_is_normalised(client, container, mailbox) -> None:
    await register_and_verify(client, container, mailbox, "taro@example.jp")
    response = await client.post(
        "/v1/auth/token", data={"username": "ＴＡＲＯ＠ｅｘａｍｐｌｅ．ｊｐ", "password": PASSWORD}
    )
    assert response.status_code == 200


async def test_register_answers_the_same_for_known_and_unknown_addresses(
    client, container, mailbox, people, monkeypatch
) -> None:
    known = await people.create(Role.consulter)
    hashed: list[str] = []
    real_hash = container.passwords.hash

    async def counting_hash(password: str) -> str:
        hashed.append(password)
        return await real_hash(password)

    monkeypatch.setattr(container.passwords, "hash", counting_hash)
    bodies = {}
    for label, address in (("known", known.email), ("new", "new-person@example.jp")):
        response = await client.post(
            "/v1/auth/register", json={"email": address, "password": "朝焼けの空に飛ぶ鳥たち"}
        )
        assert response.status_code == 202
        bodies[label] = response.json()
    assert bodies["known"] == bodies["new"]
    # Both paths do the same work (one Argon2 hash each), so answer times do not tell them apart either;
    # tests/bench/account_oracle.py measures the times themselves.
    assert len(hashed) == 2
    await drain(container)
    # The owner of the known address is told by mail; nobody else learns anything.
    assert "すでに登録済み" in mailbox.body(mailbox.to(known.email)[-1])
    assert mailbox.token_for("new-person@example.jp")


async def test_unverified_account_cannot_sign_in(client, container, mailbox) -> None:
    await client.post("/v1/auth/register", json={"email": "wait@example.jp", "password": PASSWORD})
    response = await client.post("/v1/auth/token", data={"username": "wait@example.jp", "password": PASSWORD})
    # The same answer as for a wrong password or an unknown address: nothing about the account leaks.
    assert_problem(response, 401, "invalid_credentials")


async def test_registering_someone_elses_address_reveals_and_takes_nothing(
    client, container, mailbox, people
) -> None:
    # An attacker registers a known victim's address with a password of their own, then tries it.
    victim = await people.create()
    await client.post(
        "/v1/auth/register", json={"email": victim.email, "password": "攻撃者が決めたパスワード"}
    )
    known = await client.post(
        "/v1/auth/token", data={"username": victim.email, "password": "攻撃者が決めたパスワード"}
    )
    await client.post(
        "/v1/auth/register", json={"email": "nobody@example.jp", "password": "攻撃者が決めたパスワード"}
    )
    unknown = await client.post(
        "/v1/auth/token", data={"username": "nobody@example.jp", "password": "攻撃者が決めたパスワード"}
    )
    assert known.status_code == unknown.status_code == 401 and known.json()["code"] == unknown.json()["code"]
    assert (await client.get("/v1/me", headers=victim.headers)).status_code == 200


async def test_a_pending_registration_cannot_be_taken_over(client, container, mailbox) -> None:
    # The victim registers; before they verify, the attacker registers the same address again.
    await client.post("/v1/auth/register", json={"email": "pending@example.jp", "password": PASSWORD})
    await container.worker.run_once()
    victims_link = mailbox.token_for("pending@example.jp")
    await client.post(
        "/v1/auth/register", json={"email": "pending@example.jp", "password": "攻撃者が決めたパスワード"}
    )
    # The victim follows their own link: their password is the one that works.
    assert (await client.post("/v1/auth/verify-email", json={"token": victims_link})).status_code == 204
    attacker = await client.post(
        "/v1/auth/token", data={"username": "pending@example.jp", "password": "攻撃者が決めたパスワード"}
    )
    assert_problem(attacker, 401, "invalid_credentials")
    victim = await client.post(
        "/v1/auth/token", data={"username": "pending@example.jp", "password": PASSWORD}
    )
    assert victim.status_code == 200
    # The second link (mailed to the victim, not the attacker) no longer works either.
    await container.worker.run_once()
    assert_problem(
        await client.post("/v1/auth/verify-email", json={"token": mailbox.token_for("pending@example.jp")}),
        422,
        "invalid_or_expired_token",
    )


@ON_BOTH_COUNTER_STORES
async def test_password_reset_by_mail_ends_sessions_and_lifts_a_lockout(
    client, container, mailbox, people
) -> None:
    person = await people.create()
    for _ in range(11):
        await client.post("/v1/auth/token", data={"username": person.email, "password": "違うパスワード"})
    assert_problem(
        await client.post("/v1/auth/token", data={"username": person.email, "password": PASSWORD}), 429
    )
    for address in (person.email, "unknown-person@example.jp"):
        response = await client.post("/v1/auth/password-reset", json={"email": address})
        assert response.status_code == 202
    assert (
        response.json() == (await client.post("/v1/auth/password-reset", json={"email": person.email})).json()
    )
    await container.worker.run_once()
    assert mailbox.to("unknown-person@example.jp") == []
    token = mailbox.token_for(person.email)
    assert_problem(
        await client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "123456789"}),
        422,
        "password_too_common",
    )
    new_password = "冬の星座を数えながら帰った夜"
    done = await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "password": new_password}
    )
    assert done.status_code == 204
    assert_problem(await client.get("/v1/me", headers=person.headers), 401)
    assert_problem(
        await client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": new_password}),
        422,
        "invalid_or_expired_token",
    )
    await container.accounts.throttle.clear(["addr:127.0.0.1"])
    login = await client.post("/v1/auth/token", data={"username": person.email, "password": new_password})
    assert login.status_code == 200


@ON_BOTH_COUNTER_STORES
async def test_parallel_guesses_cannot_outrun_the_throttle(client, people) -> None:
    person = await people.create()
    results = await asyncio.gather(
        *(
            client.post("/v1/auth/token", data={"username": person.email, "password": f"guess-{i}-間違い"})
            for i in range(30)
        )
    )
    statuses = [r.status_code for r in results]
    assert statuses.count(401) <= 10 and statuses.count(429) >= 20 and set(statuses) <= {401, 429}


async def test_verification_token_is_single_use(client, container, mailbox) -> None:
    await register_and_verify(client, container, mailbox, "once@example.jp")
    response = await client.post(
        "/v1/auth/verify-email", json={"token": mailbox.token_for("once@example.jp")}
    )
    assert_problem(response, 422, "invalid_or_expired_token")
    response = await client.post("/v1/auth/verify-email", json={"token": "x" * 43})
    assert_problem(response, 422, "invalid_or_expired_token")


async def test_weak_passwords_are_refused_and_nothing_is_created(client, container, mailbox) -> None:
    for password, code in (
        ("short", "password_too_short"),
        ("password123", "password_too_common"),
        ("x" * 129, "password_too_long"),
        ("weak-user@example.jp", "password_too_common"),
    ):
        response = await client.post(
            "/v1/auth/register", json={"email": "weak-user@example.jp", "password": password}
        )
        assert_problem(response, 422, code)
    await drain(container)
    assert mailbox.to("weak-user@example.jp") == []
    # A long Japanese passphrase (64+ characters) is fine.
    response = await client.post(
        "/v1/auth/register", json={"email": "weak-user@example.jp", "password": "あ" * 64}
    )
    assert response.status_code == 202


async def test_refresh_rotates_and_reuse_revokes_the_family(client, people) -> None:
    person = await people.create()
    first = person.refresh_token
    response = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first
    # Replaying the rotated token ends the session: the newest tokens stop working too.
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert_problem(replay, 401, "invalid_grant")
    again = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(again, 401, "invalid_grant")
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert_problem(me, 401, "invalid_token")


async def test_concurrent_refresh_of_one_token_succeeds_once(client, people) -> None:
    person = await people.create()
    results = await asyncio.gather(
        *(client.post("/v1/auth/refresh", json={"refresh_token": person.refresh_token}) for _ in range(4))
    )
    assert sum(r.status_code == 200 for r in results) <= 1


async def test_logout_ends_the_session_at_once(client, people) -> None:
    person = await people.create()
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=person.headers)).status_code == 204
    response = await client.get("/v1/me", headers=person.headers)
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await client.post("/v1/auth/refresh", json={"refresh_token": person.refresh_token}), 401)


async def test_password_change_ends_other_sessions_only(client, people) -> None:
    person = await people.create()
    other = await people.sign_in(person.id, person.email, person.role)
    response = await client.post(
        "/v1/me/password",
        headers=person.headers,
        json={"current_password": PASSWORD, "new_password": "夏の海で貝殻を拾った日のこと"},
    )
    assert response.status_code == 204
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    assert_problem(await client.get("/v1/me", headers=other.headers), 401)
    old = await client.post("/v1/auth/token", data={"username": person.email, "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    new = await client.post(
        "/v1/auth/token", data={"username": person.email, "password": "夏の海で貝殻を拾った日のこと"}
    )
    assert new.status_code == 200


async def test_wrong_current_password_changes_nothing(client, people) -> None:
    person = await people.create()
    response = await client.post(
        "/v1/me/password",
        headers=person.headers,
        json={"current_password": "間違ったパスワードです", "new_password": "夏の海で貝殻を拾った日のこと"},
    )
    assert_problem(response, 422, "current_password_wrong")
    assert (
        await client.post("/v1/auth/token", data={"username": person.email, "password": PASSWORD})
    ).status_code == 200


async def test_patch_me_updates_profile_and_refuses_privileged_fields(client, people) -> None:
    person = await people.create()
    response = await client.patch(
        "/v1/me", headers=person.headers, json={"display_name": "ﾔﾏﾀﾞ　ﾊﾅｺ", "locale": "en"}
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "ﾔﾏﾀﾞ　ﾊﾅｺ"  # as written: half-width kana, ideographic space
    assert response.json()["locale"] == "en"
    for field, value in (
        ("role", "admin"),
        ("email", "x@example.jp"),
        ("id", "00000000-0000-0000-0000-000000000000"),
    ):
        response = await client.patch("/v1/me", headers=person.headers, json={field: value})
        assert_problem(response, 422, "validation_failed")
    me = (await client.get("/v1/me", headers=person.headers)).json()
    assert me["role"] == "consulter" and me["email"] == person.email


@ON_BOTH_COUNTER_STORES
async def test_throttle_after_ten_failures_same_for_unknown_accounts(client, people, container) -> None:
    person = await people.create()
    for username in (person.email, "nobody-here@example.jp"):
        statuses = []
        for _ in range(10):
            r = await client.post(
                "/v1/auth/token",
                data={"username": username, "password": "違うパスワード"},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
            statuses.append(r.status_code)
            assert r.json()["code"] == "invalid_credentials"
        blocked = await client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
        body = assert_problem(blocked, 429, "too_many_attempts")
        assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
        assert "401" not in str({k: v for k, v in body.items() if k != "request_id"})  # ids are random hex
        # The tenth failure also tripped the address key; clear it for the next account's run.
        assert statuses == [401] * 10
        # The same ten failures also tripped the client address; clear it before trying the other name.
        await container.accounts.throttle.clear(["addr:127.0.0.1"])


async def test_client_credentials_grant_issues_scoped_access_without_refresh(client, container) -> None:
    from domain.actors import Client

    _, secret = await container.accounts.add_service_client(
        client_id="line-bot",
        name="LINE bot",
        kind=Client.line,
        scopes=frozenset({"chart:read", "triage:run"}),
    )
    response = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "line-bot",
            "client_secret": secret,
            "scope": "chart:read",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] is None and body["scope"] == "chart:read"
    actor, _ = container.tokens.decode_access(body["access_token"], now=container.clock.now())
    assert actor.scopes == frozenset({"chart:read"}) and actor.service_client_id == "line-bot"
    # A service client is not a person: /v1/me refuses it.
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert_problem(me, 403, "person_required")
    wrong = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": "line-bot", "client_secret": "nope"},
    )
    assert_problem(wrong, 401, "invalid_client")
    too_wide = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "line-bot",
            "client_secret": secret,
            "scope": "admin",
        },
    )
    assert_problem(too_wide, 422, "invalid_scope")


async def test_refresh_token_grant_at_the_token_endpoint_rotates_like_refresh(client, people) -> None:
    """OAuth2 client libraries refresh at the token endpoint (RFC 6749 §6); /v1/auth/refresh stays."""
    person = await people.create()
    first = person.refresh_token
    response = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["token_type"] == "bearer" and second["refresh_token"] not in (None, first)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == person.email
    # The two doors share one rotation: the new token works at /v1/auth/refresh ...
    third = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    # ... and replaying a rotated one at either door ends the whole session.
    replay = await client.post("/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": first})
    assert_problem(replay, 401, "invalid_grant")
    latest = third.json()
    assert_problem(
        await client.post(
            "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": latest["refresh_token"]}
        ),
        401,
        "invalid_grant",
    )
    gone = await client.get("/v1/me", headers={"Authorization": f"Bearer {latest['access_token']}"})
    assert_problem(gone, 401, "invalid_token")
    missing = await client.post("/v1/auth/token", data={"grant_type": "refresh_token"})
    assert_problem(missing, 422, "refresh_token_required")


async def test_a_worker_pass_reports_what_it_delivered_by_kind(client, container, mailbox) -> None:
    from infra.cli import describe_pass

    # A first pass takes whatever was due before this test: the statistics recount runs at most every few
    # minutes of the (shared, pinned) clock, so whether it is due depended on the tests run before this one
    # in the same process (it failed when this test came first, reporting "1 fiscal years ... recounted").
    await container.worker.run_once()
    for email in ("taro@example.jp", "jiro@example.jp"):
        response = await client.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": "太郎"}
        )
        assert response.status_code == 202
    assert await container.worker.run_once() == 2
    assert describe_pass(container.worker.last_pass) == "delivered 2 (2 mail.verify_email)"
    await container.worker.run_once()
    assert describe_pass(container.worker.last_pass) == "delivered 0: nothing due"


async def test_an_actor_already_in_the_request_state_stands_in_for_no_other_token(app, people) -> None:  # type: ignore[no-untyped-def]
    """The guards share one resolution of the token per request (api/deps.py `_signed_in`): the memo answers
    only the header it was resolved from, so something left in the request's state before (a middleware, a
    lifespan's state) cannot stand in for a checked token."""
    from starlette.requests import Request

    from api.deps import _signed_in
    from domain.errors import Unauthenticated

    admin = await people.create(Role.admin)
    signed_in = await _signed_in(
        Request({"type": "http", "app": app, "state": {}, "headers": []}), admin.headers["Authorization"]
    )
    assert signed_in.role is Role.admin
    planted = Request({"type": "http", "app": app, "state": {"signed_in": ("Bearer planted", signed_in)}})
    with pytest.raises(Unauthenticated):
        await _signed_in(planted, "Bearer not-a-token")
    with pytest.raises(Unauthenticated):
        await _signed_in(planted, None)
