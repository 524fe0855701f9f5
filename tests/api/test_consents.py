"""The consent ledger (issue 17 §4): intake records what it requires, referrals record sharing per desk and
referral, a person reads and withdraws only their own, and a withdrawal stops what it covers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from domain.actors import Role
from infra.db.tables_consents import ConsentRow
from tests.api import test_line
from tests.api.consultation_helpers import answer, intake, open_consultation, take
from tests.conftest import assert_problem

# The LINE module's fixtures (a fake Messaging API and a container that talks to it), reused here.
fake_line, line_container, line_app, line_client = (
    test_line.fake_line,
    test_line.line_container,
    test_line.line_app,
    test_line.line_client,
)
line_user_id, link_account = test_line.line_user_id, test_line.link_account

REASON = "発信者情報開示命令の申立てには弁護士が必要なため、法テラスをご案内します。"
MINE = "/v1/me/consents"


async def ledger_size(container) -> int:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return (await db.execute(select(func.count()).select_from(ConsentRow))).scalar_one()  # type: ignore[no-any-return]


async def referral(client, staff, cid: str, desk: str = "houterasu") -> str:  # type: ignore[no-untyped-def]
    made = await client.post(
        f"/v1/consultations/{cid}/referrals",
        headers=staff.headers,
        json={"desk_code": desk, "reason": REASON},
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]  # type: ignore[no-any-return]


async def test_intake_records_its_consents_and_refuses_without_them(client, people, container) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    before = await ledger_size(container)
    refused = await client.post(
        "/v1/consultations",
        headers=person.headers,
        json=intake(consent={"terms_version": "2026-11", "terms": True, "sensitive_data": False}),
    )
    assert_problem(refused, 422, "consent_required")
    assert await ledger_size(container) == before  # a refused intake records nothing

    c = await open_consultation(client, person)
    listed = await client.get(MINE, headers=person.headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert {i["purpose"] for i in items} == {"terms", "sensitive_data"}
    terms = next(i for i in items if i["purpose"] == "terms")
    assert terms["terms_version"] == "2026-11" and terms["consultation_id"] == c["id"]
    assert terms["purpose_label_ja"] == "利用規約への同意" and terms["action_label_ja"] == "同意"
    assert all(i["in_force"] and i["source"] == "intake" and i["action"] == "granted" for i in items)

    # Neither can be withdrawn here, and trying records nothing.
    for purpose in ("terms", "sensitive_data"):
        no = await client.post(f"{MINE}/withdrawals", headers=person.headers, json={"purpose": purpose})
        assert_problem(no, 409, "consent_not_withdrawable")
    assert len((await client.get(MINE, headers=person.headers)).json()["items"]) == 2


async def test_a_withdrawn_referral_consent_stops_the_sharing(client, people) -> None:  # type: ignore[no-untyped-def]
    owner, staff = await people.create(), await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    base = f"/v1/consultations/{c['id']}/referrals"
    first, second = (
        await referral(client, staff, c["id"]),
        await referral(client, staff, c["id"], "sia_hotline"),
    )
    for rid in (first, second):
        consented = await client.post(f"{base}/{rid}/consent", headers=owner.headers)
        assert consented.json()["state"] == "consented"
    sharing = [
        i
        for i in (await client.get(MINE, headers=owner.headers)).json()["items"]
        if i["purpose"] == "desk_sharing"
    ]
    assert {(i["referral_id"], i["desk_code"], i["source"]) for i in sharing} == {
        (first, "houterasu", "referral"),
        (second, "sia_hotline", "referral"),
    }

    withdrawn = await client.post(
        f"{MINE}/withdrawals", headers=owner.headers, json={"purpose": "desk_sharing", "referral_id": first}
    )
    assert withdrawn.status_code == 201, withdrawn.text
    record = withdrawn.json()
    assert record["action"] == "withdrawn" and record["action_label_ja"] == "撤回"
    assert (
        record["referral_id"] == first and record["desk_code"] == "houterasu" and record["in_force"] is False
    )

    assert_problem(await client.post(f"{base}/{first}/make", headers=staff.headers), 409, "consent_withdrawn")
    state = {r["id"]: r["state"] for r in (await client.get(base, headers=owner.headers)).json()["items"]}
    assert state[first] == "consented"  # refused: nothing changed
    # The other referral, to another desk, is unaffected.
    assert (await client.post(f"{base}/{second}/make", headers=staff.headers)).json()["state"] == "made"

    again = await client.post(
        f"{MINE}/withdrawals", headers=owner.headers, json={"purpose": "desk_sharing", "referral_id": first}
    )
    assert_problem(again, 409, "consent_not_active")
    items = (await client.get(MINE, headers=owner.headers)).json()["items"]
    assert items[0]["id"] == record["id"]  # newest first
    grant = next(i for i in items if i["referral_id"] == first and i["action"] == "granted")
    assert grant["in_force"] is False  # the grant is still in the ledger, no longer in force


async def test_withdrawing_a_desk_stops_every_referral_to_it_until_consented_again(client, people) -> None:  # type: ignore[no-untyped-def]
    owner, staff = await people.create(), await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    base = f"/v1/consultations/{c['id']}/referrals"
    rid = await referral(client, staff, c["id"])
    await client.post(f"{base}/{rid}/consent", headers=owner.headers)
    withdrawn = await client.post(
        f"{MINE}/withdrawals",
        headers=owner.headers,
        json={"purpose": "desk_sharing", "desk_code": "houterasu"},
    )
    assert withdrawn.status_code == 201 and withdrawn.json()["referral_id"] is None
    assert_problem(await client.post(f"{base}/{rid}/make", headers=staff.headers), 409, "consent_withdrawn")
    # A new referral the person consents to afterwards is a new, explicit consent.
    later = await referral(client, staff, c["id"])
    await client.post(f"{base}/{later}/consent", headers=owner.headers)
    assert (await client.post(f"{base}/{later}/make", headers=staff.headers)).json()["state"] == "made"
    # Naming both, neither, or a desk never consented to is refused.
    for body, status, code in (
        ({"purpose": "desk_sharing"}, 422, "referral_or_desk_required"),
        (
            {"purpose": "desk_sharing", "referral_id": rid, "desk_code": "houterasu"},
            422,
            "referral_or_desk_required",
        ),
        ({"purpose": "line_notifications", "desk_code": "houterasu"}, 422, "referral_or_desk_not_allowed"),
        ({"purpose": "desk_sharing", "desk_code": "police_110"}, 404, "consent_not_found"),
    ):
        assert_problem(
            await client.post(f"{MINE}/withdrawals", headers=owner.headers, json=body), status, code
        )


async def test_another_person_can_neither_read_nor_withdraw_my_consents(client, people) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = await people.create(), await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    rid = await referral(client, staff, c["id"])
    await client.post(f"/v1/consultations/{c['id']}/referrals/{rid}/consent", headers=owner.headers)

    assert (await client.get(MINE, headers=stranger.headers)).json()["items"] == []
    theirs = await client.post(
        f"{MINE}/withdrawals", headers=stranger.headers, json={"purpose": "desk_sharing", "referral_id": rid}
    )
    assert_problem(theirs, 404, "consent_not_found")
    by_desk = await client.post(
        f"{MINE}/withdrawals",
        headers=stranger.headers,
        json={"purpose": "desk_sharing", "desk_code": "houterasu"},
    )
    assert_problem(by_desk, 404, "consent_not_found")
    # Staff have no consents of their own to withdraw and cannot withdraw the consulter's.
    assert_problem(
        await client.post(
            f"{MINE}/withdrawals", headers=staff.headers, json={"purpose": "desk_sharing", "referral_id": rid}
        ),
        403,
        "role_not_allowed",
    )
    items = (await client.get(MINE, headers=owner.headers)).json()["items"]
    assert [i["action"] for i in items if i["purpose"] == "desk_sharing"] == ["granted"]
    assert (
        await client.post(f"/v1/consultations/{c['id']}/referrals/{rid}/make", headers=staff.headers)
    ).status_code == 200


async def test_research_is_opt_in_and_can_be_withdrawn(client, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    assert_problem(
        await client.post(f"{MINE}/withdrawals", headers=person.headers, json={"purpose": "research"}),
        409,
        "consent_not_active",
    )
    given = await client.post(MINE, headers=person.headers, json={"purpose": "research"})
    assert given.status_code == 201 and given.json()["purpose_label_ja"] == "統計・研究への利用の同意"
    assert_problem(
        await client.post(MINE, headers=person.headers, json={"purpose": "research"}),
        409,
        "consent_already_given",
    )
    assert_problem(await client.post(MINE, headers=person.headers, json={"purpose": "terms"}), 422)
    back = await client.post(f"{MINE}/withdrawals", headers=person.headers, json={"purpose": "research"})
    assert back.status_code == 201
    items = (await client.get(MINE, headers=person.headers)).json()["items"]
    assert [(i["action"], i["in_force"]) for i in items] == [("withdrawn", False), ("granted", False)]


@pytest.mark.commits  # the LINE app runs on a container of its own (tests/api/test_line.py)
async def test_withdrawn_line_notifications_queue_no_push(
    line_client, line_container, fake_line, people, client
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    user = line_user_id()
    await link_account(line_client, line_container, fake_line, person, user)
    consultant = await people.create(Role.consultant)

    withdrawn = await client.post(
        f"{MINE}/withdrawals", headers=person.headers, json={"purpose": "line_notifications"}
    )
    assert (
        withdrawn.status_code == 201 and withdrawn.json()["purpose_label_ja"] == "LINE でのお知らせの受け取り"
    )
    fake_line.reset()
    first = await open_consultation(client, person)
    await take(client, consultant, first["id"])
    await answer(client, consultant, first["id"], people=people)
    await line_container.worker.run_once()
    assert fake_line.of("push") == []

    # Given again: the next answer is announced on LINE.
    assert (
        await client.post(MINE, headers=person.headers, json={"purpose": "line_notifications"})
    ).status_code == 201
    second = await open_consultation(client, person)
    await take(client, consultant, second["id"])
    await answer(client, consultant, second["id"], people=people)
    await line_container.worker.run_once()
    [push] = fake_line.of("push")
    assert push.body["to"] == user and second["id"] in push.texts[0]


async def test_a_retried_grant_with_the_same_key_records_once(client, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    headers = {**person.headers, "Idempotency-Key": "consent-retry-0001"}
    first = await client.post(MINE, headers=headers, json={"purpose": "research"})
    again = await client.post(MINE, headers=headers, json={"purpose": "research"})
    assert (first.status_code, again.status_code) == (201, 201) and again.json() == first.json()
    research = [
        i
        for i in (await client.get(MINE, headers=person.headers)).json()["items"]
        if i["purpose"] == "research"
    ]
    assert len(research) == 1


@pytest.mark.commits  # the first grant holds its transaction open on a connection of its own
async def test_a_grant_under_way_makes_a_second_one_wait_and_refuse(client, people, container) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import uuid

    from domain.consents import ConsentAction, ConsentRecord, Purpose, Source
    from infra.db.consents import SqlConsents

    person = await people.create()
    async with container.sessions() as db:
        ledger = SqlConsents(db)
        await ledger.lock(person.id)
        await ledger.add(
            ConsentRecord(
                uuid.uuid4(),
                person.id,
                Purpose.research,
                ConsentAction.granted,
                Source.me,
                container.clock.now(),
            )
        )
        second = asyncio.create_task(client.post(MINE, headers=person.headers, json={"purpose": "research"}))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting on the ledger's lock, not deciding on the ledger as it was
        await db.commit()
    assert_problem(await second, 409, "consent_already_given")
    items = (await client.get(MINE, headers=person.headers)).json()["items"]
    assert [i["action"] for i in items if i["purpose"] == "research"] == ["granted"]


@pytest.mark.commits  # the withdrawal holds its transaction open on a connection of its own
async def test_a_referral_is_never_made_after_a_desk_withdrawal_committed(client, people, container) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import uuid

    from domain.consents import ConsentAction, ConsentRecord, Purpose, Source
    from infra.db.consents import SqlConsents

    owner, staff = await people.create(), await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    await take(client, staff, c["id"])
    base = f"/v1/consultations/{c['id']}/referrals"
    rid = await referral(client, staff, c["id"])
    assert (await client.post(f"{base}/{rid}/consent", headers=owner.headers)).status_code == 200
    # The consulter's withdrawal of the desk is under way (recorded, not yet committed) when staff make the
    # referral: the making waits for it and then sees it, instead of deciding on the ledger as it was.
    async with container.sessions() as db:
        ledger = SqlConsents(db)
        await ledger.lock(owner.id)
        await ledger.add(
            ConsentRecord(
                uuid.uuid4(),
                owner.id,
                Purpose.desk_sharing,
                ConsentAction.withdrawn,
                Source.me,
                container.clock.now(),
                desk_code="houterasu",
            )
        )
        making = asyncio.create_task(client.post(f"{base}/{rid}/make", headers=staff.headers))
        await asyncio.sleep(0.5)
        assert not making.done()  # waiting on the ledger's lock
        await db.commit()
    assert_problem(await making, 409, "consent_withdrawn")
    state = {r["id"]: r["state"] for r in (await client.get(base, headers=owner.headers)).json()["items"]}
    assert state[rid] == "consented"


@pytest.mark.commits  # the LINE app runs on a container of its own (tests/api/test_line.py)
async def test_a_push_queued_before_a_line_withdrawal_is_not_sent_after_it(
    line_client, line_container, fake_line, people, client
) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables_line import LineDeliveryRow

    person = await people.create(Role.consulter)
    await link_account(line_client, line_container, fake_line, person, line_user_id())
    consultant = await people.create(Role.consultant)
    c = await open_consultation(client, person)
    await take(client, consultant, c["id"])
    fake_line.reset()
    fake_line.fail("push", 500)  # the answer's notice is queued, its first try fails: it waits for a retry
    await answer(client, consultant, c["id"], people=people)
    await line_container.worker.run_once()
    assert [p.status for p in fake_line.of("push")] == [500]
    withdrawn = await client.post(
        f"{MINE}/withdrawals", headers=person.headers, json={"purpose": "line_notifications"}
    )
    assert withdrawn.status_code == 201
    fake_line.reset()
    await line_container.worker.run_once()
    assert fake_line.of("push") == []  # not sent after the withdrawal, though queued before it
    async with line_container.sessions() as db:
        statuses = (
            (
                await db.execute(select(LineDeliveryRow.status).where(LineDeliveryRow.user_id == person.id))  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
    assert statuses == ["skipped"]
