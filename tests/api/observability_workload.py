"""A suite-like workload that plants personal data everywhere a caller can put it (bodies, query strings,
paths, headers, tokens), for the checks that metrics labels, spans and log lines carry none of it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from domain.actors import Role
from tests.api.consultation_helpers import intake
from tests.conftest import People

EMAIL = "yamada.hanako.planted@example.jp"
OTHER_EMAIL = "suzuki-ichiro+planted@example.co.jp"
NAME = "山田花子"
NAME_KANA = "ヤマダハナコ植込"
NARRATIVE = "植込みの物語：元交際相手の佐藤次郎が私の住所を晒しています。目印QZ7K"
EVIDENCE_URL = "https://x.com/planted_poster_77/status/1234567890123"
FAKE_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlLXBsYW50ZWQ"
FREE_TEXT = "死にたい。元交際相手に写真をばらまくと脅されています。目印WV3P"
PASSWORD_WRONG = "間違った合言葉プランテッド"


@dataclass
class Planted:
    values: list[str]


async def run_workload(client: httpx.AsyncClient, people: People, container) -> Planted:  # type: ignore[no-untyped-def]
    """Returns every planted value, including the real tokens the workload was issued."""
    planted = [EMAIL, OTHER_EMAIL, NAME, NAME_KANA, NARRATIVE, "目印QZ7K", EVIDENCE_URL, "planted_poster_77"]
    planted += [FAKE_TOKEN, FREE_TEXT, "目印WV3P", PASSWORD_WRONG]

    # Accounts: registration, a wrong password, throttling, a reset request for an unknown address.
    assert (
        await client.post(
            "/v1/auth/register",
            json={"email": OTHER_EMAIL, "password": "桜の花が咲く頃に会いましょう", "display_name": NAME},
        )
    ).status_code == 202
    owner = await people.create(Role.consulter, email=EMAIL, through_sign_in=True)
    planted += [owner.access_token, owner.refresh_token or ""]
    for _ in range(container.settings.login_max_failures + 1):
        await client.post("/v1/auth/token", data={"username": EMAIL, "password": PASSWORD_WRONG})
    await client.post("/v1/auth/password-reset", json={"email": OTHER_EMAIL})
    await client.post("/v1/auth/refresh", json={"refresh_token": "planted-refresh-" + "r" * 40})
    await client.get("/v1/me", headers={"Authorization": f"Bearer {FAKE_TOKEN}"})
    await client.get("/v1/me", headers=owner.headers)

    # A consultation with a narrative naming people, evidence with a URL, a message.
    body = intake(title=f"{NAME}の件", narrative=NARRATIVE, tried=f"{NAME_KANA}に連絡した")
    created = await client.post("/v1/consultations", headers=owner.headers, json=body)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    await client.get(f"/v1/consultations/{cid}", headers=owner.headers)
    evidence = await client.post(
        f"/v1/consultations/{cid}/evidence",
        headers=owner.headers,
        json={"url": EVIDENCE_URL, "excerpt": f"{NAME}は嘘つきだと書かれていた"},
    )
    assert evidence.status_code == 201, evidence.text
    await client.post(
        f"/v1/consultations/{cid}/messages", headers=owner.headers, json={"body": f"{NAME}です。追記します。"}
    )
    consultant = await people.create(Role.consultant, through_sign_in=True)
    planted.append(consultant.access_token)
    await client.get(f"/v1/consultations/{cid}", headers=consultant.headers)  # the unassigned queue: 200
    stranger = await people.create(Role.consulter, through_sign_in=True)
    planted.append(stranger.access_token)
    await client.get(f"/v1/consultations/{cid}", headers=stranger.headers)  # not theirs: 404

    # Query strings and paths carrying personal data (refused, but still logged and counted).
    await client.get("/v1/consultations", params={"email": EMAIL, "q": NAME}, headers=owner.headers)
    await client.get("/healthz", params={"email": EMAIL})
    await client.get(f"/v1/users/{EMAIL}", headers=owner.headers)
    await client.get(f"/no/such/{NAME}/{EMAIL}")

    # The chatbot: a session and free text that must not be kept or logged.
    session = await client.post("/v1/chatbot/sessions")
    assert session.status_code == 201, session.text
    token = session.json()["session_token"]
    planted.append(token)
    sid = session.json()["session_id"]
    headers = {"X-Chatbot-Token": token}
    await client.post(
        f"/v1/chatbot/sessions/{sid}/messages", headers=headers, json={"choice_id": "flow:free_text"}
    )
    await client.post(f"/v1/chatbot/sessions/{sid}/messages", headers=headers, json={"text": FREE_TEXT})

    # The worker delivers what the workload queued (verification and notice mails to the planted addresses).
    await container.worker.run_once()
    return Planted([p for p in planted if p])
