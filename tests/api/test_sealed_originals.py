"""Issue 16 §2: every uploaded file is kept twice. The original exactly as received is sealed: no route serves
it, only the domain's export (which the evidence bundle uses) reads it, for the owner and the assignee. The
cleaned copy is what staff open; `sha256` is the original's, `copy_sha256` the copy's."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import uuid

import pikepdf
import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import update

from api.main import api_routes
from domain.actors import Actor, Client, Role
from domain.errors import NotFound
from infra.db.tables import EvidenceRow
from tests.api.consultation_helpers import every_page, open_consultation, take
from tests.conftest import assert_problem
from tests.pictures import picture

MARKER = "東京都新宿区西新宿2-8-1 自宅で撮影"


def png_with_private_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKER)
    out = io.BytesIO()
    picture(31).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def pdf_with_script() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.OpenAction = pdf.make_indirect(
        pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    )
    pdf.docinfo["/Author"] = "山田花子"
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def actor(person, client: Client = Client.web) -> Actor:  # type: ignore[no-untyped-def]
    return Actor(client=client, user_id=person.id, role=person.role, mfa=True)


async def upload(client, owner, data: bytes, name: str = "a.png"):  # type: ignore[no-untyped-def]
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    response = await client.put(
        f"/v1/consultations/{c['id']}/evidence/{item['id']}/file",
        headers=owner.headers,
        files={"file": (name, data, "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    return c, response.json()


@pytest.mark.parametrize("kind", ["png", "pdf"])
async def test_original_and_copy_are_both_kept_with_their_own_hashes(client, people, container, kind) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    original = png_with_private_text() if kind == "png" else pdf_with_script()
    c, item = await upload(client, owner, original)
    meta = item["file"]
    copy = (
        await client.get(f"/v1/consultations/{c['id']}/evidence/{item['id']}/file", headers=owner.headers)
    ).content
    assert copy != original
    assert meta["sha256"] == hashlib.sha256(original).hexdigest()
    assert meta["copy_sha256"] == hashlib.sha256(copy).hexdigest() and meta["size"] == len(copy)
    assert meta["original_kept"] is True and meta["sealed"] is False
    # The export gives back exactly what was received, scripts and private text included: it is evidence.
    exported_item, exported = await container.consultations.export_original(
        actor(owner), uuid.UUID(c["id"]), uuid.UUID(item["id"])
    )
    assert exported == original and exported_item.file.original_size == len(original)
    assert (MARKER.encode() in exported) if kind == "png" else (b"app.alert" in exported)
    # Two blobs in the same store, distinct keys, both private to the service's user, neither in the clear
    # (issue 17: encrypted with the case's key; tests/api/test_encryption_at_rest.py).
    root = container.settings.storage_dir
    f = exported_item.file
    assert f.original_key != f.storage_key and f.original_key.endswith(".original")
    assert original[:64] not in (root / f.original_key).read_bytes()
    for key in (f.original_key, f.storage_key):
        assert stat.S_IMODE((root / key).stat().st_mode) == 0o600


async def test_a_refused_file_leaves_no_original_behind(client, people, container) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    root = container.settings.storage_dir
    before = set(root.iterdir()) if root.exists() else set()
    assert_problem(
        await client.put(
            f"/v1/consultations/{c['id']}/evidence/{item['id']}/file",
            headers=owner.headers,
            files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")},
        ),
        422,
        "unreadable_image",
    )
    assert (set(root.iterdir()) if root.exists() else set()) == before


async def test_only_the_owner_and_the_assignee_may_export_the_original(client, people, container) -> None:
    owner = await people.create()
    stranger = await people.create()
    supervisor = await people.create(Role.supervisor)
    consultant = await people.create(Role.consultant)
    other_consultant = await people.create(Role.consultant)
    c, item = await upload(client, owner, png_with_private_text())
    cid, eid = uuid.UUID(c["id"]), uuid.UUID(item["id"])
    export = container.consultations.export_original
    # Unassigned: a supervisor sees the case but is not its assignee; consultants see the unassigned queue.
    for who in (stranger, supervisor, consultant):
        with pytest.raises(NotFound):
            await export(actor(who, Client.staff if who.role.is_staff else Client.web), cid, eid)
    await take(client, consultant, c["id"])
    _, data = await export(actor(consultant, Client.staff), cid, eid)
    assert hashlib.sha256(data).hexdigest() == item["file"]["sha256"]
    for who in (supervisor, other_consultant, stranger):
        with pytest.raises(NotFound):
            await export(actor(who, Client.staff if who.role.is_staff else Client.web), cid, eid)
    audit = await every_page(client, "/v1/audit-events", supervisor.headers)
    assert [e["action"] for e in audit].count("evidence.original_exported") == 1
    # A file kept before originals were (the migration left its original_key empty) has nothing to export.
    async with container.engine.begin() as conn:
        await conn.execute(
            update(EvidenceRow).where(EvidenceRow.id == eid).values(file_original_key=None, file_sha256=None)
        )
    with pytest.raises(NotFound):
        await export(actor(owner), cid, eid)
    listed = (
        await client.get(f"/v1/consultations/{c['id']}/evidence/{item['id']}", headers=owner.headers)
    ).json()
    assert listed["file"]["sha256"] is None and listed["file"]["original_kept"] is False


async def test_no_route_serves_the_original(app, client, people, container) -> None:
    """Every route of the API, called by everyone who may see the case, with the case's and the item's ids
    wherever a path takes ids: no answer carries the original's bytes, its private text or its key."""
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    consultant = await people.create(Role.consultant)
    original = png_with_private_text()
    c, item = await upload(client, owner, original)
    await take(client, consultant, c["id"])
    _, _ = await container.consultations.export_original(
        actor(owner), uuid.UUID(c["id"]), uuid.UUID(item["id"])
    )
    stored = next(p.name for p in container.settings.storage_dir.iterdir() if p.name.endswith(".original"))
    ids = {"consultation_id": c["id"], "evidence_id": item["id"]}
    called = 0
    for route in api_routes(app):
        names = set(re.findall(r"{(\w+)}", route.path))
        if not names <= set(ids):
            continue  # a route that takes other ids cannot name this item
        path = route.path.format(**{k: v for k, v in ids.items() if k in names})
        for method in route.methods:
            for who in (owner, consultant, supervisor):
                response = await client.request(method, path, headers=who.headers)
                called += 1
                body = response.content
                assert original not in body and MARKER.encode() not in body, (method, path)
                assert MARKER not in response.text and stored not in response.text, (method, path)
                if response.status_code == 200 and response.headers["content-type"].startswith("image/"):
                    assert Image.open(io.BytesIO(body)).text == {}
    evidence_routes = {r.path for r in api_routes(app) if "{evidence_id}" in r.path}
    assert len(evidence_routes) >= 4 and called > 100
