"""Issue 17 §3: a person asks to erase their account (step-up required), may cancel during the grace period; then
the worker shreds their consultations except those under a legal hold, and anonymises the account."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from domain.actors import Role
from infra.db.tables import CaseKeyRow, ConsultationRow, LineUserRow, OutboxRow, UserRow
from tests.api.consultation_helpers import open_consultation
from tests.api.test_retention import HOLD_REASON, NARRATIVE, hold_url
from tests.conftest import PASSWORD, assert_problem

URL = "/v1/me/erasure"


async def signs_in(client, email: str) -> bool:  # type: ignore[no-untyped-def]
    answer = await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    return answer.status_code == 200  # type: ignore[no-any-return]


async def test_request_cancel_and_request_again(client, people, clock, container) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    asked = await client.post(URL, headers=person.headers)
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert body["status"] == "pending" and body["grace_days"] == 14 and body["kept_ja"]
    assert_problem(await client.post(URL, headers=person.headers), 409, "erasure_already_requested")
    shown = await client.get(URL, headers=person.headers)
    assert shown.status_code == 200 and shown.json()["id"] == body["id"]
    async with container.sessions() as db:
        kinds = list((await db.execute(select(OutboxRow.kind))).scalars())
    assert "mail.erasure_requested" in kinds
    assert (await client.delete(URL, headers=person.headers)).status_code == 204
    assert (await client.get(URL, headers=person.headers)).json()["status"] == "cancelled"
    assert_problem(await client.delete(URL, headers=person.headers), 404, "erasure_request_not_found")
    # Cancelled: the grace period passes and nothing happens.
    clock.advance(timedelta(days=15))
    assert (await container.erasure.apply()).completed == 0
    assert await signs_in(client, person.email)


async def test_step_up_is_required(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    clock.advance(timedelta(minutes=6))
    assert_problem(await client.post(URL, headers=person.headers), 401, "step_up_required")
    proof = await client.post("/v1/auth/step-up", headers=person.headers, json={"password": PASSWORD})
    assert proof.status_code == 200, proof.text
    assert (await client.post(URL, headers=person.headers)).status_code == 202


async def test_staff_cannot_and_others_see_nothing(client, people) -> None:  # type: ignore[no-untyped-def]
    staff = await people.create(Role.consultant)
    assert (await client.post(URL, headers=staff.headers)).status_code == 403
    one, other = await people.create(), await people.create()
    assert (await client.post(URL, headers=one.headers)).status_code == 202
    assert_problem(await client.get(URL, headers=other.headers), 404, "erasure_request_not_found")
    assert_problem(await client.delete(URL, headers=other.headers), 404, "erasure_request_not_found")
    assert (await client.get(URL, headers=one.headers)).json()["status"] == "pending"
    assert (await client.get("/v1/erasure-requests", headers=one.headers)).status_code == 403


async def test_after_the_grace_period_the_account_and_its_cases_are_gone_but_a_held_case_stays(
    client, people, clock, container
) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    supervisor = await people.create(Role.supervisor)
    gone = await open_consultation(client, person, narrative=NARRATIVE)
    held = await open_consultation(client, person, narrative=NARRATIVE)
    placed = await client.put(hold_url(held["id"]), headers=supervisor.headers, json={"reason": HOLD_REASON})
    assert placed.status_code == 201, placed.text
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    listed = await client.get("/v1/erasure-requests?limit=1", headers=supervisor.headers)
    assert listed.status_code == 200 and [i["user_id"] for i in listed.json()["items"]] == [str(person.id)]
    assert NARRATIVE not in listed.text
    clock.advance(timedelta(days=13))
    assert (await container.erasure.apply()).completed == 0  # still in the grace period
    clock.advance(timedelta(days=1, minutes=1))
    await container.worker.run_once()
    assert container.worker.last_pass.erasures_completed == 1
    async with container.sessions() as db:
        user = await db.get(UserRow, person.id)
        rows = {
            r.id: r
            for r in (
                await db.execute(select(ConsultationRow).where(ConsultationRow.owner_id == person.id))
            ).scalars()
        }
        keys = {k.consultation_id: k.wrapped for k in (await db.execute(select(CaseKeyRow))).scalars()}
        line = list((await db.execute(select(LineUserRow).where(LineUserRow.user_id == person.id))).scalars())
    assert user is not None and user.email != person.email and user.email.endswith(".invalid")
    assert (user.password_hash, user.is_active, user.display_name) == (None, False, None)
    assert line == []
    g, h = rows[uuid.UUID(gone["id"])], rows[uuid.UUID(held["id"])]
    assert (g.narrative, keys.get(g.id)) == ("", None)  # wiped, its key destroyed
    assert g.status  # coded fields stay: statistics keep counting
    assert h.id in keys and keys[h.id] is not None  # the held case keeps its key until the hold is lifted
    supervisor = await people.sign_in(supervisor.id, supervisor.email, supervisor.role)
    assert NARRATIVE in (await client.get(f"/v1/consultations/{held['id']}", headers=supervisor.headers)).text
    assert not await signs_in(client, person.email)
    assert (await client.get(URL, headers=person.headers)).status_code == 401  # its tokens no longer work
    # The address is free again.
    registered = await client.post("/v1/auth/register", json={"email": person.email, "password": PASSWORD})
    assert registered.status_code in (202, 201), registered.text
    assert (await client.get("/v1/erasure-requests", headers=supervisor.headers)).json()["items"] == []


async def test_an_export_still_open_when_the_account_is_erased_is_never_handed_over(
    client, people, clock, container
) -> None:  # type: ignore[no-untyped-def]
    from tests.api.test_exports import ask, row_of

    clock.set(clock.now())
    person = await people.create()
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    clock.advance(timedelta(days=13))
    person = await people.sign_in(person.id, person.email, person.role)  # a fresh proof for the export
    export = await ask(client, person)
    await container.worker.run_once()
    row = await row_of(container, export["id"])
    assert row.state == "ready" and row.blob_key and await container.blobs.exists(row.blob_key)
    clock.advance(timedelta(days=1, seconds=1))
    await container.worker.run_once()  # the erasure
    assert container.worker.last_pass.erasures_completed == 1
    await container.worker.run_once()  # the sweep
    assert (await row_of(container, export["id"])).state == "expired"
    assert not await container.blobs.exists(row.blob_key)


async def test_supervisors_page_through_pending_requests_oldest_first(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.api.consultation_helpers import every_page

    clock.set(clock.now())
    supervisor = await people.create(Role.supervisor)
    asked = []
    for _ in range(3):
        person = await people.create()
        assert (await client.post(URL, headers=person.headers)).status_code == 202
        asked.append(str(person.id))
        clock.advance(timedelta(seconds=1))
    seen = await every_page(client, "/v1/erasure-requests", supervisor.headers, limit=1)
    assert [i["user_id"] for i in seen] == asked
    assert_problem(
        await client.get(
            "/v1/erasure-requests", headers=supervisor.headers, params={"cursor": "not-a-cursor"}
        ),
        422,
        "invalid_cursor",
    )
