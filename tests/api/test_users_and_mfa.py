"""Admins invite staff; invitees set a password by mail; TOTP for staff; role changes end sessions."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pyotp

from domain.actors import Role
from tests.conftest import PASSWORD, assert_problem


async def invite(client, admin, mailbox, container, email: str, role: str = "consultant", **extra) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/v1/users", headers=admin.headers, json={"email": email, "role": role, **extra}
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/users/{response.json()['id']}"
    await container.worker.run_once()
    return response.json()  # type: ignore[no-any-return]


async def test_admin_invites_staff_who_sets_a_password_and_signs_in(
    client, people, mailbox, container
) -> None:
    admin = await people.create(Role.admin)
    user = await invite(
        client, admin, mailbox, container, "soudanin.sato@madoguchi.example.jp", display_name="佐藤"
    )
    assert user["role"] == "consultant" and user["email_verified"] is False
    token = mailbox.token_for("soudanin.sato@madoguchi.example.jp")
    # An invitation needs a password to be accepted.
    assert_problem(
        await client.post("/v1/auth/verify-email", json={"token": token}), 422, "password_required"
    )
    accepted = await client.post("/v1/auth/verify-email", json={"token": token, "password": PASSWORD})
    assert accepted.status_code == 204
    login = await client.post(
        "/v1/auth/token", data={"username": "soudanin.sato@madoguchi.example.jp", "password": PASSWORD}
    )
    assert login.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["role"] == "consultant"


async def test_only_staff_roles_are_created_by_admins_and_council_must_expire(
    client, people, mailbox, container, clock
) -> None:
    admin = await people.create(Role.admin)
    response = await client.post(
        "/v1/users", headers=admin.headers, json={"email": "c@example.jp", "role": "consulter"}
    )
    assert_problem(response, 422, "role_not_staff")
    response = await client.post(
        "/v1/users", headers=admin.headers, json={"email": "k@example.jp", "role": "council"}
    )
    assert_problem(response, 422, "council_requires_expiry")
    ends = (clock.now() + timedelta(days=90)).isoformat()
    await invite(client, admin, mailbox, container, "k@example.jp", role="council", expires_at=ends)


async def test_expired_council_member_is_refused(client, people, container, clock) -> None:
    member = await people.create(Role.council)
    admin = await people.create(Role.admin)
    current = await client.get(f"/v1/users/{member.id}", headers=admin.headers)
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    response = await client.patch(
        f"/v1/users/{member.id}",
        headers={**admin.headers, "If-Match": current.headers["etag"]},
        json={"expires_at": past},
    )
    assert response.status_code == 200
    assert_problem(await client.get("/v1/me", headers=member.headers), 401, "invalid_token")
    login = await client.post("/v1/auth/token", data={"username": member.email, "password": PASSWORD})
    assert_problem(login, 401, "invalid_credentials")


async def test_updates_need_a_fresh_etag(client, people) -> None:
    admin = await people.create(Role.admin)
    staff = await people.create(Role.consultant)
    url = f"/v1/users/{staff.id}"
    assert_problem(
        await client.patch(url, headers=admin.headers, json={"display_name": "鈴木"}),
        428,
        "if_match_required",
    )
    etag = (await client.get(url, headers=admin.headers)).headers["etag"]
    first = await client.patch(
        url, headers={**admin.headers, "If-Match": etag}, json={"display_name": "鈴木"}
    )
    assert first.status_code == 200 and first.headers["etag"] != etag
    stale = await client.patch(
        url, headers={**admin.headers, "If-Match": etag}, json={"display_name": "田中"}
    )
    assert_problem(stale, 412, "stale_version")
    assert (await client.get(url, headers=admin.headers)).json()["display_name"] == "鈴木"


async def test_role_change_and_deactivation_end_sessions(client, people) -> None:
    admin = await people.create(Role.admin)
    staff = await people.create(Role.consultant)
    url = f"/v1/users/{staff.id}"
    etag = (await client.get(url, headers=admin.headers)).headers["etag"]
    response = await client.patch(
        url, headers={**admin.headers, "If-Match": etag}, json={"role": "legal_advisor"}
    )
    assert response.json()["role"] == "legal_advisor"
    assert_problem(await client.get("/v1/me", headers=staff.headers), 401)
    again = await people.sign_in(staff.id, staff.email, Role.legal_advisor)
    etag = response.headers["etag"]
    response = await client.patch(url, headers={**admin.headers, "If-Match": etag}, json={"is_active": False})
    assert response.json()["is_active"] is False
    assert_problem(await client.get("/v1/me", headers=again.headers), 401)
    # An admin cannot lock themselves out.
    own = await client.get(f"/v1/users/{admin.id}", headers=admin.headers)
    response = await client.patch(
        f"/v1/users/{admin.id}",
        headers={**admin.headers, "If-Match": own.headers["etag"]},
        json={"is_active": False},
    )
    assert_problem(response, 409, "cannot_deactivate_self")


async def test_admin_can_end_all_sessions_of_a_user(client, people) -> None:
    admin = await people.create(Role.admin)
    consulter = await people.create(Role.consulter)
    assert (
        await client.post(f"/v1/users/{consulter.id}/revoke-sessions", headers=admin.headers)
    ).status_code == 204
    assert_problem(await client.get("/v1/me", headers=consulter.headers), 401)


async def test_user_list_pages_with_a_cursor(client, people) -> None:
    admin = await people.create(Role.admin)
    for _ in range(4):
        await people.create(Role.consultant)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "role": "consultant", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/users", headers=admin.headers, params=params)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    assert_problem(
        await client.get("/v1/users", headers=admin.headers, params={"cursor": "%%%"}), 422, "invalid_cursor"
    )
    assert_problem(await client.get("/v1/users", headers=admin.headers, params={"limit": 1000}), 422)


async def test_staff_totp_enrolment_then_required_at_sign_in(client, people, clock) -> None:
    staff = await people.create(Role.consultant)
    other_session = await people.sign_in(staff.id, staff.email, staff.role)
    enrolment = await client.post("/v1/me/totp", headers=staff.headers)
    assert enrolment.status_code == 201
    secret = enrolment.json()["secret"]
    assert enrolment.json()["provisioning_uri"].startswith("otpauth://totp/")
    bad = await client.post("/v1/me/totp/confirm", headers=staff.headers, json={"code": "000000"})
    assert_problem(bad, 422, "invalid_totp_code")
    ok = await client.post(
        "/v1/me/totp/confirm", headers=staff.headers, json={"code": pyotp.TOTP(secret).at(clock.now())}
    )
    assert ok.status_code == 204
    assert_problem(await client.get("/v1/me", headers=other_session.headers), 401)
    no_code = await client.post("/v1/auth/token", data={"username": staff.email, "password": PASSWORD})
    assert_problem(no_code, 401, "mfa_required")
    wrong = await client.post(
        "/v1/auth/token", data={"username": staff.email, "password": PASSWORD, "totp": "123456"}
    )
    assert_problem(wrong, 401, "invalid_credentials")
    right = await client.post(
        "/v1/auth/token",
        data={
            "username": staff.email,
            "password": PASSWORD,
            "totp": pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30)),
        },
    )
    assert right.status_code == 200
    assert (
        await client.get("/v1/me", headers={"Authorization": f"Bearer {right.json()['access_token']}"})
    ).json()["totp_enabled"]


async def test_a_totp_code_works_once(client, people, clock) -> None:
    staff = await people.create(Role.consultant)
    secret = (await client.post("/v1/me/totp", headers=staff.headers)).json()["secret"]
    code = pyotp.TOTP(secret).at(clock.now())
    assert (
        await client.post("/v1/me/totp/confirm", headers=staff.headers, json={"code": code})
    ).status_code == 204
    # The code that confirmed enrolment cannot be replayed to sign in, nor can a sign-in code be reused.
    replay = await client.post(
        "/v1/auth/token", data={"username": staff.email, "password": PASSWORD, "totp": code}
    )
    assert_problem(replay, 401, "invalid_credentials")


async def test_consulters_cannot_enrol_totp(client, people) -> None:
    consulter = await people.create(Role.consulter)
    assert_problem(await client.post("/v1/me/totp", headers=consulter.headers), 403, "role_not_allowed")


async def test_when_mfa_is_required_staff_without_it_reach_only_their_own_account(
    app, container, people, clock
) -> None:
    from api.main import create_app

    strict = create_app(
        settings=container.settings.model_copy(update={"require_staff_mfa": True}), container=container
    )
    transport = httpx.ASGITransport(app=strict)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        admin = await people.create(Role.admin)
        assert_problem(await http.get("/v1/users", headers=admin.headers), 403, "mfa_enrolment_required")
        supervisor = await people.create(Role.supervisor)
        for url in ("/v1/consultations", "/v1/desks/police_110/versions", "/v1/me/password"):
            method = "POST" if url.endswith("password") else "GET"
            response = await http.request(method, url, headers=supervisor.headers, json={})
            assert_problem(response, 403, "mfa_enrolment_required")
        assert (await http.get("/v1/me", headers=admin.headers)).status_code == 200
        enrolment = (await http.post("/v1/me/totp", headers=admin.headers)).json()
        code = pyotp.TOTP(enrolment["secret"]).at(clock.now())
        assert (
            await http.post("/v1/me/totp/confirm", headers=admin.headers, json={"code": code})
        ).status_code == 204
        # The session that proved the second factor is now enough; a new sign-in proves it too.
        assert (await http.get("/v1/users", headers=admin.headers)).status_code == 200
        fresh = await http.post(
            "/v1/auth/token",
            data={
                "username": admin.email,
                "password": PASSWORD,
                "totp": pyotp.TOTP(enrolment["secret"]).at(clock.now() + timedelta(seconds=30)),
            },
        )
        token = fresh.json()["access_token"]
        assert (await http.get("/v1/users", headers={"Authorization": f"Bearer {token}"})).status_code == 200
