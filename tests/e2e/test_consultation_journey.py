"""A consultation end to end over real HTTP: intake → staff answer → the consulter reads and replies → closed."""

from __future__ import annotations

import time

import httpx
import pytest

from api.schemas.consultations import INTAKE_EXAMPLE
from domain.actors import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def sign_in(http: httpx.Client, email: str) -> dict[str, str]:
    response = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_intake_answer_reply_close(server: str, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    # Accounts through the operator path; everything after this goes over HTTP to the server process.
    await container.accounts.create_user_directly(
        email="hanako@example.jp", role=Role.consulter, password=PASSWORD
    )
    await container.accounts.create_user_directly(
        email="sato@madoguchi.example.jp", role=Role.consultant, password=PASSWORD
    )
    await container.accounts.create_user_directly(
        email="houmu@madoguchi.example.jp", role=Role.legal_advisor, password=PASSWORD
    )
    with httpx.Client(base_url=server, timeout=10) as http:
        hanako = sign_in(http, "hanako@example.jp")
        sato = sign_in(http, "sato@madoguchi.example.jp")
        advisor = sign_in(http, "houmu@madoguchi.example.jp")

        def publish(text: str) -> None:
            """Draft → (legal advisor, when the rules ask) → publish, as the staff front end does."""
            drafts = f"/v1/consultations/{cid}/answers"
            draft = http.post(
                drafts, headers=sato, json={"body": text, "manual_sections": ["delete-yourself"]}
            )
            assert draft.status_code == 201, draft.text
            did = draft.json()["id"]
            if draft.json()["needs_review"]:
                assert http.post(f"{drafts}/{did}/submit", headers=sato).json()["state"] == "awaiting_review"
                assert [q["draft_id"] for q in http.get("/v1/reviews", headers=advisor).json()["items"]] == [
                    did
                ]
                assert http.post(f"/v1/reviews/{did}/approve", headers=advisor, json={}).status_code == 200
            assert http.post(f"{drafts}/{did}/publish", headers=sato).json()["state"] == "published"

        created = http.post(
            "/v1/consultations",
            json=INTAKE_EXAMPLE,
            headers={**hanako, "Idempotency-Key": "e2e-intake-0000000001"},
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]

        queue = http.get("/v1/consultations", headers=sato, params={"assignee": "none"}).json()["items"]
        assert [x["id"] for x in queue] == [cid]
        etag = http.get(f"/v1/consultations/{cid}", headers=sato).headers["etag"]
        me = http.get("/v1/me", headers=sato).json()["id"]
        taken = http.post(
            f"/v1/consultations/{cid}/assign", json={"assignee_id": me}, headers={**sato, "If-Match": etag}
        )
        assert taken.json()["status"] == "in_progress"

        http.post(
            f"/v1/consultations/{cid}/messages",
            headers=sato,
            json={"body": "投稿日時の記録が不足しています。", "kind": "note"},
        )
        publish(
            "Xの「ポストを報告」から、名誉毀損として削除を依頼してください。あわせてURLと日時を保存しましょう。"
        )

        deadline = time.monotonic() + 15
        while not mailbox.to("hanako@example.jp") and time.monotonic() < deadline:
            time.sleep(0.1)
        notice = mailbox.to("hanako@example.jp")
        assert len(notice) == 1 and f"/consultations/{cid}" in mailbox.body(notice[0])
        assert "ポストを報告" not in mailbox.body(notice[0])

        mine = http.get("/v1/consultations", headers=hanako).json()["items"]
        assert mine[0]["status"] == "answered" and mine[0]["unread_answers"] == 1
        thread = http.get(f"/v1/consultations/{cid}/messages", headers=hanako).json()["items"]
        assert [m["kind"] for m in thread] == ["answer"] and "ポストを報告" in thread[0]["body"]
        read = http.post(
            f"/v1/consultations/{cid}/messages/read", headers=hanako, json={"up_to": thread[0]["id"]}
        )
        assert read.json() == {"unread_answers": 0}
        assert http.get("/v1/consultations", headers=hanako).json()["items"][0]["unread_answers"] == 0

        reply = http.post(
            f"/v1/consultations/{cid}/messages",
            headers=hanako,
            json={"body": "ありがとうございます。報告しました。削除されなかった場合はどうすればよいですか。"},
        )
        assert reply.status_code == 201
        assert http.get(f"/v1/consultations/{cid}", headers=sato).json()["status"] == "in_progress"
        publish("削除されない場合は、法務局の人権相談もご利用いただけます。")
        etag = http.get(f"/v1/consultations/{cid}", headers=sato).headers["etag"]
        closed = http.post(f"/v1/consultations/{cid}/close", headers={**sato, "If-Match": etag})
        assert closed.status_code == 200 and closed.json()["status"] == "closed"

        history = http.get(f"/v1/consultations/{cid}/history", headers=hanako).json()["items"]
        assert [h["to_status"] for h in history] == [
            "submitted",
            "in_progress",
            "answered",
            "in_progress",
            "answered",
            "closed",
        ]
