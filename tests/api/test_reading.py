"""Unread answers: reading the thread is a GET that changes nothing; the consulter marks it read explicitly."""

from __future__ import annotations

from domain.actors import Role
from tests.api.consultation_helpers import answer, open_consultation, random_id, take
from tests.conftest import assert_problem


async def unread(client, person) -> int:  # type: ignore[no-untyped-def]
    return (await client.get("/v1/consultations", headers=person.headers)).json()["items"][0][
        "unread_answers"
    ]  # type: ignore[no-any-return]


async def test_reading_the_thread_changes_nothing_and_marking_read_counts_down(client, people) -> None:
    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    await answer(client, staff, c["id"], "まずは投稿のURLと日時を保存してください。", people=people)
    await answer(client, staff, c["id"], "削除依頼の書式をお送りします。", people=people)
    url = f"/v1/consultations/{c['id']}/messages"
    for _ in range(3):  # a prefetch, a retry, a second tab
        thread = (await client.get(url, headers=owner.headers)).json()["items"]
    assert [m["kind"] for m in thread] == ["answer", "answer"]
    assert await unread(client, owner) == 2

    first, second = thread[0]["id"], thread[1]["id"]
    marked = await client.post(f"{url}/read", headers=owner.headers, json={"up_to": first})
    assert marked.status_code == 200 and marked.json() == {"unread_answers": 1}
    assert await unread(client, owner) == 1
    marked = await client.post(f"{url}/read", headers=owner.headers, json={"up_to": second})
    assert marked.json() == {"unread_answers": 0} and await unread(client, owner) == 0
    # The mark never moves back.
    again = await client.post(f"{url}/read", headers=owner.headers, json={"up_to": first})
    assert again.json() == {"unread_answers": 0} and await unread(client, owner) == 0

    # A new answer is unread again.
    await answer(client, staff, c["id"], "ご不明な点があればお知らせください。", people=people)
    assert await unread(client, owner) == 1


async def test_only_the_owner_marks_and_only_messages_of_their_thread(client, people) -> None:
    owner = await people.create()
    other = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    note = await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers=staff.headers,
        json={"body": "内部メモ：確認中", "kind": "note"},
    )
    await answer(client, staff, c["id"], "回答です。", people=people)
    url = f"/v1/consultations/{c['id']}/messages/read"
    thread = (await client.get(f"/v1/consultations/{c['id']}/messages", headers=owner.headers)).json()[
        "items"
    ]
    mine = {"up_to": thread[-1]["id"]}
    # Another consulter learns nothing: 404 as for a consultation that does not exist.
    assert_problem(await client.post(url, headers=other.headers, json=mine), 404)
    assert_problem(
        await client.post(f"/v1/consultations/{random_id()}/messages/read", headers=other.headers, json=mine),
        404,
    )
    assert_problem(await client.post(url, headers=staff.headers, json=mine), 403, "role_not_allowed")
    # An internal note is not in the consulter's thread, nor is an id from nowhere.
    for up_to in (note.json()["id"], random_id()):
        assert_problem(
            await client.post(url, headers=owner.headers, json={"up_to": up_to}), 404, "message_not_found"
        )
    assert_problem(await client.post(url, headers=owner.headers, json={}), 422)
    assert await unread(client, owner) == 1
