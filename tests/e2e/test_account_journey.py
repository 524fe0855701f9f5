"""The real server process on a loopback port, driven over HTTP as the my-page front end would."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

EMAIL = "yamada.hanako@example.jp"
PASSWORD = "春の川べりで桜を数えた午後"


def wait_for_token(mailbox, address: str) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            return mailbox.token_for(address)  # type: ignore[no-any-return]
        except AssertionError:
            time.sleep(0.1)
    raise AssertionError("no verification mail arrived")


def test_register_verify_login_refresh_logout(server: str, mailbox) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server, timeout=10, headers={"Accept-Language": "ja"}) as http:
        registered = http.post(
            "/v1/auth/register", json={"email": EMAIL, "password": PASSWORD, "display_name": "山田花子"}
        )
        assert registered.status_code == 202

        token = wait_for_token(mailbox, EMAIL)
        message = mailbox.to(EMAIL)[-1]
        assert message["Subject"] == "【窓口】メールアドレスの確認"
        assert "https://madoguchi.example.jp/verify-email#token=" in mailbox.body(message)

        assert http.post("/v1/auth/verify-email", json={"token": token}).status_code == 204

        login = http.post("/v1/auth/token", data={"username": EMAIL, "password": PASSWORD})
        assert login.status_code == 200
        tokens = login.json()

        me = http.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200 and me.json()["display_name"] == "山田花子"
        assert me.headers["cache-control"] == "no-store" and me.headers["x-request-id"]

        refreshed = http.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        access = refreshed.json()["access_token"]
        assert http.get("/v1/me", headers={"Authorization": f"Bearer {access}"}).status_code == 200

        assert http.post("/v1/auth/logout", headers={"Authorization": f"Bearer {access}"}).status_code == 204
        after = http.get("/v1/me", headers={"Authorization": f"Bearer {access}"})
        assert after.status_code == 401
        assert after.headers["content-type"].startswith("application/problem+json")
        assert after.headers["www-authenticate"].startswith("Bearer")
