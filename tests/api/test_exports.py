"""The person's export (issue 17 §3, APPI right of access): asked for with a fresh proof of identity, prepared
by the worker as a sealed ZIP, announced by a mail without content, downloadable once for a limited time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import uuid
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from domain.actors import Role
from domain.exports import EXPORT_READY_MAIL, ExportState, PersonalExport
from infra.container import build_container
from infra.crypto import derived_kek, kek_id
from infra.db.case_keys import missing_keks, rewrap_all
from infra.db.exports import SqlExports
from infra.db.tables import OutboxRow
from infra.db.tables_exports import PersonalExportRow
from infra.db.tables_quality import AuditEventRow
from infra.exports import SealedExports
from tests.api.consultation_helpers import answer, etag, open_consultation, take
from tests.api.test_evidence import jpeg_with_gps, png
from tests.api.test_step_up import STALE, assert_step_up_required
from tests.conftest import PASSWORD, assert_problem

NEW_KEK = base64.b64encode(b"e" * 32).decode()
NARRATIVE = (
    "匿名掲示板に、私の本名と勤務先が「前科者」という書き込みと一緒に晒されています。消してほしいです。"
)
TITLE = "掲示板での実名の晒し"
MESSAGE = "書き込みは今朝も増えていました。スクリーンショットを追加します。"


async def owner_case(client, people) -> tuple[Any, str, list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner, title=TITLE, narrative=NARRATIVE)
    base = f"/v1/consultations/{c['id']}/evidence"
    items = []
    for body, upload in (
        (
            {"url": "https://bakusai.com/thr_res/acode=3/tid=1/", "excerpt": "〇〇は前科者"},
            ("a.jpg", jpeg_with_gps(), "image/jpeg"),
        ),
        ({"url": "https://x.com/a/status/9"}, ("b.png", png(), "image/png")),
    ):
        made = await client.post(
            base, headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())}, json=body
        )
        assert made.status_code == 201, made.text
        put = await client.put(
            f"{base}/{made.json()['id']}/file", headers=owner.headers, files={"file": upload}
        )
        assert put.status_code == 200, put.text
        items.append(put.json())
    posted = await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"body": MESSAGE},
    )
    assert posted.status_code == 201, posted.text
    return owner, c["id"], items


async def ask(client, person) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post("/v1/me/exports", headers=person.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/me/exports/{body['id']}"
    assert body["status"] == "pending"
    return body  # type: ignore[no-any-return]


async def status_of(client, person, export_id: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/me/exports/{export_id}", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()["status"]  # type: ignore[no-any-return]


async def row_of(container, export_id: str) -> PersonalExportRow:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        row = (
            await db.execute(select(PersonalExportRow).where(PersonalExportRow.id == uuid.UUID(export_id)))
        ).scalar_one()
        return row  # type: ignore[no-any-return]


async def test_the_whole_export_through_the_worker(client, people, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    owner, cid, items = await owner_case(client, people)
    consultant = await people.create(Role.consultant)
    await take(client, consultant, cid)
    await answer(
        client, consultant, cid, "削除依頼の方法をご案内します。まず掲示板の削除フォームから。", people=people
    )
    await client.post("/v1/auth/step-up", headers=owner.headers, json={"password": PASSWORD})
    await container.worker.run_once()  # the answer's own mail goes first
    mailbox.clear()

    export = await ask(client, owner)
    assert await status_of(client, owner, export["id"]) == "pending"
    assert_problem(
        await client.get(f"/v1/me/exports/{export['id']}/download", headers=owner.headers),
        409,
        "export_not_ready",
    )
    await container.worker.run_once()
    assert container.worker.last_pass.exports_prepared == 1
    ready = (await client.get(f"/v1/me/exports/{export['id']}", headers=owner.headers)).json()
    assert ready["status"] == "ready" and ready["size"] > 0 and ready["expires_at"]

    # The mail says only that it is ready: nothing of the case, not even the export's id.
    mails = mailbox.to(owner.email)
    assert len(mails) == 1
    text = str(mails[0]["Subject"]) + mailbox.body(mails[0])
    assert "書き出し" in text and "/login" in text
    for secret in (NARRATIVE, TITLE, MESSAGE, export["id"], cid, "前科者"):
        assert secret not in text

    # At rest: sealed under a random name, not a ZIP anyone can read.
    row = await row_of(container, export["id"])
    assert row.blob_key and owner.email not in row.blob_key and str(owner.id) not in row.blob_key
    at_rest = await container.blobs.get(row.blob_key)
    assert not at_rest.startswith(b"PK") and NARRATIVE.encode() not in at_rest

    download = await client.get(f"/v1/me/exports/{export['id']}/download", headers=owner.headers)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/zip"
    assert download.headers["cache-control"] == "no-store"
    z = zipfile.ZipFile(io.BytesIO(download.content))
    raw = z.read("export.json")
    assert NARRATIVE.encode() in raw  # Japanese as written, not \\u-escaped
    data = json.loads(raw.decode("utf-8"))
    assert data["account"]["email"] == owner.email
    assert data["sign_ins"] and data["sign_ins"][0]["client"]
    assert {c["purpose"] for c in data["consents"]} >= {"terms", "sensitive_data"}
    (case,) = data["consultations"]
    assert case["narrative"] == NARRATIVE and case["title"] == TITLE
    bodies = [m["body"] for m in case["messages"]]
    assert MESSAGE in bodies
    assert any("削除依頼の方法" in b for b in bodies)  # the published answer
    assert {m["kind"] for m in case["messages"]} <= {"consulter", "answer"}  # never an internal note
    assert len(case["evidence"]) == 2
    for item in case["evidence"]:
        f = item["file"]
        assert f["path"] and f["withheld"] is None
        assert hashlib.sha256(z.read(f["path"])).hexdigest() == f["sha256"]
        assert hashlib.sha256(z.read(f["original_path"])).hexdigest() == f["original_sha256"]
        assert "storage_key" not in json.dumps(item)
    assert {i["file"]["sha256"] for i in case["evidence"]} == {i["file"]["copy_sha256"] for i in items}

    # Once: then 410, and the stored copy is gone.
    assert_problem(
        await client.get(f"/v1/me/exports/{export['id']}/download", headers=owner.headers), 410, "export_gone"
    )
    assert await status_of(client, owner, export["id"]) == "downloaded"
    assert not await container.blobs.exists(row.blob_key)
    await container.worker.run_once()  # the sweep: the row forgets the name
    assert container.worker.last_pass.exports_swept == 1
    assert (await row_of(container, export["id"])).blob_key is None
    # A new one may be asked for now.
    await ask(client, owner)


async def test_an_export_not_downloaded_in_time_expires_and_is_deleted(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    export = await ask(client, person)
    await container.worker.run_once()
    row = await row_of(container, export["id"])
    assert row.blob_key and await container.blobs.exists(row.blob_key)
    clock.advance(timedelta(days=7, seconds=1))
    person = await people.sign_in(person.id, person.email, person.role)  # a week on: signed in again
    assert await status_of(client, person, export["id"]) == "expired"
    assert_problem(
        await client.get(f"/v1/me/exports/{export['id']}/download", headers=person.headers),
        410,
        "export_gone",
    )
    await container.worker.run_once()
    assert container.worker.last_pass.exports_swept == 1
    assert not await container.blobs.exists(row.blob_key)
    assert await status_of(client, person, export["id"]) == "expired"


async def test_another_persons_export_is_not_found(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    other = await people.create()
    export = await ask(client, owner)
    await container.worker.run_once()
    for path in (f"/v1/me/exports/{export['id']}", f"/v1/me/exports/{export['id']}/download"):
        assert_problem(await client.get(path, headers=other.headers), 404, "export_not_found")
        assert_problem(
            await client.get(path.replace(export["id"], str(uuid.uuid4())), headers=owner.headers), 404
        )
    assert await status_of(client, owner, export["id"]) == "ready"  # the attempts consumed nothing


async def test_a_stale_proof_must_step_up_first(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(clock.now())
    person = await people.create()
    clock.advance(STALE)
    assert_step_up_required(await client.post("/v1/me/exports", headers=person.headers))
    proof = await client.post("/v1/auth/step-up", headers=person.headers, json={"password": PASSWORD})
    assert proof.status_code == 200
    export = await ask(client, person)
    clock.advance(STALE)
    assert_step_up_required(
        await client.get(f"/v1/me/exports/{export['id']}/download", headers=person.headers)
    )


async def test_one_open_export_at_a_time(client, people) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    await ask(client, person)
    refused = assert_problem(
        await client.post("/v1/me/exports", headers=person.headers), 409, "export_already_open"
    )
    assert refused["limit"] == 1


async def test_sealed_pictures_are_given_as_hashes_only(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner, cid, items = await owner_case(client, people)
    consultant = await people.create(Role.consultant)
    await take(client, consultant, cid)
    changed = await client.patch(
        f"/v1/consultations/{cid}",
        headers={**consultant.headers, "If-Match": await etag(client, consultant, cid)},
        json={"categories": ["RIGHTS.PRIVATE_SEXUAL"]},
    )
    assert changed.status_code == 200, changed.text
    export = await ask(client, owner)
    await container.worker.run_once()
    download = await client.get(f"/v1/me/exports/{export['id']}/download", headers=owner.headers)
    z = zipfile.ZipFile(io.BytesIO(download.content))
    assert z.namelist() == ["export.json"]
    (case,) = json.loads(z.read("export.json"))["consultations"]
    for item in case["evidence"]:
        assert item["file"]["path"] is None and item["file"]["original_path"] is None
        assert item["file"]["withheld"] and item["file"]["sha256"]


async def test_staff_get_their_account_and_sign_ins(client, people, container) -> None:  # type: ignore[no-untyped-def]
    staff = await people.create(Role.consultant)
    export = await ask(client, staff)
    await container.worker.run_once()
    download = await client.get(f"/v1/me/exports/{export['id']}/download", headers=staff.headers)
    data = json.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("export.json"))
    assert data["account"]["role"] == "consultant" and data["consultations"] == [] and data["sign_ins"]


async def test_the_ready_mail_speaks_the_persons_language(client, people, container, mailbox) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    changed = await client.patch("/v1/me", headers=person.headers, json={"locale": "en"})
    assert changed.status_code == 200, changed.text
    mailbox.clear()
    await ask(client, person)
    await container.worker.run_once()
    (mail,) = mailbox.to(person.email)
    assert "export is ready" in str(mail["Subject"])
    assert "/login" in mailbox.body(mail)


# -- a copy that cannot be read answers 410 once and for all, not 500 on every retry ---------------------------


@pytest.mark.parametrize("damage", ["deleted", "altered"])
async def test_a_ready_export_whose_copy_cannot_be_read_is_gone_and_failed(
    client, people, container, damage: str
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    export = await ask(client, person)
    await container.worker.run_once()
    row = await row_of(container, export["id"])
    assert row.blob_key
    if damage == "deleted":  # e.g. a concurrent download won and deleted it
        await container.blobs.delete(row.blob_key)
    else:
        sealed = bytearray(await container.blobs.get(row.blob_key))
        sealed[-1] ^= 1
        await container.blobs.delete(row.blob_key)  # the store never writes over a name
        await container.blobs.put(row.blob_key, bytes(sealed))
    url = f"/v1/me/exports/{export['id']}/download"
    refused = assert_problem(await client.get(url, headers=person.headers), 410, "export_gone")
    assert refused["state"] == "failed"
    assert await status_of(client, person, export["id"]) == "failed"  # no longer ready: a retry is 410 too
    assert_problem(await client.get(url, headers=person.headers), 410, "export_gone")
    assert not await container.blobs.exists(row.blob_key)
    async with container.sessions() as db:
        actions = set(
            (
                await db.execute(select(AuditEventRow.action).where(AuditEventRow.object_id == export["id"]))
            ).scalars()
        )
    assert "export.unreadable" in actions and "export.downloaded" not in actions
    await ask(client, person)  # a new one may be asked for


# -- two requests at once open one export ------------------------------------------------------------------------


@pytest.mark.commits  # the first request holds its transaction open on a connection of its own
async def test_two_requests_at_once_open_only_one_export(client, people, container) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    # A first request has counted and added its export but not committed when the second one comes: the second
    # waits for it on the account row and then counts it.
    async with container.sessions() as db:
        exports = SqlExports(db)
        await exports.lock_user(person.id)
        await exports.add(PersonalExport(uuid.uuid4(), person.id, ExportState.pending, container.clock.now()))
        await db.flush()
        second = asyncio.create_task(client.post("/v1/me/exports", headers=person.headers))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting on the account row's lock
        await db.commit()
    assert_problem(await second, 409, "export_already_open")
    # And two requests side by side: exactly one is accepted.
    other = await people.create()
    both = await asyncio.gather(*(client.post("/v1/me/exports", headers=other.headers) for _ in range(2)))
    assert sorted(r.status_code for r in both) == [202, 409]
    async with container.sessions() as db:
        count = (
            await db.execute(
                select(func.count())
                .select_from(PersonalExportRow)
                .where(PersonalExportRow.user_id.in_([person.id, other.id]))  # type: ignore[attr-defined]
            )
        ).scalar_one()
    assert count == 2


# -- the worker and the sweep write only over the state they read -----------------------------------------------


async def test_the_worker_keeps_an_expiry_that_came_after_its_last_look(
    client, people, container, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """An erasure expires the pending export after the worker last looked at the row and before it records it
    ready: the export stays expired, its freshly stored copy is deleted and no mail says it is ready."""
    from sqlalchemy.ext.asyncio import AsyncSession

    person = await people.create()
    export = await ask(client, person)
    export_id = uuid.UUID(export["id"])
    put, get, execute = SealedExports.put, AsyncSession.get, AsyncSession.execute
    stored: list[str] = []
    erased: list[bool] = []

    async def erase() -> None:
        erased.append(True)
        async with container.sessions() as db:  # what the erasure pass does to an open export
            await db.execute(
                update(PersonalExportRow)
                .where(PersonalExportRow.id == export_id)  # type: ignore[arg-type]
                .values(state="expired", expires_at=container.clock.now())
            )
            await db.commit()

    async def storing(self, eid, data):  # type: ignore[no-untyped-def]
        archive = await put(self, eid, data)
        stored.append(archive.blob_key)
        return archive

    async def getting(self, entity, ident, **kw):  # type: ignore[no-untyped-def]
        found = await get(self, entity, ident, **kw)
        if entity is PersonalExportRow and stored and not erased:
            await erase()  # right after the worker's last read of the row
        return found

    async def executing(self, statement, *a, **kw):  # type: ignore[no-untyped-def]
        table = getattr(statement, "table", None)
        if getattr(table, "name", None) == "personal_export" and stored and not erased:
            await erase()  # right before the worker's write
        return await execute(self, statement, *a, **kw)

    monkeypatch.setattr(SealedExports, "put", storing)
    monkeypatch.setattr(AsyncSession, "get", getting)
    monkeypatch.setattr(AsyncSession, "execute", executing)
    await container.worker.run_once()
    monkeypatch.undo()
    assert erased and stored
    row = await row_of(container, export["id"])
    assert row.state == "expired" and row.blob_key is None and row.wrapped_key is None
    assert not await container.blobs.exists(stored[0])
    async with container.sessions() as db:
        mails = (
            await db.execute(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == EXPORT_READY_MAIL)
            )  # type: ignore[arg-type]
        ).scalar_one()
    assert mails == 0
    assert await status_of(client, person, export["id"]) == "expired"


async def test_the_sweep_keeps_a_download_that_came_after_its_read(
    client, people, container, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The sweep reads a ready export past its time; before it writes, a download that began a moment before the
    expiry commits: the export stays downloaded (the sweep still deletes the copy, which nothing needs now)."""
    clock.set(clock.now())
    person = await people.create()
    export = await ask(client, person)
    await container.worker.run_once()
    row = await row_of(container, export["id"])
    clock.advance(timedelta(days=7, seconds=1))
    to_sweep = SqlExports.to_sweep

    async def reading_then_downloaded(self, now, limit):  # type: ignore[no-untyped-def]
        due = await to_sweep(self, now, limit)
        async with container.sessions() as db:
            (found,) = [e for e in due if str(e.id) == export["id"]]
            found.downloaded_at = now - timedelta(seconds=2)
            assert await SqlExports(db).mark_downloaded(found)
            await db.commit()
        return due

    monkeypatch.setattr(SqlExports, "to_sweep", reading_then_downloaded)
    assert await container.exports.sweep() == 1
    monkeypatch.undo()
    after = await row_of(container, export["id"])
    assert after.state == "downloaded" and after.downloaded_at is not None
    assert after.blob_key is None and not await container.blobs.exists(row.blob_key)


