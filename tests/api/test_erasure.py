"""Issue 17 §3: a person asks to erase their account (step-up required), may cancel during the grace period; then
the worker shreds their consultations except those under a legal hold, and anonymises the account."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import or_, select

from domain.actors import Role
from domain.erasure import GRACE_DAYS
from infra.db.tables import (
    AuthSessionRow,
    CaseKeyRow,
    ConsultationRow,
    EmailTokenRow,
    EvidenceRow,
    IdempotencyRow,
    OutboxRow,
    RefreshTokenRow,
    UserRow,
)
from infra.db.tables_custody import CustodyHeadRow, CustodyLinkRow
from infra.db.tables_line import LineDeliveryRow, LineLinkNonceRow, LineUserRow
from infra.db.tables_quality import AuditEventRow
from tests.api import test_line
from tests.api.consultation_helpers import answer, intake, open_consultation, take
from tests.api.test_evidence import png
from tests.api.test_retention import HOLD_REASON, NARRATIVE, hold_url, links
from tests.conftest import PASSWORD, assert_problem

URL = "/v1/me/erasure"


async def signs_in(client, email: str) -> bool:  # type: ignore[no-untyped-def]
    answer = await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    return answer.status_code == 200  # type: ignore[no-any-return]


async def test_request_cancel_and_request_again(client, people, clock, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    mailbox.clear()
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
    await container.worker.run_once()
    assert len(mailbox.to(person.email)) == 1  # the confirmation
    assert (await client.delete(URL, headers=person.headers)).status_code == 204
    assert (await client.get(URL, headers=person.headers)).json()["status"] == "cancelled"
    # The person is told of the cancellation too (someone else holding their session may have cancelled it).
    await container.worker.run_once()
    [_, cancelled] = mailbox.to(person.email)
    text = str(cancelled["Subject"]) + mailbox.body(cancelled)
    assert "取り消しました" in text and body["id"] not in text and "http" not in text
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
    assert user is not None and user.email != person.email and user.email.endswith(".invalid")
    assert (user.password_hash, user.is_active, user.display_name) == (None, False, None)
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


async def test_a_held_case_of_an_erased_person_is_withdrawn_and_shredded_when_the_hold_is_lifted(
    client, people, clock, container
) -> None:  # type: ignore[no-untyped-def]
    """Security review: the held case stayed open (in the staff queue, its owner anonymised) and was never
    deleted after the lift, though the answer and the completion mail promise "until the hold is lifted"."""
    clock.set(clock.now())
    person = await people.create()
    supervisor = await people.create(Role.supervisor)
    held, _ = await _with_a_file(client, person)
    stored = await _stored_keys(container, held["id"])
    placed = await client.put(hold_url(held["id"]), headers=supervisor.headers, json={"reason": HOLD_REASON})
    assert placed.status_code == 201, placed.text
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    clock.advance(timedelta(days=GRACE_DAYS, minutes=1))
    report = await container.erasure.apply()
    assert stored and all([await container.blobs.exists(k) for k in stored])  # kept with the case
    assert (report.completed, report.consultations_shredded, report.consultations_kept) == (1, 0, 1)
    supervisor = await people.sign_in(supervisor.id, supervisor.email, supervisor.role)
    kept = await client.get(f"/v1/consultations/{held['id']}", headers=supervisor.headers)
    assert kept.status_code == 200 and NARRATIVE in kept.text  # readable by staff while the hold lasts
    assert kept.json()["status"] == "withdrawn"  # nobody works on it for the person any more
    queue = await client.get("/v1/consultations", headers=supervisor.headers, params={"status": "submitted"})
    assert queue.status_code == 200 and held["id"] not in queue.text
    assert (await client.delete(hold_url(held["id"]), headers=supervisor.headers)).status_code == 204
    # Shredded with the lift, no pass waited for.
    async with container.sessions() as db:
        row = await db.get(ConsultationRow, uuid.UUID(held["id"]))
        key = await db.get(CaseKeyRow, uuid.UUID(held["id"]))
    assert row is not None and key is not None
    assert (key.wrapped, row.narrative, row.title) == (None, "", "")
    assert not any([await container.blobs.exists(k) for k in stored])
    assert_problem(
        await client.get(f"/v1/consultations/{held['id']}", headers=supervisor.headers),
        404,
        "consultation_not_found",
    )
    assert held["id"] not in (await client.get("/v1/consultations", headers=supervisor.headers)).text
    assert (await links(container, held["id"]))[-2:] == ["legal_hold.lifted", "consultation.shredded"]
    assert (await container.custody.verify()).breaks == []


async def test_a_held_case_that_had_ended_keeps_its_ending_when_its_person_is_erased(
    client, people, clock, container
) -> None:  # type: ignore[no-untyped-def]
    """Only an open case is withdrawn by the erasure (the rule of the person's own withdrawal): one the person had
    withdrawn keeps its one transition and the time it ended."""
    clock.set(clock.now())
    person = await people.create()
    supervisor = await people.create(Role.supervisor)
    c = await open_consultation(client, person, narrative=NARRATIVE)
    ended = await client.post(f"/v1/consultations/{c['id']}/withdraw", headers=person.headers)
    assert ended.status_code == 200, ended.text
    placed = await client.put(hold_url(c["id"]), headers=supervisor.headers, json={"reason": HOLD_REASON})
    assert placed.status_code == 201, placed.text
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    clock.advance(timedelta(days=GRACE_DAYS, minutes=1))
    report = await container.erasure.apply()
    assert (report.completed, report.consultations_kept) == (1, 1)
    supervisor = await people.sign_in(supervisor.id, supervisor.email, supervisor.role)
    kept = await client.get(f"/v1/consultations/{c['id']}", headers=supervisor.headers)
    assert kept.status_code == 200 and kept.json()["status"] == "withdrawn"
    assert (kept.json()["version"], kept.json()["updated_at"]) == (
        ended.json()["version"],
        ended.json()["updated_at"],
    )
    history = await client.get(f"/v1/consultations/{c['id']}/history", headers=supervisor.headers)
    assert [t["to_status"] for t in history.json()["items"]].count("withdrawn") == 1


async def test_lifting_a_hold_of_a_person_not_erased_shreds_nothing(client, people, container) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    supervisor = await people.create(Role.supervisor)
    c = await open_consultation(client, person, narrative=NARRATIVE)
    await client.put(hold_url(c["id"]), headers=supervisor.headers, json={"reason": HOLD_REASON})
    assert (await client.delete(hold_url(c["id"]), headers=supervisor.headers)).status_code == 204
    assert NARRATIVE in (await client.get(f"/v1/consultations/{c['id']}", headers=person.headers)).text


# The LINE module's fixtures (a fake Messaging API and a container that talks to it), reused here.
fake_line, line_container, line_app, line_client = (
    test_line.fake_line,
    test_line.line_container,
    test_line.line_app,
    test_line.line_client,
)


def _text(rows: list[Any]) -> str:
    return json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, default=str)


async def _traces(container, person_id: uuid.UUID, line_user: str) -> dict[str, list[Any]]:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:

        async def rows(query) -> list[Any]:  # type: ignore[no-untyped-def]
            return list((await db.execute(query)).scalars())

        sessions = select(AuthSessionRow.id).where(AuthSessionRow.user_id == person_id)  # type: ignore[arg-type]
        return {
            "line_user": await rows(
                select(LineUserRow).where(
                    or_(LineUserRow.user_id == person_id, LineUserRow.line_user_id == line_user)  # type: ignore[arg-type]
                )
            ),
            "line_delivery": await rows(
                select(LineDeliveryRow).where(
                    or_(LineDeliveryRow.user_id == person_id, LineDeliveryRow.line_user_id == line_user)  # type: ignore[arg-type]
                )
            ),
            "line_link_nonce": await rows(
                select(LineLinkNonceRow).where(LineLinkNonceRow.user_id == person_id)
            ),  # type: ignore[arg-type]
            "refresh_token": await rows(
                select(RefreshTokenRow).where(RefreshTokenRow.session_id.in_(sessions))
            ),  # type: ignore[union-attr,attr-defined]
            "email_token": await rows(select(EmailTokenRow).where(EmailTokenRow.user_id == person_id)),  # type: ignore[arg-type]
            "idempotency_key": await rows(
                select(IdempotencyRow).where(IdempotencyRow.principal_id == person_id)
            ),  # type: ignore[arg-type]
        }


async def _hash_holders(container) -> str:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        found: list[Any] = []
        for table in (EvidenceRow, AuditEventRow, CustodyLinkRow, CustodyHeadRow):
            found += list((await db.execute(select(table))).scalars())
    return _text(found)


@pytest.mark.commits  # the LINE app runs on a container of its own (tests/api/test_line.py)
async def test_erasure_leaves_nothing_that_ties_the_account_to_its_line_id_tokens_files_or_file_hashes(
    line_client, line_container, fake_line, people, client, clock, container
) -> None:  # type: ignore[no-untyped-def]
    """Security review: the LINE user row and the deliveries kept the link to the account, the account's own
    idempotency rows survived, and the files' SHA-256 stayed in the evidence rows and the trail."""
    clock.set(clock.now())
    person = await people.create(Role.consulter)
    user = test_line.line_user_id()
    await test_line.link_account(line_client, line_container, fake_line, person, user)
    consultant = await people.create(Role.consultant)
    c, made = await _with_a_file(client, person)
    base = f"/v1/consultations/{c['id']}/evidence"
    file = made["file"]
    await take(client, consultant, c["id"])
    assert (await client.get(f"{base}/{made['id']}/file", headers=consultant.headers)).status_code == 200
    fake_line.reset()
    fake_line.fail("push", 500)  # the answer's notice waits in line_delivery for a retry
    await answer(client, consultant, c["id"], people=people)
    await line_container.worker.run_once()
    assert (await client.post("/v1/auth/password-reset", json={"email": person.email})).status_code == 202
    await container.worker.run_once()  # the reset mail, and its token, go out
    granted = await client.post(
        "/v1/me/consents",
        headers={**person.headers, "Idempotency-Key": "erasure-review-0001"},
        json={"purpose": "research"},
    )
    assert granted.status_code == 201, granted.text
    async with container.sessions() as db:
        evidence = (
            await db.execute(select(EvidenceRow).where(EvidenceRow.id == uuid.UUID(made["id"])))
        ).scalar_one()  # type: ignore[arg-type]
        stored = [k for k in (evidence.file_key, evidence.file_original_key) if k]
        db.add(
            LineLinkNonceRow(
                id=uuid.uuid4(),
                digest="ab" * 32,
                user_id=person.id,
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(minutes=10),
            )
        )
        await db.commit()
    before = await _traces(container, person.id, user)
    assert all(before.values()), {k: len(v) for k, v in before.items()}  # each kind of trace is there to go
    assert stored and all([await container.blobs.exists(k) for k in stored])
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    clock.advance(timedelta(days=GRACE_DAYS, minutes=1))
    report = await container.erasure.apply()
    assert (report.completed, report.consultations_shredded, report.files_left) == (1, 1, 0)
    after = await _traces(container, person.id, user)
    assert after == {k: [] for k in before}
    assert not any([await container.blobs.exists(k) for k in stored])
    hashes = [file["sha256"], file["copy_sha256"]]
    assert all(len(h) == 64 for h in hashes)
    holders = await _hash_holders(container)
    assert not [h for h in hashes if h in holders]
    assert (await container.custody.verify()).breaks == []


async def _with_a_file(client, person) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    c = await open_consultation(client, person, narrative=NARRATIVE)
    base = f"/v1/consultations/{c['id']}/evidence"
    made = (await client.post(base, headers=person.headers, json={})).json()
    uploaded = await client.put(
        f"{base}/{made['id']}/file", headers=person.headers, files={"file": ("証拠.png", png(), "image/png")}
    )
    assert uploaded.status_code == 200, uploaded.text
    return c, uploaded.json()


async def _stored_keys(container, consultation_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        rows = await db.execute(
            select(EvidenceRow.file_key, EvidenceRow.file_original_key).where(  # type: ignore[call-overload]
                EvidenceRow.consultation_id == uuid.UUID(consultation_id)
            )
        )
    return [k for pair in rows for k in pair if k]


async def test_a_file_the_store_refused_to_delete_is_reported_and_deleted_on_a_later_pass(
    client, people, clock, container, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Security review: a file the store refused during erasure was reported nowhere and never retried."""
    from infra.cli import describe_pass
    from infra.db.tables_erasure import PendingFileDeleteRow

    clock.set(clock.now())
    person = await people.create()
    c, _ = await _with_a_file(client, person)
    stored = await _stored_keys(container, c["id"])
    assert stored and all([await container.blobs.exists(k) for k in stored])
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    clock.advance(timedelta(days=GRACE_DAYS, minutes=1))

    async def refuse(key: str) -> None:
        raise OSError("the store is read-only today")

    monkeypatch.setattr(container.erasure.files, "delete", refuse)
    await container.worker.run_once()
    done = container.worker.last_pass
    assert (done.erasures_completed, done.erasure_shredded, done.files_left) == (1, 1, len(stored))
    assert f"{len(stored)} files of shredded consultations the store refused to delete" in describe_pass(done)
    assert all([await container.blobs.exists(k) for k in stored])
    monkeypatch.undo()
    clock.advance(timedelta(minutes=1))
    await container.worker.run_once()  # no erasure due now: the refused files are asked for again
    assert container.worker.last_pass.files_left == 0
    assert not any([await container.blobs.exists(k) for k in stored])
    async with container.sessions() as db:
        assert list((await db.execute(select(PendingFileDeleteRow))).scalars()) == []


async def test_a_consultation_made_while_the_account_is_erased_does_not_survive_it(
    client, people, clock, container, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Security review: intake did not take the account's lock, so a case validated just before the erasure
    committed was written after it had listed the person's cases, and outlived the account readable."""
    clock.set(clock.now())
    person = await people.create()
    assert (await client.post(URL, headers=person.headers)).status_code == 202
    clock.advance(timedelta(days=GRACE_DAYS, minutes=1))
    person = await people.sign_in(person.id, person.email, person.role)
    opening = container.consultations.open

    async def erased_meanwhile(actor, intake):  # type: ignore[no-untyped-def]
        assert (await container.erasure.apply()).completed == 1  # the token was checked; now the account goes
        return await opening(actor, intake)

    monkeypatch.setattr(container.consultations, "open", erased_meanwhile)
    made = await client.post("/v1/consultations", headers=person.headers, json=intake(narrative=NARRATIVE))
    assert_problem(made, 401, "invalid_token")
    async with container.sessions() as db:
        owned = list(
            (await db.execute(select(ConsultationRow).where(ConsultationRow.owner_id == person.id))).scalars()
        )  # type: ignore[arg-type]
    assert owned == []


@pytest.mark.commits  # the erasure holds its transaction open on a connection of its own
async def test_an_intake_waits_for_an_erasure_under_way_and_is_refused_after_it(
    client, people, container
) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from infra.db.erasure import SqlErasure

    person = await people.create()
    async with container.sessions() as db:
        erasure = SqlErasure(db)
        await erasure.lock_user(person.id)
        assert await erasure.consultations_of(person.id) == []  # what erasure shreds was listed: nothing yet
        await erasure.anonymise_account(person.id, container.clock.now())
        making = asyncio.create_task(
            client.post("/v1/consultations", headers=person.headers, json=intake(narrative=NARRATIVE))
        )
        await asyncio.sleep(0.5)
        assert not making.done()  # waiting on the account's lock
        await db.commit()
    assert_problem(await making, 401, "invalid_token")
    async with container.sessions() as db:
        owned = list(
            (await db.execute(select(ConsultationRow).where(ConsultationRow.owner_id == person.id))).scalars()  # type: ignore[arg-type]
        )
    assert owned == []
