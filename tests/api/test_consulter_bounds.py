"""One consulter cannot fill the disk or flood a staff thread (issue #13 item 6): evidence items, stored bytes per
consultation and per consulter, and the consulter's message rate are bounded; the evidence and message lists
come a page at a time."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import Image

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take
from tests.conftest import assert_problem


@pytest.fixture
def bounds(container, monkeypatch):  # type: ignore[no-untyped-def]
    """Set the consultation policy's bounds for one test (the settings give them in production)."""
    service = container.consultations

    def set_bounds(**values: int) -> None:
        monkeypatch.setattr(service, "policy", replace(service.policy, **values))

    return set_bounds


def noise_png(seed: int, side: int = 96) -> bytes:
    """A PNG that does not compress away (random pixels), so its stored size is close to its upload size."""
    import random

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), bytes(rng.randrange(256) for _ in range(side * side * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def add_item(client, person, consultation_id: str, n: int = 0):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/v1/consultations/{consultation_id}/evidence",
        headers=person.headers,
        json={"url": f"https://x.com/someone/status/{1000 + n}", "excerpt": f"中傷の投稿その{n}"},
    )


async def upload(client, person, consultation_id: str, evidence_id: str, data: bytes):  # type: ignore[no-untyped-def]
    return await client.put(
        f"/v1/consultations/{consultation_id}/evidence/{evidence_id}/file",
        headers=person.headers,
        files={"file": ("screenshot.png", data, "image/png")},
    )


async def test_evidence_items_per_consultation_are_bounded(client, people, bounds) -> None:
    bounds(evidence_items_per_consultation=3)
    owner = await people.create()
    consultant = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    for n in range(3):
        assert (await add_item(client, owner, c["id"], n)).status_code == 201
    body = assert_problem(await add_item(client, owner, c["id"], 3), 409, "evidence_limit_reached")
    assert body["limit"] == 3
    # Staff add to the same consultation's items, so the bound holds for them too.
    await take(client, consultant, c["id"])
    assert_problem(await add_item(client, consultant, c["id"], 4), 409, "evidence_limit_reached")
    listed = await client.get(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers)
    assert len(listed.json()["items"]) == 3
    # Another consultation of the same person has its own room.
    other = await open_consultation(client, owner, title="別の投稿について")
    assert (await add_item(client, owner, other["id"])).status_code == 201


async def test_concurrent_additions_cannot_pass_the_bound_together(client, people, bounds) -> None:
    bounds(evidence_items_per_consultation=3)
    owner = await people.create()
    c = await open_consultation(client, owner)
    answers = await asyncio.gather(*(add_item(client, owner, c["id"], n) for n in range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert 500 not in statuses and statuses.count(201) <= 3
    listed = await client.get(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers)
    assert len(listed.json()["items"]) == statuses.count(201)


async def test_concurrent_intakes_cannot_pass_the_hourly_bound_together(client, people, bounds) -> None:
    """Intakes of one person line up on their account's lock; each counts the hour's cases after it has the
    lock, in a statement of its own. Counted inside the locking statement (PostgreSQL: that statement's
    snapshot predates the wait), every intake that waited missed the case committed before it: 8 at once
    made up to 8 cases against a bound of 3."""
    from tests.api.consultation_helpers import intake

    bounds(intake_per_hour=3)
    person = await people.create()
    answers = await asyncio.gather(
        *(
            client.post("/v1/consultations", headers=person.headers, json=intake(title=f"相談その{n}"))
            for n in range(8)
        )
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 3 + [429] * 5, statuses
    listed = await client.get("/v1/consultations", headers=person.headers)
    assert len(listed.json()["items"]) == 3


async def test_an_intake_refused_for_the_hour_says_when_the_first_of_its_cases_leaves_it(
    client, people, bounds, clock
) -> None:
    """Retry-After counts from the oldest case of the hour, not a flat hour from now; the hour is (now - 1 h,
    now], so a case opened exactly Retry-After seconds before the retry no longer counts."""
    from tests.api.consultation_helpers import intake

    bounds(intake_per_hour=2)
    person = await people.create()
    clock.freeze()

    async def later(delay: timedelta):  # type: ignore[no-untyped-def]  # the access token expires meanwhile
        clock.advance(delay)
        return await people.sign_in(person.id, person.email, person.role)

    await open_consultation(client, person)
    person = await later(timedelta(minutes=20))
    await open_consultation(client, person)
    person = await later(timedelta(minutes=10))
    refused = await client.post("/v1/consultations", headers=person.headers, json=intake(title="三件目"))
    assert_problem(refused, 429, "too_many_consultations")
    assert refused.headers["retry-after"] == str(30 * 60)  # the first case, 30 minutes old, leaves in 30
    person = await later(timedelta(minutes=30) - timedelta(seconds=1))
    early = await client.post("/v1/consultations", headers=person.headers, json=intake(title="三件目"))
    assert_problem(early, 429, "too_many_consultations")
    assert early.headers["retry-after"] == "1"
    person = await later(timedelta(seconds=1))
    again = await client.post("/v1/consultations", headers=person.headers, json=intake(title="三件目"))
    assert again.status_code == 201, again.text


async def test_stored_bytes_per_consultation_are_bounded(client, people, bounds) -> None:
    first, second = noise_png(1), noise_png(2)
    bounds(evidence_bytes_per_consultation=len(first) + len(second) // 2)
    owner = await people.create()
    c = await open_consultation(client, owner)
    a = (await add_item(client, owner, c["id"], 1)).json()
    b = (await add_item(client, owner, c["id"], 2)).json()
    assert (await upload(client, owner, c["id"], a["id"], first)).status_code == 200
    assert_problem(await upload(client, owner, c["id"], b["id"], second), 413, "consultation_storage_full")
    # Nothing was kept of the refused file: the item has none and a smaller file still fits.
    assert (
        await client.get(f"/v1/consultations/{c['id']}/evidence/{b['id']}", headers=owner.headers)
    ).json()["file"] is None
    small = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 255, 255)).save(small, "PNG")
    assert (await upload(client, owner, c["id"], b["id"], small.getvalue())).status_code == 200


async def test_stored_bytes_per_consulter_are_bounded_over_all_their_consultations(
    client, people, bounds
) -> None:
    first, second = noise_png(3), noise_png(4)
    bounds(evidence_bytes_per_consulter=len(first) + len(second) // 2)
    owner = await people.create()
    one = await open_consultation(client, owner)
    two = await open_consultation(client, owner, title="二件目の相談")
    a = (await add_item(client, owner, one["id"])).json()
    b = (await add_item(client, owner, two["id"])).json()
    assert (await upload(client, owner, one["id"], a["id"], first)).status_code == 200
    assert_problem(await upload(client, owner, two["id"], b["id"], second), 413, "consulter_storage_full")
    # Someone else's quota is their own.
    stranger = await people.create()
    theirs = await open_consultation(client, stranger)
    item = (await add_item(client, stranger, theirs["id"])).json()
    assert (await upload(client, stranger, theirs["id"], item["id"], second)).status_code == 200


async def test_a_consulter_posts_a_bounded_number_of_messages_per_hour(client, people, bounds, clock) -> None:
    bounds(consulter_messages_per_hour=3)
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}/messages"
    clock.freeze()  # the durations below are the clock's alone, not also the real time the requests take
    for n in range(3):
        posted = await client.post(url, headers=owner.headers, json={"body": f"追加の情報です（{n}）"})
        assert posted.status_code == 201, posted.text
        clock.advance(timedelta(minutes=4))
    refused = await client.post(url, headers=owner.headers, json={"body": "まだ続きがあります"})
    assert_problem(refused, 429, "too_many_messages")
    # The first message leaves the hour 48 minutes from now (it was posted 12 minutes ago).
    assert int(refused.headers["retry-after"]) == 48 * 60
    # Staff notes are not the consulter's flood: they are not counted or limited.
    consultant = await people.create(Role.consultant)
    await take(client, consultant, c["id"])
    note = await client.post(url, headers=consultant.headers, json={"body": "内部メモ", "kind": "note"})
    assert note.status_code == 201
    thread = await client.get(url, headers=owner.headers, params={"limit": 100})
    assert [m["body"] for m in thread.json()["items"]] == [f"追加の情報です（{n}）" for n in range(3)]
    clock.advance(timedelta(seconds=int(refused.headers["retry-after"])))
    owner = await people.sign_in(owner.id, owner.email, owner.role)  # the access token has expired meanwhile
    assert (
        await client.post(url, headers=owner.headers, json={"body": "まだ続きがあります"})
    ).status_code == 201


async def test_the_message_retry_after_is_rounded_up_and_enough(client, people, bounds, clock) -> None:
    """Retry-After is whole seconds from the one clock reading of the refused request, rounded up: with the
    oldest message leaving the hour 2 879.75 s later, it is 2 880; one second less is still refused, and
    exactly that long later the post is taken (a message posted exactly an hour ago has left the window)."""
    bounds(consulter_messages_per_hour=2)
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}/messages"
    clock.freeze()
    for n in range(2):
        assert (await client.post(url, headers=owner.headers, json={"body": f"続報{n}"})).status_code == 201
        clock.advance(timedelta(minutes=6, microseconds=125_000))
    refused = await client.post(url, headers=owner.headers, json={"body": "まだ続きがあります"})
    assert_problem(refused, 429, "too_many_messages")
    wait = int(refused.headers["retry-after"])
    assert wait == 48 * 60  # 60 min - 12 min 0.25 s = 2 879.75 s, rounded up
    clock.advance(timedelta(seconds=wait - 1))
    owner = await people.sign_in(owner.id, owner.email, owner.role)  # the access token has expired meanwhile
    early = await client.post(url, headers=owner.headers, json={"body": "まだ続きがあります"})
    assert_problem(early, 429, "too_many_messages")
    assert early.headers["retry-after"] == "1"
    clock.advance(timedelta(seconds=1))
    assert (
        await client.post(url, headers=owner.headers, json={"body": "まだ続きがあります"})
    ).status_code == 201


async def test_the_thread_comes_a_page_at_a_time_in_posting_order(client, people, clock) -> None:
    owner = await people.create()
    consultant = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, consultant, c["id"])
    url = f"/v1/consultations/{c['id']}/messages"
    written = []
    for n in range(5):
        body = f"{n + 1}通目：投稿が増えています"
        assert (await client.post(url, headers=owner.headers, json={"body": body})).status_code == 201
        written.append(body)
        if n == 1:
            note = {"body": "担当メモ：証拠保全を優先", "kind": "note"}
            assert (await client.post(url, headers=consultant.headers, json=note)).status_code == 201
        clock.advance(timedelta(seconds=1))

    async def walk(person, limit: int) -> tuple[list[str], list[int]]:  # type: ignore[no-untyped-def]
        bodies, sizes, cursor = [], [], None
        while True:
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(url, headers=person.headers, params=params)).json()
            bodies += [m["body"] for m in page["items"]]
            sizes.append(len(page["items"]))
            cursor = page["next_cursor"]
            if cursor is None:
                return bodies, sizes

    assert await walk(owner, 2) == (written, [2, 2, 1])  # the consulter never sees the note
    staff_bodies, staff_sizes = await walk(consultant, 4)
    assert staff_bodies == [*written[:2], "担当メモ：証拠保全を優先", *written[2:]] and staff_sizes == [4, 2]
    assert_problem(await client.get(url, headers=owner.headers, params={"cursor": "not-a-cursor"}), 422)
    assert_problem(await client.get(url, headers=owner.headers, params={"limit": 101}), 422)


async def test_evidence_comes_a_page_at_a_time_and_other_people_get_404(client, people, clock) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    ids = []
    for n in range(3):
        ids.append((await add_item(client, owner, c["id"], n)).json()["id"])
        clock.advance(timedelta(seconds=1))
    url = f"/v1/consultations/{c['id']}/evidence"
    first = (await client.get(url, headers=owner.headers, params={"limit": 2})).json()
    assert [e["id"] for e in first["items"]] == ids[:2] and first["next_cursor"]
    rest = (await client.get(url, headers=owner.headers, params={"cursor": first["next_cursor"]})).json()
    assert [e["id"] for e in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    # A cursor is only a position: someone else holding it still sees nothing of the consultation.
    stranger = await people.create()
    assert_problem(
        await client.get(url, headers=stranger.headers, params={"cursor": first["next_cursor"]}), 404
    )
    assert_problem(await client.get(f"/v1/consultations/{c['id']}/messages", headers=stranger.headers), 404)