# -- export keys take part in KEK rotation and in the readiness check ------------------------------------------


@pytest.mark.commits  # the containers under other KEKs read the rows on connections of their own
async def test_export_keys_are_rotated_and_a_missing_kek_is_reported(
    settings, clock, people, client, container
) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from api.main import create_app

    old_kek = base64.b64encode(derived_kek(settings.signing_key)).decode()
    rotating = build_container(
        settings.model_copy(update={"kek": SecretStr(f"{NEW_KEK},{old_kek}")}), clock=clock
    )
    new = build_container(settings.model_copy(update={"kek": SecretStr(NEW_KEK)}), clock=clock)
    try:
        early, later = await people.create(), await people.create()  # no consultation: only export keys
        ids = {p.id: (await ask(client, p))["id"] for p in (early, later)}
        await container.worker.run_once()
        # Readiness under the new KEK alone: the exports still need the old one.
        async with new.sessions() as db:
            assert await missing_keks(db, new.keys) == [kek_id(derived_kek(settings.signing_key))]
        transport = httpx.ASGITransport(app=create_app(container=new), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert_problem(await http.get("/readyz"), 503, "key_encryption_key_missing")
            # Not rotated yet: the copy does not open under the new KEK alone (410 failed, not 500).
            refused = assert_problem(
                await http.get(f"/v1/me/exports/{ids[early.id]}/download", headers=early.headers),
                410,
                "export_gone",
            )
            assert refused["state"] == "failed"
            rotation = await rewrap_all(rotating.sessions, rotating.keys)
            assert rotation.remaining == 0 and rotation.rewrapped >= 1
            async with new.sessions() as db:
                assert await missing_keks(db, new.keys) == []
            assert (await http.get("/readyz")).json() == {"status": "ready"}
            download = await http.get(f"/v1/me/exports/{ids[later.id]}/download", headers=later.headers)
        assert download.status_code == 200, download.text
        data = json.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("export.json"))
        assert data["account"]["email"] == later.email
    finally:
        for c in (rotating, new):
            await c.close()


