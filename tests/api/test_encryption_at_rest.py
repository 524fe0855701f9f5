"""Issue 17 §1–2: evidence files are encrypted with their case's own data key, the key is stored only wrapped by
a key-encryption key, a ciphertext moved to another case does not open, destroying the key shreds the case's
files, and rotating the KEK re-wraps the keys without touching the files."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid

import pytest
from PIL import PngImagePlugin
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from domain.actors import Actor, Client, Role
from domain.case_keys import CaseKey
from domain.errors import NotFound
from domain.policy import All
from infra.container import build_container
from infra.crypto import MAGIC, TEXT_PREFIX, derived_kek, unseal, wrap_context
from infra.db.case_keys import rewrap_all
from infra.db.tables import CaseKeyRow, ConsultationRow, EvidenceRow, MessageRow
from infra.settings import Settings
from tests.api.consultation_helpers import open_consultation
from tests.conftest import ON_BOTH_BLOB_STORES, assert_problem
from tests.pictures import picture

MARKER = "被害者の自宅住所 東京都新宿区西新宿2-8-1"
NARRATIVE = "元交際相手が私の裸の写真をＳＮＳに投稿し、勤務先の名前まで書き込んでいます。削除してほしいです。"
EXCERPT = "こいつは○○社の経理で横領している"
NEW_KEK = base64.b64encode(b"n" * 32).decode()


def png_with_private_text(seed: int = 31) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKER)
    out = io.BytesIO()
    picture(seed).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def as_actor(person) -> Actor:  # type: ignore[no-untyped-def]
    return Actor(client=Client.web, user_id=person.id, role=person.role, mfa=True)


async def uploaded(client, owner, data: bytes):  # type: ignore[no-untyped-def]
    c = await open_consultation(client, owner, narrative=NARRATIVE)
    base = f"/v1/consultations/{c['id']}/evidence"
    item = (await client.post(base, headers=owner.headers, json={})).json()
    response = await client.put(
        f"{base}/{item['id']}/file", headers=owner.headers, files={"file": ("証拠.png", data, "image/png")}
    )
    assert response.status_code == 200, response.text
    return c, response.json()


@ON_BOTH_BLOB_STORES
async def test_files_are_encrypted_at_rest_and_served_in_the_clear(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    original = png_with_private_text()
    c, item = await uploaded(client, owner, original)
    copy = (
        await client.get(f"/v1/consultations/{c['id']}/evidence/{item['id']}/file", headers=owner.headers)
    ).content
    assert hashlib.sha256(copy).hexdigest() == item["file"]["copy_sha256"]
    exported_item, exported = await container.consultations.export_original(
        as_actor(owner), uuid.UUID(c["id"]), uuid.UUID(item["id"])
    )
    assert exported == original
    for key, plain in ((exported_item.file.original_key, original), (exported_item.file.storage_key, copy)):
        at_rest = await container.blobs.get(key)
        assert at_rest.startswith(MAGIC) and len(at_rest) > len(plain)
        assert plain[:64] not in at_rest and MARKER.encode() not in at_rest and b"\x89PNG" not in at_rest
    # The data key is in the database only wrapped, never as the 32 bytes that open the files.
    async with container.sessions() as db:
        row = await db.get(CaseKeyRow, uuid.UUID(c["id"]))
    assert row is not None and row.wrapped is not None and row.wrapped.startswith(MAGIC)
    assert row.kek_id == container.keys.current_id


async def test_a_file_moved_to_another_case_does_not_open(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner, other = await people.create(), await people.create()
    a, item_a = await uploaded(client, owner, png_with_private_text(1))
    b, _ = await uploaded(client, other, png_with_private_text(2))
    stolen, _ = await container.consultations.export_original(
        as_actor(owner), uuid.UUID(a["id"]), uuid.UUID(item_a["id"])
    )
    async with container.consultations.uow() as uow:
        key_a = await uow.case_keys.for_consultation(uuid.UUID(a["id"]))
        key_b = await uow.case_keys.for_consultation(uuid.UUID(b["id"]))
    files = container.consultations.files
    assert b"".join([x async for x in await files.open(stolen.file.storage_key, key_a)])
    # Under the other case's key, and under this case's key with another storage key, the file does not open.
    with pytest.raises(ValueError):
        await files.open(stolen.file.storage_key, key_b)
    with pytest.raises(ValueError):
        await files.open(stolen.file.storage_key, CaseKey(key_b.consultation_id, key_a.material))
    blob = await container.blobs.get(stolen.file.storage_key)
    with pytest.raises(ValueError):
        unseal(
            key_a.material, blob, context=b"evidence-file\x00" + key_a.consultation_id.bytes + b"\x00x.png"
        )


async def test_shredding_a_case_leaves_its_files_unreadable(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    original = png_with_private_text()
    c, item = await uploaded(client, owner, original)
    case_id = uuid.UUID(c["id"])
    exported_item, _ = await container.consultations.export_original(
        as_actor(owner), case_id, uuid.UUID(item["id"])
    )
    async with container.consultations.uow() as uow:
        assert await uow.case_keys.destroy(case_id) is True
        await uow.commit()
    # The raw row keeps no key; the raw files are still in the store (as in a backup) but nothing opens them:
    # not the KEK, not the key derived from the master secret.
    async with container.sessions() as db:
        row = (await db.execute(select(CaseKeyRow).where(CaseKeyRow.consultation_id == case_id))).scalar_one()
    assert row.wrapped is None and row.destroyed_at is not None
    for key in (exported_item.file.original_key, exported_item.file.storage_key):
        at_rest = await container.blobs.get(key)
        assert MARKER.encode() not in at_rest
        for candidate in (derived_kek(container.settings.signing_key), container.settings.signing_key[:32]):
            with pytest.raises(ValueError):
                unseal(
                    candidate, at_rest, context=b"evidence-file\x00" + case_id.bytes + b"\x00" + key.encode()
                )
    # A shredded case is simply not found, by its owner too: not the case, not its file, not in any list.
    for path in ("", f"/evidence/{item['id']}/file", "/messages"):
        assert_problem(
            await client.get(f"/v1/consultations/{c['id']}{path}", headers=owner.headers),
            404,
            "consultation_not_found",
        )
    listed = (await client.get("/v1/consultations", headers=owner.headers)).json()
    assert c["id"] not in json.dumps(listed)
    with pytest.raises(NotFound):
        await container.consultations.export_original(as_actor(owner), case_id, uuid.UUID(item["id"]))
    # Its texts stay in the rows (as in a backup), sealed under a key that no longer exists.
    async with container.sessions() as db:
        narrative = (
            await db.execute(select(ConsultationRow.narrative).where(ConsultationRow.id == case_id))
        ).scalar_one()
    assert narrative.startswith(TEXT_PREFIX) and NARRATIVE not in narrative
    async with container.consultations.uow() as uow:
        assert await uow.case_keys.destroy(case_id) is False  # already gone


async def test_a_case_shredded_before_its_first_file_never_gets_a_key(container) -> None:  # type: ignore[no-untyped-def]
    case_id = uuid.uuid4()
    async with container.consultations.uow() as uow:
        assert await uow.case_keys.destroy(case_id) is False
        await uow.commit()
    async with container.consultations.uow() as uow:
        with pytest.raises(NotFound):
            await uow.case_keys.for_consultation(case_id)


@pytest.mark.commits  # the rotating containers read the keys on connections of their own
async def test_kek_rotation_rewraps_every_data_key_and_resumes(settings, clock, people, client) -> None:  # type: ignore[no-untyped-def]
    # The suite's API runs on the development default (a KEK derived from the master secret): that is the old
    # KEK here. The operator puts a new one first and keeps the old one after it while rotating.
    old_kek = base64.b64encode(derived_kek(settings.signing_key)).decode()
    rotating = build_container(
        settings.model_copy(update={"kek": SecretStr(f"{NEW_KEK},{old_kek}")}), clock=clock
    )
    new = build_container(settings.model_copy(update={"kek": SecretStr(NEW_KEK)}), clock=clock)
    try:
        owner = await people.create()
        originals = {}
        for n in range(3):
            data = png_with_private_text(n + 3)
            c, item = await uploaded(client, owner, data)
            originals[(uuid.UUID(c["id"]), uuid.UUID(item["id"]))] = data
        # Under the new KEK alone nothing opens yet: the data keys are wrapped by the old one.
        (case_id, evidence_id), data = next(iter(originals.items()))
        with pytest.raises(KeyError):
            await new.consultations.export_original(as_actor(owner), case_id, evidence_id)
        seen: list[tuple[int, int]] = []
        first = await rewrap_all(
            rotating.sessions, rotating.keys, batch=1, limit=2, progress=lambda d, t: seen.append((d, t))
        )
        assert (first.rewrapped, first.remaining) == (2, 1) and seen == [(1, 3), (2, 3)]
        second = await rewrap_all(rotating.sessions, rotating.keys)
        assert (second.rewrapped, second.remaining) == (1, 0)
        assert (await rewrap_all(rotating.sessions, rotating.keys)).rewrapped == 0
        # Now the old KEK can go: every file opens under the new one, byte for byte.
        for (case_id, evidence_id), data in originals.items():
            _, exported = await new.consultations.export_original(as_actor(owner), case_id, evidence_id)
            assert exported == data
        async with new.sessions() as db:
            ids = set((await db.execute(select(CaseKeyRow.kek_id))).scalars())
        assert ids == {new.keys.current_id}
    finally:
        for c in (rotating, new):
            await c.close()


def test_a_malformed_kek_is_refused_by_name_without_its_value() -> None:
    for bad in ("not base64!!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValidationError) as refused:
            Settings(kek=bad)  # type: ignore[arg-type]
        assert "kek" in str(refused.value) and bad not in str(refused.value)


def test_wrapped_keys_are_bound_to_their_case() -> None:
    from infra.crypto import LocalKeyService, new_data_key

    keys = LocalKeyService([b"k" * 32])
    a, b = uuid.uuid4(), uuid.uuid4()
    kek_id, wrapped = keys.wrap(new_data_key(), context=wrap_context(a.bytes))
    assert len(keys.unwrap(kek_id, wrapped, context=wrap_context(a.bytes))) == 32
    with pytest.raises(ValueError):
        keys.unwrap(kek_id, wrapped, context=wrap_context(b.bytes))


async def test_what_people_write_is_sealed_at_rest_and_read_back_as_written(
    client, people, container
) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(
        client, owner, narrative=NARRATIVE, title="ＳＮＳへの無断投稿", tried="運営に通報済み"
    )
    base = f"/v1/consultations/{c['id']}"
    item = (
        await client.post(
            f"{base}/evidence",
            headers=owner.headers,
            json={
                "url": "https://x.com/someone/status/1",
                "excerpt": EXCERPT,
                "poster_account": "@加害者アカ",
            },
        )
    ).json()
    sent = await client.post(
        f"{base}/messages", headers=owner.headers, json={"body": "追加の投稿を見つけました。"}
    )
    assert sent.status_code == 201, sent.text
    # Read back exactly as written (Japanese, full-width characters and all).
    got = (await client.get(base, headers=owner.headers)).json()
    assert (got["narrative"], got["title"], got["tried"]) == (
        NARRATIVE,
        "ＳＮＳへの無断投稿",
        "運営に通報済み",
    )
    evidence = (await client.get(f"{base}/evidence/{item['id']}", headers=owner.headers)).json()
    assert (evidence["excerpt"], evidence["poster_account"]) == (EXCERPT, "@加害者アカ")
    thread = (await client.get(f"{base}/messages", headers=owner.headers)).json()
    assert "追加の投稿を見つけました。" in json.dumps(thread, ensure_ascii=False)
    # At rest, none of it is there in the clear.
    case_id = uuid.UUID(c["id"])
    async with container.sessions() as db:
        row = (await db.execute(select(ConsultationRow).where(ConsultationRow.id == case_id))).scalar_one()
        e = (await db.execute(select(EvidenceRow).where(EvidenceRow.consultation_id == case_id))).scalar_one()
        bodies = list(
            (await db.execute(select(MessageRow.body).where(MessageRow.consultation_id == case_id))).scalars()
        )
    stored = [row.title, row.narrative, row.tried, e.url, e.excerpt, e.poster_account, *bodies]
    assert all(v and v.startswith(TEXT_PREFIX) for v in stored), stored
    for plain in (NARRATIVE, "ＳＮＳ", "運営に通報", EXCERPT, "加害者", "x.com", "追加の投稿"):
        assert not any(plain in v for v in stored)


async def test_a_text_moved_to_another_case_or_column_does_not_open(client, people, container) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    owner, other = await people.create(), await people.create()
    a = await open_consultation(client, owner, narrative=NARRATIVE)
    b = await open_consultation(client, other)
    a_id, b_id = uuid.UUID(a["id"]), uuid.UUID(b["id"])
    async with container.sessions() as db:
        sealed = (
            await db.execute(select(ConsultationRow.narrative).where(ConsultationRow.id == a_id))
        ).scalar_one()
        await db.execute(update(ConsultationRow).where(ConsultationRow.id == b_id).values(narrative=sealed))
        await db.execute(update(ConsultationRow).where(ConsultationRow.id == a_id).values(title=sealed))
        await db.commit()
    for case_id in (b_id, a_id):  # the other case's row; the same case's other column
        async with container.consultations.uow() as uow:
            with pytest.raises(ValueError):
                await uow.consultations.get(case_id, All())


async def test_answer_versions_are_sealed_at_rest(client, people, container) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables_quality import AnswerVersionRow
    from tests.api.consultation_helpers import answer, take

    owner = await people.create()
    staff = await people.create(Role.consultant)
    c = await open_consultation(client, owner, narrative=NARRATIVE)
    await take(client, staff, c["id"])
    text = "投稿の削除依頼は、送信防止措置依頼書の書式で運営会社に送ってください。"
    await answer(client, staff, c["id"], text, people=people)
    thread = (await client.get(f"/v1/consultations/{c['id']}/messages", headers=owner.headers)).json()
    assert text in json.dumps(thread, ensure_ascii=False)
    drafts = (await client.get(f"/v1/consultations/{c['id']}/answers", headers=staff.headers)).json()
    assert text in json.dumps(drafts, ensure_ascii=False)
    async with container.sessions() as db:
        bodies = list((await db.execute(select(AnswerVersionRow.body))).scalars())
    assert bodies and all(b.startswith(TEXT_PREFIX) and "送信防止措置" not in b for b in bodies)


async def test_request_notes_are_sealed_at_rest(client, people, container) -> None:  # type: ignore[no-untyped-def]
    from infra.db.tables_requests import RequestRow

    owner = await people.create()
    c = await open_consultation(client, owner)
    note = "運営の問い合わせ窓口に電話し、担当の田中さんから受付番号をもらった。"
    made = await client.post(
        f"/v1/consultations/{c['id']}/requests",
        headers=owner.headers,
        json={"kind": "platform_form", "target": {"platform": "x", "service": "x"}, "notes": note},
    )
    assert made.status_code == 201, made.text
    listed = (await client.get(f"/v1/consultations/{c['id']}/requests", headers=owner.headers)).json()[
        "items"
    ]
    assert note in json.dumps(listed, ensure_ascii=False)
    async with container.sessions() as db:
        stored = (await db.execute(select(RequestRow.notes))).scalar_one()
    assert stored.startswith(TEXT_PREFIX) and "田中" not in stored


# -- a KEK removed while data keys still use it is reported by id, not as 500s on every read -------------------


@pytest.mark.commits  # the app under the wrong KEK reads the keys on a connection of its own
async def test_a_missing_kek_makes_the_service_not_ready_and_rotation_refuse(
    settings, clock, people, client, container, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import logging

    import httpx
    from typer.testing import CliRunner

    from api.main import create_app
    from infra.cli import app as cli
    from infra.crypto import kek_id

    owner = await people.create()
    await open_consultation(client, owner)  # its data key is wrapped by the suite's (derived) KEK
    old_id = kek_id(derived_kek(settings.signing_key))
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    # The operator configured only a new KEK, dropping the one those data keys are wrapped under.
    wrong = build_container(settings.model_copy(update={"kek": SecretStr(NEW_KEK)}), clock=clock)
    try:
        transport = httpx.ASGITransport(app=create_app(container=wrong), raise_app_exceptions=False)
        with caplog.at_level(logging.ERROR, logger="madoguchi.health"):
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                ready = await http.get("/readyz")
        assert_problem(ready, 503, "key_encryption_key_missing")
        assert old_id not in ready.text and NEW_KEK not in ready.text  # the id is for the operator's log
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert old_id in logged and "MADOGUCHI_KEK" in logged and NEW_KEK not in logged
    finally:
        await wrong.close()
    # `madoguchi rotate-keys` under the same settings says the same and changes nothing.
    monkeypatch.setenv("MADOGUCHI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MADOGUCHI_KEK", NEW_KEK)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["rotate-keys"])
    assert result.exit_code == 2, result.output
    assert old_id in result.output and NEW_KEK not in result.output and "re-wrapped" not in result.output
    async with container.sessions() as db:
        kept = set((await db.execute(select(CaseKeyRow.kek_id))).scalars())
    assert kept == {old_id}  # nothing was re-wrapped


# -- rotation never brings back a data key destroyed while it ran ---------------------------------------------


@pytest.mark.commits  # the shredding commits on a second connection while the rotation's batch is open
async def test_rotation_never_rewraps_a_key_shredded_meanwhile(settings, clock, people, client) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from sqlalchemy.sql.dml import Update

    old_kek = base64.b64encode(derived_kek(settings.signing_key)).decode()
    rotating = build_container(
        settings.model_copy(update={"kek": SecretStr(f"{NEW_KEK},{old_kek}")}), clock=clock
    )
    try:
        owner = await people.create()
        shredded_id = uuid.UUID((await open_consultation(client, owner))["id"])
        kept_id = uuid.UUID((await open_consultation(client, owner))["id"])
        shredded_during: list[uuid.UUID] = []

        class ShredFirst(AsyncSession):
            """The rotation's session: before its first re-wrap is written, the case is shredded on another
            connection and committed (the batch was read with the key still there)."""

            async def execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def,override]
                if isinstance(statement, Update) and not shredded_during:
                    shredded_during.append(shredded_id)
                    async with rotating.consultations.uow() as uow:
                        assert await uow.case_keys.destroy(shredded_id) is True
                        await uow.commit()
                return await super().execute(statement, *args, **kwargs)

        sessions = async_sessionmaker(rotating.engine, class_=ShredFirst, expire_on_commit=False)
        result = await rewrap_all(sessions, rotating.keys, batch=10)
        assert shredded_during == [shredded_id]
        async with rotating.sessions() as db:
            rows = {
                r.consultation_id: r
                for r in (
                    await db.execute(
                        select(CaseKeyRow).where(CaseKeyRow.consultation_id.in_([shredded_id, kept_id]))  # type: ignore[attr-defined]
                    )
                ).scalars()
            }
        # The shredded case stays shredded: no wrapped key came back; the other was re-wrapped as usual.
        assert rows[shredded_id].wrapped is None and rows[shredded_id].destroyed_at is not None
        assert rows[kept_id].wrapped is not None and rows[kept_id].kek_id == rotating.keys.current_id
        assert result.remaining == 0
        async with rotating.consultations.uow() as uow:
            with pytest.raises(NotFound):
                await uow.case_keys.for_consultation(shredded_id)
    finally:
        await rotating.close()
