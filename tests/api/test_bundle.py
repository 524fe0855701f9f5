"""The evidence bundle (issue 16 §4): a ZIP a lawyer, the police or a court can check on their own — the
manifest's hashes rebuild from the files in it, the chain of custody in it re-hashes to its head, the export
is on that chain, and the PDF report reads in Japanese with every item and how to check the hashes."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take
from tests.api.test_evidence import jpeg_with_gps, png
from tests.conftest import assert_problem
from tests.pdf_tools import pdf_pages, pdf_text

POSTED = {
    "url": "https://bakusai.com/thr_res/acode=3/ctgid=104/bid=1/tid=123/rrid=45/",
    "platform": "bakusai",
    "posted_at": "2026-11-20T21:15:00+09:00",
    "captured_at": "2026-11-21T00:30:00Z",
    "poster_account": "ID:ab12Cd34",
    "excerpt": "〇〇は前科者",
    "context_captured": True,
}


async def case_with_evidence(client, people):  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner)
    base = f"/v1/consultations/{c['id']}/evidence"
    items = []
    for body, upload in (
        (POSTED, ("a.jpg", jpeg_with_gps(), "image/jpeg")),
        ({"url": "https://x.com/a/status/9"}, ("b.png", png(), "image/png")),
        ({"url": "https://x.com/b/status/7", "excerpt": "ファイルなし"}, None),
    ):
        made = await client.post(
            base, headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())}, json=body
        )
        assert made.status_code == 201, made.text
        if upload:
            put = await client.put(
                f"{base}/{made.json()['id']}/file", headers=owner.headers, files={"file": upload}
            )
            assert put.status_code == 200, put.text
            items.append(put.json())
        else:
            items.append(made.json())
    consultant = await people.create(Role.consultant)
    await take(client, consultant, c["id"])
    return c["id"], owner, consultant, items


def unzip(response) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="evidence-bundle-')
    return zipfile.ZipFile(io.BytesIO(response.content))


def rehash_chain(lines: list[str]) -> str:
    """What a recipient does with custody/chain.jsonl, following the PDF's explanation."""
    prev = "00" * 32
    for n, line in enumerate(lines, 1):
        entry = json.loads(line)
        assert entry["link"]["seq"] == n and entry["prev_hash"] == prev
        body = json.dumps(entry["link"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        prev = hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
        assert prev == entry["hash"], n
    return prev


async def test_the_consulter_gets_a_bundle_that_checks_itself(client, people, container) -> None:
    cid, owner, consultant, items = await case_with_evidence(client, people)
    z = unzip(await client.get(f"/v1/consultations/{cid}/evidence/bundle", headers=owner.headers))
    manifest = json.loads(z.read("manifest.json"))
    assert manifest["consultation_id"] == cid and manifest["hash_algorithm"] == "SHA-256"
    assert [i["evidence_id"] for i in manifest["items"]] == [i["id"] for i in items]
    first = manifest["items"][0]
    assert first["url"] == POSTED["url"] and first["poster_account"] == "ID:ab12Cd34"
    assert first["posted_at_jst"] == "2026-11-20T21:15:00+09:00"
    assert first["captured_at_jst"] == "2026-11-21T09:30:00+09:00"  # 00:30 UTC is 09:30 in Japan
    # Every file's hash, rebuilt from the bytes in the ZIP, is the manifest's and the one recorded at upload.
    for entry, item in zip(manifest["items"][:2], items[:2], strict=True):
        data = z.read(entry["copy"]["path"])
        assert hashlib.sha256(data).hexdigest() == entry["copy"]["sha256"] == item["file"]["copy_sha256"]
        assert entry["copy"]["size"] == len(data)
        # The sealed original is known by its hash; its bytes come only when the consulter asks for them.
        assert entry["original"] == {
            "sha256": item["file"]["sha256"],
            "included": False,
            "path": None,
            "kept": True,
        }
    assert manifest["items"][2]["copy"] is None
    # The copy has no GPS: the cleaned file is what is bundled.
    assert b"PhoneMaker" not in z.read(first["copy"]["path"])
    # The chain re-hashes to the head in the manifest and in head.json, and ends with this export.
    lines = z.read("custody/chain.jsonl").decode().splitlines()
    head = rehash_chain(lines)
    assert manifest["custody"]["head"] == {"seq": len(lines), "hash": head}
    assert json.loads(z.read("custody/head.json")) == {
        "v": 1,
        "consultation_id": cid,
        "seq": len(lines),
        "hash": head,
    }
    last = json.loads(lines[-1])["link"]
    assert last["action"] == "evidence.exported" and last["actor_role"] == "consulter"
    assert last["detail"] == {"items": 3, "files": 2, "originals": 0}
    assert manifest["custody"]["timestamp"] is None
    report = await container.custody.verify()
    assert report.breaks == []
    # The PDF: Japanese, every item in its table, how to check the hashes.
    pdf = z.read("report.pdf")
    assert b"/FontFile2" in pdf and b"IPAexGothic" in pdf  # the font is embedded
    pages = pdf_text(pdf)
    text = "".join(pages)
    flat = re.sub(r"\s+", "", text)
    assert "証拠資料一式" in text and "ハッシュ値の確かめ方" in text
    assert "certutil-hashfile" in flat and "shasum-a256" in flat
    for entry in manifest["items"]:
        assert re.sub(r"\s+", "", entry["url"]) in flat
        if entry["copy"]:
            assert entry["copy"]["sha256"] in flat
    assert "2026年11月20日21:15:00（日本時間）" in flat
    assert head in flat
    assert len(pdf_pages(pdf, dpi=30)) == len(pages)


async def test_the_assigned_consultant_may_export_but_not_ask_for_originals(
    client, people, container
) -> None:
    cid, owner, consultant, _ = await case_with_evidence(client, people)
    url = f"/v1/consultations/{cid}/evidence/bundle"
    z = unzip(await client.get(url, headers=consultant.headers))
    manifest = json.loads(z.read("manifest.json"))
    assert manifest["exported_by"] == {"role": "consultant", "actor_id": str(consultant.id)}
    assert not any(name.startswith("originals/") for name in z.namelist())
    assert_problem(
        await client.get(url, headers=consultant.headers, params={"originals": "true"}),
        403,
        "originals_consulter_only",
    )
    # The owner may ask: the originals exactly as received come along, and hash to what the manifest says.
    theirs = unzip(await client.get(url, headers=owner.headers, params={"originals": "true"}))
    mine = json.loads(theirs.read("manifest.json"))
    assert mine["originals_requested"] is True
    with_files = [i for i in mine["items"] if i["copy"] is not None]
    assert with_files and all(i["original"]["included"] for i in with_files)
    for entry in with_files:
        original = theirs.read(entry["original"]["path"])
        assert hashlib.sha256(original).hexdigest() == entry["original"]["sha256"]
        assert entry["original"]["sha256"] != entry["copy"]["sha256"]  # the copy was cleaned
    # Two exports, two links (the refused one left none).
    async with container.sessions() as db:
        from infra.db.custody import SqlCustody

        links = await SqlCustody(db, container.clock).links(uuid.UUID(cid))
    exported = [link for link in links if link.action == "evidence.exported"]
    assert [(link.actor_role, link.client) for link in exported] == [
        ("consultant", "staff"),
        ("consulter", "web"),
    ]


async def test_everyone_else_gets_404(client, people) -> None:
    cid, owner, consultant, _ = await case_with_evidence(client, people)
    url = f"/v1/consultations/{cid}/evidence/bundle"
    for role in (
        Role.consulter,
        Role.consultant,
        Role.supervisor,
        Role.legal_advisor,
        Role.council,
        Role.admin,
    ):
        other = await people.create(role)
        assert_problem(await client.get(url, headers=other.headers), 404, "consultation_not_found")
    assert_problem(
        await client.get(f"/v1/consultations/{uuid.uuid4()}/evidence/bundle", headers=owner.headers), 404
    )
    assert (await client.get(url)).status_code == 401


async def test_a_large_bundle_is_streamed_from_disk(client, people, container, monkeypatch) -> None:
    """Past the spool size the ZIP goes to a temporary file and the response streams in chunks."""
    import infra.bundle

    monkeypatch.setattr(infra.bundle, "SPOOL_BYTES", 1024)
    cid, owner, *_ = await case_with_evidence(client, people)
    async with client.stream(
        "GET", f"/v1/consultations/{cid}/evidence/bundle", headers=owner.headers
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        blocks = [block async for block in response.aiter_raw()]
    z = zipfile.ZipFile(io.BytesIO(b"".join(blocks)))
    assert z.testzip() is None
