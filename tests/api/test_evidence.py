"""Evidence items: what is missing for good evidence, URL handling, uploads recognised by content with image
metadata stripped, and downloads only as attachments for those allowed; with the files in a local directory and
in S3-compatible object storage alike."""

from __future__ import annotations

import hashlib
import io

import pikepdf
from PIL import Image

from domain.actors import Role
from tests.api.consultation_helpers import open_consultation, take
from tests.conftest import ON_BOTH_BLOB_STORES, assert_problem

# Every test runs with the files in a local directory and in S3-compatible object storage.
pytestmark = ON_BOTH_BLOB_STORES


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (35.0, 41.0, 22.0), "E", (139.0, 41.0, 30.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "東京都新宿区西新宿2-8-1 で撮影")
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 0, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def test_missing_parts_of_good_evidence(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}/evidence"
    thin = await client.post(
        url, headers=owner.headers, json={"url": "https://x.com/", "excerpt": "悪口が書かれていた"}
    )
    assert thin.status_code == 201
    assert thin.json()["missing"] == ["absolute_time", "full_url", "account_id", "context"]
    full = await client.post(
        url,
        headers=owner.headers,
        json={
            "url": "https://bakusai.com/thr_res/acode=3/ctgid=104/bid=1/tid=123/rrid=45/",
            "platform": "bakusai",
            "posted_at": "2026-11-20T21:15:00+09:00",
            "captured_at": "2026-11-21T09:30:00+09:00",
            "poster_account": "ID:ab12Cd34",
            "excerpt": "〇〇は前科者",
            "context_captured": True,
        },
    )
    assert full.status_code == 201 and full.json()["missing"] == []
    listed = (await client.get(url, headers=owner.headers)).json()["items"]
    assert [e["id"] for e in listed] == [thin.json()["id"], full.json()["id"]]


