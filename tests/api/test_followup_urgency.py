"""Issue 14 item 20: urgency is not decided at intake only. A consulter's follow-up that reveals danger makes
the case urgent, alerts its consultant (the supervisors when unassigned) through the outbox, and answers the
consulter with the emergency desks, as intake does. Mails carry ids, never what the consulter wrote."""

from __future__ import annotations

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take

DANGER = "さっき知らない男が家の前に来ていました。ネットに住所を晒されたせいだと思います。怖いです"


async def _post(client, person, cid: str, body: str):  # type: ignore[no-untyped-def]
    return await client.post(f"/v1/consultations/{cid}/messages", headers=person.headers, json={"body": body})


async def test_a_follow_up_that_reveals_danger_raises_urgency_and_alerts_the_assignee(
    client, people, container, mailbox
) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    bystander = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    assert c["urgent"] is False
    await take(client, staff, c["id"])

    posted = await _post(client, owner, c["id"], DANGER)
    assert posted.status_code == 201
    body = posted.json()
    assert "physical_danger" in {f["flag"] for f in body["urgency"]}
    assert body["urgency_desks"][0]["code"] == "police_110"  # police first
    assert {d["code"] for d in body["emergency_desks"]} >= {"police_110"}

    case = (await client.get(f"/v1/consultations/{c['id']}", headers=staff.headers)).json()
    assert case["urgent"] is True and case["priority"] == "urgent"
    assert "physical_danger" in case["urgency_flags"]

    assert await container.worker.run_once() == 1
    mails = mailbox.to(staff.email)
    assert len(mails) == 1 and not mailbox.to(bystander.email)
    text = mailbox.body(mails[0])
    assert c["id"] in text
    assert "家の前" not in text and "住所" not in text  # no content in a mail


async def test_an_unassigned_case_alerts_every_supervisor(client, people, container, mailbox) -> None:
    owner = await people.create()
    first = await people.create(Role.supervisor)
    second = await people.create(Role.supervisor)
    consultant = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    posted = await _post(client, owner, c["id"], "もう限界です。今夜死のうと思っています")
    assert {f["flag"] for f in posted.json()["urgency"]} >= {"suicide"}
    assert posted.json()["urgency_desks"][0]["code"] == "police_110"  # imminent: 110 first
    assert await container.worker.run_once() == 2
    assert len(mailbox.to(first.email)) == 1 and len(mailbox.to(second.email)) == 1
    assert not mailbox.to(consultant.email)


async def test_an_ordinary_follow_up_changes_no_urgency_and_alerts_nobody(client, people, container) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    posted = await _post(
        client, owner, c["id"], "ご回答ありがとうございます。削除依頼のフォームを送りました。"
    )
    assert posted.status_code == 201
    assert posted.json()["urgency"] == [] and posted.json()["emergency_desks"] == []
    case = (await client.get(f"/v1/consultations/{c['id']}", headers=staff.headers)).json()
    assert case["urgent"] is False
    assert await container.worker.run_once() == 0


async def test_a_staff_note_quoting_danger_alerts_nobody(client, people, container) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    note = await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers=staff.headers,
        json={"body": "相談者は「殺すぞ」と言われたと説明。警察には相談済み。", "kind": "note"},
    )
    assert note.status_code == 201 and note.json()["urgency"] == []
    assert await container.worker.run_once() == 0
