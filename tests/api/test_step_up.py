"""Step-up (issue 17 §3, ASVS 7.5.1): sensitive account actions need a proof of identity younger than a few
minutes: a sign-in, or POST /v1/auth/step-up on the caller's own session."""

from __future__ import annotations

from datetime import timedelta

import pyotp

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take
from tests.conftest import PASSWORD, assert_problem

NEW_PASSWORD = "夏の海で貝殻を拾った日のこと"
STALE = timedelta(minutes=6)  # the default proof counts five minutes


def change(current: str = PASSWORD, new: str = NEW_PASSWORD) -> dict[str, str]:
    return {"current_password": current, "new_password": new}


def assert_step_up_required(response) -> None:  # type: ignore[no-untyped-def]
    assert_problem(response, 401, "step_up_required")
    assert response.json()["max_age"] == 300
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert "max_age=300" in challenge


async def signs_in(client, email: str, password: str) -> bool:  # type: ignore[no-untyped-def]
    answer = await client.post("/v1/auth/token", data={"username": email, "password": password})
    return answer.status_code == 200  # type: ignore[no-any-return]


async def test_a_fresh_sign_in_passes_and_a_stale_one_must_step_up(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    clock.advance(STALE)
    assert_step_up_required(await client.post("/v1/me/password", headers=person.headers, json=change()))
    assert await signs_in(client, person.email, PASSWORD)  # refused: the password did not change

    proof = await client.post("/v1/auth/step-up", headers=person.headers, json={"password": PASSWORD})
    assert proof.status_code == 200, proof.text
    body = proof.json()
    assert body["amr"] == ["pwd"] and body["max_age"] == 300
    assert (await client.post("/v1/me/password", headers=person.headers, json=change())).status_code == 204
    assert await signs_in(client, person.email, NEW_PASSWORD)

    clock.advance(STALE)  # the proof, too, grows old
    again = await client.post("/v1/me/password", headers=person.headers, json=change(NEW_PASSWORD, PASSWORD))
    assert_step_up_required(again)


async def test_a_proof_just_inside_the_window_passes(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    clock.advance(timedelta(minutes=4))
    assert (await client.post("/v1/me/password", headers=person.headers, json=change())).status_code == 204


async def test_a_wrong_password_is_refused_and_throttled_like_sign_in(
    client, people, clock, settings
) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    clock.advance(STALE)
    for _ in range(settings.login_max_failures):
        wrong = await client.post(
            "/v1/auth/step-up", headers=person.headers, json={"password": "違うパスワードです"}
        )
        assert_problem(wrong, 422, "step_up_failed")
    assert_step_up_required(await client.post("/v1/me/password", headers=person.headers, json=change()))
    # Past the sign-in bar even the right password waits, as at sign-in.
    throttled = await client.post("/v1/auth/step-up", headers=person.headers, json={"password": PASSWORD})
    assert_problem(throttled, 429, "too_many_attempts")
    assert int(throttled.headers["retry-after"]) > 0
    assert_step_up_required(await client.post("/v1/me/password", headers=person.headers, json=change()))


async def test_one_cannot_step_up_another_accounts_session(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    victim = await people.create()
    other = await people.create(password="別のアカウントの長いパスワード")
    clock.advance(STALE)
    # The victim's password on the other's token proves nothing: the proof is for the token's own account.
    refused = await client.post("/v1/auth/step-up", headers=other.headers, json={"password": PASSWORD})
    assert_problem(refused, 422, "step_up_failed")
    # The other person stepping up on their own session leaves the victim's session stale.
    mine = await client.post(
        "/v1/auth/step-up", headers=other.headers, json={"password": "別のアカウントの長いパスワード"}
    )
    assert mine.status_code == 200
    assert_step_up_required(await client.post("/v1/me/password", headers=victim.headers, json=change()))
    assert_problem(await client.post("/v1/auth/step-up", json={"password": PASSWORD}), 401, "missing_token")


async def test_staff_with_totp_step_up_with_the_code_and_enrolment_needs_a_fresh_proof(
    client, people, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    staff = await people.create(Role.consultant)
    clock.advance(STALE)
    assert_step_up_required(await client.post("/v1/me/totp", headers=staff.headers))
    assert (await client.post("/v1/auth/step-up", headers=staff.headers, json={"password": PASSWORD})).json()[
        "amr"
    ] == ["pwd"]
    secret = (await client.post("/v1/me/totp", headers=staff.headers)).json()["secret"]
    confirmed = await client.post(
        "/v1/me/totp/confirm", headers=staff.headers, json={"code": pyotp.TOTP(secret).at(clock.now())}
    )
    assert confirmed.status_code == 204

    clock.advance(timedelta(seconds=30) + STALE)
    # The access token has expired meanwhile; refreshing keeps the session, and is no proof of identity.
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": staff.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    staff_headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert_step_up_required(await client.post("/v1/me/password", headers=staff_headers, json=change()))
    no_code = await client.post("/v1/auth/step-up", headers=staff_headers, json={"password": PASSWORD})
    assert_problem(no_code, 422, "totp_code_required")
    wrong = await client.post(
        "/v1/auth/step-up", headers=staff_headers, json={"password": PASSWORD, "totp_code": "000000"}
    )
    assert_problem(wrong, 422, "step_up_failed")
    # A wrong password with the right code answers the same: a held session cannot test passwords alone.
    wrong_password = await client.post(
        "/v1/auth/step-up",
        headers=staff_headers,
        json={"password": "not-the-password-1", "totp_code": pyotp.TOTP(secret).at(clock.now())},
    )
    assert_problem(wrong_password, 422, "step_up_failed")
    assert wrong_password.json()["field"] == wrong.json()["field"]
    code = pyotp.TOTP(secret).at(clock.now())
    proof = await client.post(
        "/v1/auth/step-up", headers=staff_headers, json={"password": PASSWORD, "totp_code": code}
    )
    assert proof.status_code == 200 and proof.json()["amr"] == ["pwd", "otp"]
    # One code proves once.
    replay = await client.post(
        "/v1/auth/step-up", headers=staff_headers, json={"password": PASSWORD, "totp_code": code}
    )
    assert_problem(replay, 422, "step_up_failed")
    assert (await client.post("/v1/me/password", headers=staff_headers, json=change())).status_code == 204


async def test_staff_download_an_evidence_bundle_only_with_a_fresh_proof(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    owner, staff = await people.create(), await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    url = f"/v1/consultations/{c['id']}/evidence/bundle"
    clock.advance(STALE)
    assert_step_up_required(await client.get(url, headers=staff.headers))
    # The consulter's own copy needs no step-up.
    assert (await client.get(url, headers=owner.headers)).status_code == 200
    assert (
        await client.post("/v1/auth/step-up", headers=staff.headers, json={"password": PASSWORD})
    ).status_code == 200
    downloaded = await client.get(url, headers=staff.headers)
    assert downloaded.status_code == 200 and downloaded.headers["content-type"] == "application/zip"