async def test_urls_are_validated_and_naive_times_refused(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    url = f"/v1/consultations/{c['id']}/evidence"
    for bad in (
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://user:pw@example.jp/post/1",
        "ftp://example.jp/x",
        "https:///nohost",
    ):
        assert_problem(await client.post(url, headers=owner.headers, json={"url": bad}), 422, "invalid_url")
    naive = await client.post(
        url,
        headers=owner.headers,
        json={"url": "https://x.com/a/status/1", "posted_at": "2026-11-20T21:15:00"},
    )
    assert_problem(naive, 422, "validation_failed")
    unknown_platform = await client.post(url, headers=owner.headers, json={"platform": "myspace"})
    assert_problem(unknown_platform, 422, "unknown_code")
    assert (await client.get(url, headers=owner.headers)).json()["items"] == []
    # Internal addresses are accepted as inert text: the server never fetches evidence URLs.
    inert = await client.post(
        url, headers=owner.headers, json={"url": "http://169.254.169.254/latest/meta-data"}
    )
    assert inert.status_code == 201


async def test_upload_strips_metadata_and_download_is_an_attachment(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (
        await client.post(
            f"/v1/consultations/{c['id']}/evidence",
            headers=owner.headers,
            json={"url": "https://x.com/a/status/1"},
        )
    ).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    uploaded = await client.put(
        file_url, headers=owner.headers, files={"file": ("../../etc/スクショ.png", original, "image/png")}
    )
    assert uploaded.status_code == 200, uploaded.text
    meta = uploaded.json()["file"]
    assert meta["content_type"] == "image/jpeg"  # recognised by content, not by the name or declared type
    download = await client.get(file_url, headers=owner.headers)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/jpeg"
    assert download.headers["content-disposition"] == f'attachment; filename="evidence-{item["id"]}.jpg"'
    assert download.headers["x-content-type-options"] == "nosniff"
    assert (
        hashlib.sha256(download.content).hexdigest() == meta["copy_sha256"]
        and len(download.content) == meta["size"]
    )
    assert meta["sha256"] == hashlib.sha256(original).hexdigest() and meta["original_kept"] is True
    stored = Image.open(io.BytesIO(download.content))
    assert not stored.getexif() and stored.size == (64, 48)
    again = await client.put(file_url, headers=owner.headers, files={"file": ("b.png", png(), "image/png")})
    assert_problem(again, 409, "file_already_attached")


async def test_png_text_chunks_are_dropped(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    assert (
        await client.put(file_url, headers=owner.headers, files={"file": ("a.png", png(), "image/png")})
    ).status_code == 200
    content = (await client.get(file_url, headers=owner.headers)).content
    assert "西新宿".encode() not in content and Image.open(io.BytesIO(content)).text == {}


async def test_unsupported_and_oversized_uploads(client, people, container) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    html = b"<html><script>alert(1)</script></html>"
    assert_problem(
        await client.put(file_url, headers=owner.headers, files={"file": ("x.png", html, "image/png")}),
        422,
        "unsupported_file_type",
    )
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    assert_problem(
        await client.put(file_url, headers=owner.headers, files={"file": ("x.png", broken, "image/png")}),
        422,
        "unreadable_image",
    )
    huge = b"%PDF-1.7\n" + b"0" * (container.settings.max_upload_bytes + 10) + b"\n%%EOF"
    assert_problem(
        await client.put(file_url, headers=owner.headers, files={"file": ("x.pdf", huge, "application/pdf")}),
        413,
        "content_too_large",
    )
    not_really = b"%PDF-1.4\nnot a pdf at all\n%%EOF\n"
    assert_problem(
        await client.put(
            file_url, headers=owner.headers, files={"file": ("x.pdf", not_really, "application/pdf")}
        ),
        422,
        "unreadable_pdf",
    )
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")  # a few KiB on the wire, 81 million pixels decoded
    assert len(bomb.getvalue()) < container.settings.max_upload_bytes
    assert_problem(
        await client.put(
            file_url, headers=owner.headers, files={"file": ("x.png", bomb.getvalue(), "image/png")}
        ),
        422,
        "image_too_large",
    )


def pdf_with_script() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    script = pdf.make_indirect(
        pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    )
    pdf.Root.OpenAction = script
    pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Names=pikepdf.Array(["x", script])))
    pdf.docinfo["/Author"] = "山田花子"
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


async def test_pdfs_are_kept_without_scripts_or_metadata(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    original = pdf_with_script()
    assert b"/JavaScript" in original
    ok = await client.put(
        file_url, headers=owner.headers, files={"file": ("x.pdf", original, "application/pdf")}
    )
    assert ok.status_code == 200 and ok.json()["file"]["content_type"] == "application/pdf"
    stored = pikepdf.open(io.BytesIO((await client.get(file_url, headers=owner.headers)).content))
    assert (
        "/OpenAction" not in stored.Root
        and "/Names" not in stored.Root
        or "/JavaScript" not in stored.Root.Names
    )
    assert "/Author" not in stored.docinfo and len(stored.pages) == 1


async def test_only_those_allowed_download(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    await client.put(file_url, headers=owner.headers, files={"file": ("a.png", png(), "image/png")})
    assigned = await people.create(Role.consultant)
    await take(client, assigned, c["id"])
    assert (await client.get(file_url, headers=assigned.headers)).status_code == 200
    for outsider in (await people.create(), await people.create(Role.consultant)):
        assert_problem(await client.get(file_url, headers=outsider.headers), 404)
    for role in (Role.council, Role.legal_advisor, Role.admin):
        assert_problem(await client.get(file_url, headers=(await people.create(role)).headers), 403)
    # An evidence id under another consultation is not found, even for the owner of both.
    other = await open_consultation(client, owner)
    assert_problem(
        await client.get(
            f"/v1/consultations/{other['id']}/evidence/{item['id']}/file", headers=owner.headers
        ),
        404,
    )


def pdf_as_in_the_probe() -> bytes:
    """What the probe stored (issue 13): a bookmark running JavaScript, a form field with a keystroke script
    and a file attachment annotation carrying an executable."""
    from tests.integration.test_pdf_cleaning import annotation, embedded_file, js, new_pdf, save

    pdf = new_pdf()
    outlines = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Outlines, Count=1))
    item = pdf.make_indirect(pikepdf.Dictionary(Title=pikepdf.String("証拠"), Parent=outlines, A=js(pdf)))
    outlines.First = outlines.Last = item
    pdf.Root.Outlines = outlines
    field = annotation(pdf, "/Widget", FT=pikepdf.Name.Tx, T=pikepdf.String("f"))
    field.AA = pikepdf.Dictionary(K=js(pdf))
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]))
    annotation(pdf, "/FileAttachment", FS=embedded_file(pdf))
    return save(pdf)


async def test_a_stored_pdf_has_no_script_form_or_attachment_left(client, people) -> None:
    from tests.integration.test_pdf_cleaning import active_parts

    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    original = pdf_as_in_the_probe()
    assert active_parts(original)
    ok = await client.put(
        file_url, headers=owner.headers, files={"file": ("x.pdf", original, "application/pdf")}
    )
    assert ok.status_code == 200, ok.text
    stored = (await client.get(file_url, headers=owner.headers)).content
    assert active_parts(stored) == []
    assert ok.json()["file"]["copy_sha256"] == hashlib.sha256(stored).hexdigest()
    assert ok.json()["file"]["sha256"] == hashlib.sha256(original).hexdigest()


async def test_a_pdf_that_cannot_be_cleaned_is_refused_saying_what_to_send(client, people) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    item = (await client.post(f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={})).json()
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=pdf.make_stream(b"<xdp:xdp/>"))
    pdf.Root.NeedsRendering = True  # a dynamic XFA form: its content would not survive cleaning
    out = io.BytesIO()
    pdf.save(out)
    refused = assert_problem(
        await client.put(
            file_url, headers=owner.headers, files={"file": ("x.pdf", out.getvalue(), "application/pdf")}
        ),
        422,
        "pdf_not_cleanable",
    )
    assert "PDFとして印刷し直した" in refused["detail"] and "スクリーンショット" in refused["detail"]
    assert (await client.get(file_url, headers=owner.headers)).status_code == 404