# -- the export names no staff member, and holds everything kept about the person --------------------------------

SENDER = {
    "name": "山田花子",
    "address": "東京都千代田区霞が関1-1-1 メゾン霞303号室",
    "contact": "hanako@example.jp",
}


async def download_json(client, person, export_id: str) -> tuple[bytes, dict[str, Any]]:  # type: ignore[no-untyped-def]
    download = await client.get(f"/v1/me/exports/{export_id}/download", headers=person.headers)
    assert download.status_code == 200, download.text
    raw = zipfile.ZipFile(io.BytesIO(download.content)).read("export.json")
    return raw, json.loads(raw.decode("utf-8"))


async def test_the_export_names_no_staff_member_and_holds_letters_requests_and_facts(
    client, people, container
) -> None:  # type: ignore[no-untyped-def]
    from tests.api.test_consents import referral
    from tests.api.test_letters import complete, evidence, letter

    owner = await people.create()
    cid = (await open_consultation(client, owner, title=TITLE, narrative=NARRATIVE))["id"]
    consultant, supervisor = await people.create(Role.consultant), await people.create(Role.supervisor)
    await take(client, consultant, cid)
    await answer(client, consultant, cid, "削除依頼の方法をご案内します。", people=people)
    eid = await evidence(client, owner, cid, 1)
    # The consulter's letter, written and then corrected: both versions are theirs to have.
    made = await letter(client, owner, cid, complete("removal_defamation_privacy", [eid], sender=SENDER))
    changed = await client.post(
        f"/v1/consultations/{cid}/letters/{made['id']}/versions",
        headers=owner.headers,
        json={
            k: v
            for k, v in complete(
                "removal_defamation_privacy", [eid], sender={**SENDER, "contact": "090-1234-5678"}
            ).items()
            if k != "kind"
        },
    )
    assert changed.status_code == 200, changed.text
    # A request the consulter drafts, records as sent, the consultant advises on; a referral staff make.
    made_request = await client.post(
        f"/v1/consultations/{cid}/requests",
        headers=owner.headers,
        json={"kind": "platform_form", "target": {"platform": "x", "service": "x"}, "evidence_ids": [eid]},
    )
    assert made_request.status_code == 201, made_request.text
    rid = made_request.json()["id"]
    sent = await client.post(
        f"/v1/consultations/{cid}/requests/{rid}/status",
        headers=owner.headers,
        json={"status": "sent", "note": "フォームから送信しました"},
    )
    assert sent.status_code == 200, sent.text
    advised = await client.post(
        f"/v1/consultations/{cid}/requests/{rid}/advice",
        headers=consultant.headers,
        json={"note": "7日たっても回答がなければ、法務局への相談も検討しましょう。"},
    )
    assert advised.status_code == 200, advised.text
    await referral(client, consultant, cid)
    facts = await client.put(
        f"/v1/consultations/{cid}/clock-facts",
        headers=owner.headers,
        json={"offender_known_on": "2026-11-25", "damage_known_on": "2026-11-20"},
    )
    assert facts.status_code == 200, facts.text
    # An erasure asked for and cancelled, and an earlier export already downloaded.
    assert (await client.post("/v1/me/erasure", headers=owner.headers)).status_code in (200, 201, 202)
    assert (await client.delete("/v1/me/erasure", headers=owner.headers)).status_code in (200, 204)
    first = await ask(client, owner)
    await container.worker.run_once()
    await download_json(client, owner, first["id"])

    export = await ask(client, owner)
    await container.worker.run_once()
    raw, data = await download_json(client, owner, export["id"])
    text = raw.decode("utf-8")
    for staff in (consultant, supervisor):
        assert str(staff.id) not in text and staff.email not in text
    (case,) = data["consultations"]
    assert {(m["kind"], m["from_staff"]) for m in case["messages"]} == {("answer", True)}
    assert all("author_id" not in m for m in case["messages"])
    (req,) = case["requests"]
    assert req["by_staff"] is False and req["advice"].startswith("7日たっても")
    assert "created_by" not in req and "advice_by" not in req
    assert [(h["to_status"], h["by_staff"]) for h in req["history"]] == [("drafted", False), ("sent", False)]
    assert req["history"][1]["note"] == "フォームから送信しました"
    (ref,) = case["referrals"]
    assert "created_by" not in ref and ref["desk_code"] == "houterasu"
    assert all("created_by" not in e for e in case["evidence"])
    assert case["clock_facts"] == {"offender_known_on": "2026-11-25", "damage_known_on": "2026-11-20"}
    (written,) = case["letters"]
    assert written["id"] == made["id"] and written["by_staff"] is False
    assert [v["number"] for v in written["versions"]] == [1, 2]
    assert written["versions"][0]["sender"] == SENDER
    assert written["versions"][1]["sender"]["contact"] == "090-1234-5678"
    assert written["versions"][0]["items"][0]["evidence_id"] == eid
    assert "山田花子" in written["versions"][0]["items"][0]["excerpt"]
    (erasure,) = data["erasure_requests"]
    assert erasure["cancelled_at"] and erasure["completed_at"] is None
    assert [(e["id"], e["status"]) for e in data["earlier_exports"]] == [(first["id"], "downloaded")]


@pytest.mark.commits  # the two downloads run side by side on connections of their own
async def test_two_downloads_at_once_give_the_zip_once_and_410_once(client, people, container) -> None:  # type: ignore[no-untyped-def]
    person = await people.create()
    export = await ask(client, person)
    await container.worker.run_once()
    url = f"/v1/me/exports/{export['id']}/download"
    both = await asyncio.gather(*(client.get(url, headers=person.headers) for _ in range(2)))
    assert sorted(r.status_code for r in both) == [200, 410]
    (gone,) = [r for r in both if r.status_code == 410]
    assert assert_problem(gone, 410, "export_gone")["state"] == "downloaded"
    assert await status_of(client, person, export["id"]) == "downloaded"
