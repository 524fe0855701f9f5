"""Evidence files: recognised by content, image metadata stripped, stored under a server-chosen name."""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeGuard

import anyio
import pikepdf
from PIL import Image, ImageOps, UnidentifiedImageError

from domain.case_keys import CaseKey
from domain.consultations import EvidenceFile
from domain.errors import ValidationFailed
from infra.blobs import CHUNK, BlobStore
from infra.crypto import file_context, is_sealed, seal, unseal

MAX_PIXELS = 40_000_000  # about 6,300 × 6,300: any real screenshot, and ~160 MiB decoded at most
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
)
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}
STORED_TYPE = "application/octet-stream"  # what the store holds is ciphertext, whatever the file is
ORIGINAL_EXTENSION = "original"  # the sealed original's key: never opened by a viewer, whatever it holds


@dataclass(frozen=True, slots=True)
class CleanFile:
    data: bytes
    content_type: str
    sha256: str


def sniff(data: bytes) -> str:
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    raise ValidationFailed("unsupported_file_type", field="file")


def clean(data: bytes) -> CleanFile:
    """Re-encode images so EXIF (GPS, device, time) and text chunks are dropped, and rewrite PDFs without
    scripts, automatic actions, attachments or metadata. The SHA-256 is of the stored bytes, so a later
    download can be checked against it."""
    content_type = sniff(data)
    data = _clean_pdf(data) if content_type == "application/pdf" else _clean_image(data, content_type)
    return CleanFile(data, content_type, hashlib.sha256(data).hexdigest())


def _clean_image(data: bytes, content_type: str) -> bytes:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # The header says how big the decoded picture would be: refuse before decoding it.
                if image.width * image.height > MAX_PIXELS:
                    raise ValidationFailed("image_too_large", field="file")
                image.load()
                upright = ImageOps.exif_transpose(image)
                out = io.BytesIO()
                if content_type == "image/jpeg":
                    upright.convert("RGB").save(out, "JPEG", quality=92)
                else:
                    upright.save(out, "PNG")
                return out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationFailed("image_too_large", field="file") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValidationFailed("unreadable_image", field="file") from exc


# ---------------------------------------------------------------------------------------------------------------
# PDF: active content out, then proof that none is left.
#
# Staff open these files in ordinary viewers. Whatever in a PDF can run, submit, fetch, launch or carry another
# file is removed wherever it sits: the cleaner visits every object qpdf knows (every indirect object, in object
# streams or not, and every dictionary and array nested in them), not a list of known places, so an action
# hung under a private key or an annotation nobody lists is found the same way. The file is then written anew
# (one revision: bytes of earlier incremental updates are gone; no object streams; no encryption) and the
# output is parsed again and scanned in full. A file that cannot be proved clean is refused with a 422 that tells
# the person what to send instead (a PDF printed anew, or screenshots).
#
# We refuse rather than render pages to images: rendering would run a full PDF renderer (fonts, images,
# colour, the code with the CVEs) on hostile input in the server, cost seconds of CPU per page, and destroy
# the text staff search and copy (a URL in the evidence). qpdf only parses structure. Refusal is rare: it
# happens for files qpdf cannot read, dynamic XFA forms (their content lives only in the XFA, which is
# removed), files too large a graph to walk, and anything the re-scan still flags.
# ---------------------------------------------------------------------------------------------------------------

# The value of /S in an action dictionary (ISO 32000-2 §12.6.4). Every action goes, not only JavaScript:
# GoToR, Launch, URI, SubmitForm and ImportData reach the network or the file system, the multimedia ones
# play embedded content, and any of them can chain more actions through /Next.
ACTION_TYPES = frozenset(
    f"/{n}"
    for n in (
        "GoTo GoToR GoToE GoToDp Launch Thread URI Sound Movie Hide Named SubmitForm ResetForm ImportData "
        "JavaScript SetOCGState Rendition Trans GoTo3DView RichMediaExecute ECMAScript"
    ).split()
)
# Keys removed wherever they appear: each holds actions, code, a form, or another file.
ACTIVE_KEYS = frozenset(
    {
        "/OpenAction",  # the catalog's action on opening
        "/AA",  # additional actions: catalog, page, annotation, form field (/K /F /V /C keystroke scripts)
        "/JS",
        "/JavaScript",  # the name tree of document scripts
        "/AcroForm",
        "/XFA",
        "/NeedsRendering",
        "/EmbeddedFiles",  # the name tree of attachments
        "/EF",  # a file specification's embedded file streams
        "/RF",  # its related files
        "/AF",  # associated files (PDF 2.0), allowed on almost any object
        "/Collection",  # portfolio: a PDF that is a folder of files
        "/AlternatePresentations",  # slide shows, driven by scripts
        "/Renditions",  # the name tree of media renditions
        "/RichMediaContent",
        "/RichMediaSettings",
        "/3DD",  # a 3D annotation's stream (U3D/PRC, scriptable)
        "/Perms",  # usage rights that switch on form features in Reader
        # Not active, but personal: XMP metadata and private application data (earlier versions, authors).
        "/Metadata",
        "/PieceInfo",
    }
)
# Keys that hold an action where the holder is an annotation or an outline item; elsewhere /A can be a
# structure element's attributes or a measure's number format, which are left alone (a dictionary that looks
# like an action is removed anyway, wherever it is).
ACTION_SLOTS = ("/A", "/PA")
# Dictionaries that are removed from wherever they are referenced, by /Type or by /Subtype.
FORBIDDEN_TYPES = frozenset(
    {
        "/Action",
        "/EmbeddedFile",
        "/Filespec",
        "/Sound",
        "/Rendition",
        "/MediaClip",
        "/3D",
        "/RichMediaContent",
    }
)
FORBIDDEN_SUBTYPES = frozenset(
    {
        "/FileAttachment",
        "/Sound",
        "/Movie",
        "/Screen",
        "/RichMedia",
        "/3D",
        "/PS",
        "/U3D",
        "/PRC",
        "/Projection",
    }
)
# A stream's data in another file (ISO 32000-2 §7.3.8.2): a viewer could fetch it.
EXTERNAL_STREAM_KEYS = ("/F", "/FFilter", "/FDecodeParms")
MAX_PDF_NODES = 2_000_000  # dictionaries, arrays and their entries: far above any real evidence file

REFUSED_PDF = (
    "このPDFから実行される内容（スクリプト・フォーム・添付ファイルなど）を安全に取り除けませんでした。"
    "PDFとして印刷し直したもの、または画面のスクリーンショット（PNG・JPEG）を送ってください。"
    " / Active content could not be removed from this PDF safely: print it to a new PDF, or send screenshots."
)
UNREADABLE_PDF = (
    "このPDFを読み取れませんでした（破損しているか、パスワードで保護されています）。"
    "PDFとして印刷し直したもの、または画面のスクリーンショット（PNG・JPEG）を送ってください。"
    " / This PDF could not be read (damaged or password protected): print it to a new PDF, or send screenshots."
)


class _PdfNotClean(Exception):
    """Raised inside the cleaner; turned into the 422 the person sees."""


def _name(value: object) -> str | None:
    return str(value) if isinstance(value, pikepdf.Name) else None


def _is_container(value: object) -> TypeGuard[pikepdf.Dictionary | pikepdf.Stream]:
    return isinstance(value, pikepdf.Dictionary | pikepdf.Stream)


def _forbidden(value: object) -> bool:
    """An action, a file, media, 3D or rich media: nothing of it may stay reachable."""
    if not _is_container(value):
        return False
    d: Any = value
    keys = set(d.keys())  # one call into qpdf; most dictionaries have none of the keys below
    if "/S" in keys and _name(d.get("/S")) in ACTION_TYPES:
        return True
    if "/FS" in keys and _name(d.get("/FS")) == "/URL":  # a file on the web
        return True
    if "/Type" in keys and _name(d.get("/Type")) in FORBIDDEN_TYPES:
        return True
    return "/Subtype" in keys and _name(d.get("/Subtype")) in FORBIDDEN_SUBTYPES


def _holds_actions(d: Any) -> bool:
    """Annotations (a /Rect and a /Subtype) and outline items (a /Title) carry /A actions."""
    return ("/Rect" in d and "/Subtype" in d) or "/Title" in d


def _findings(pdf: pikepdf.Pdf) -> list[str]:
    """Every place in the file's objects that still holds active content; empty when the file is clean."""
    found: list[str] = []

    def check(d: Any, where: str) -> None:
        for key in d.keys():
            if key in ACTIVE_KEYS:
                found.append(f"{where} {key}")
            elif key in ACTION_SLOTS and _holds_actions(d):
                found.append(f"{where} {key}")
            elif isinstance(d, pikepdf.Stream) and key in EXTERNAL_STREAM_KEYS:
                found.append(f"{where} {key}")
        if _forbidden(d):
            found.append(f"{where} is active")

    _walk(pdf, check, lambda a, where: None)
    if pdf.is_encrypted:
        found.append("encrypted")
    return found


def _walk(pdf: pikepdf.Pdf, on_dict: Any, on_array: Any) -> None:
    """Call on_dict/on_array for every dictionary, stream and array of the file: each indirect object (qpdf
    lists those in object streams too) and everything nested in it, iteratively (no recursion limit to hit).
    Indirect objects met as values are not descended into here: they have their own turn."""
    budget = MAX_PDF_NODES
    roots: list[tuple[Any, str]] = [(pdf.trailer, "trailer")]
    for obj in pdf.objects:
        if _is_container(obj) or isinstance(obj, pikepdf.Array):
            roots.append((obj, "{} {} obj".format(*obj.objgen)))
    for root, where in roots:
        stack = [(root, where)]
        while stack:
            obj, at = stack.pop()
            budget -= 1
            if budget < 0:
                raise _PdfNotClean("too many objects")
            children: list[tuple[str | int, Any]]
            if _is_container(obj):
                on_dict(obj, at)
                children = [(k, obj.get(k)) for k in list(obj.keys())]
            else:
                on_array(obj, at)
                children = list(enumerate(obj))
            for label, child in children:
                if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
                    stack.append((child, f"{at}{label if isinstance(label, str) else f'[{label}]'}"))


def _strip(pdf: pikepdf.Pdf) -> None:
    def on_dict(d: Any, where: str) -> None:
        for key in list(d.keys()):
            if key not in d:
                continue
            value = d.get(key)
            if key in ACTION_SLOTS and (_holds_actions(d) or _forbidden(value)):
                _keep_destination(d, value)
                del d[key]
            elif key in ACTIVE_KEYS or _forbidden(value):
                del d[key]
            elif key == "/Annots" and isinstance(value, pikepdf.Array):
                kept = [a for a in value if _is_container(a) and not _forbidden(a)]
                if len(kept) != len(value):
                    d[key] = pikepdf.Array(kept)
            elif isinstance(d, pikepdf.Stream) and key in EXTERNAL_STREAM_KEYS:
                del d[key]

    def on_array(a: Any, where: str) -> None:
        for i, item in enumerate(list(a)):
            if _forbidden(item):
                a[i] = None  # keeps the positions of what follows (name trees pair names with values)

    _walk(pdf, on_dict, on_array)


def _keep_destination(holder: Any, action: object) -> None:
    """A bookmark or link that only went to a page keeps going there: its GoTo action becomes the plain
    destination (/Dest), which is data, not an action."""
    if not _is_container(action) or "/Dest" in holder:
        return
    a: Any = action
    if _name(a.get("/S")) != "/GoTo" or "/D" not in a or "/Next" in a:
        return
    destination = a.get("/D")
    if not isinstance(destination, pikepdf.Name | pikepdf.String | pikepdf.Array):
        return
    if "/Title" in holder or _name(holder.get("/Subtype")) == "/Link":
        holder["/Dest"] = destination


def _flatten_form_fields(pdf: pikepdf.Pdf) -> None:
    """Burn what was typed into form fields into the page: without the AcroForm (removed) some viewers,
    Acrobat among them, no longer show the fields, and their values can be the evidence. Other annotations
    (comments, links) are set aside meanwhile so they stay annotations. A widget qpdf could not draw (no
    appearance, none to generate) has nothing left to show without its form and is dropped. Safety does not
    depend on this step: what it leaves is stripped like everything else."""
    set_aside = []
    try:
        for page in pdf.pages:
            annots = page.obj.get("/Annots")
            if not isinstance(annots, pikepdf.Array):
                continue
            widgets = [a for a in annots if _is_container(a) and _name(a.get("/Subtype")) == "/Widget"]
            others = [a for a in annots if not (_is_container(a) and _name(a.get("/Subtype")) == "/Widget")]
            set_aside.append((page.obj, others))
            page.obj.Annots = pikepdf.Array(widgets)
        pdf.generate_appearance_streams()
        pdf.flatten_annotations("all")
    except Exception:  # noqa: BLE001, S110 - best effort, see above
        pass
    finally:
        for page_obj, others in set_aside:
            if others:
                page_obj.Annots = pikepdf.Array(others)
            elif "/Annots" in page_obj:
                del page_obj["/Annots"]


def _clean_pdf(data: bytes) -> bytes:
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            acroform = pdf.Root.get("/AcroForm")
            if (
                _is_container(acroform)
                and "/XFA" in acroform
                and bool(pdf.Root.get("/NeedsRendering", False))
            ):
                # A dynamic XFA form: the pages are a placeholder, the content is the XFA we must remove.
                raise _PdfNotClean("dynamic XFA")
            if len(pdf.pages) == 0:
                raise ValidationFailed("unreadable_pdf", detail=UNREADABLE_PDF, field="file")
            if _is_container(acroform):
                _flatten_form_fields(pdf)
            _strip(pdf)
            if "/Info" in pdf.trailer:
                del pdf.trailer["/Info"]
            out = io.BytesIO()
            pdf.save(
                out,
                deterministic_id=True,
                encryption=False,
                object_stream_mode=pikepdf.ObjectStreamMode.disable,
                compress_streams=True,
            )
        cleaned = out.getvalue()
        with pikepdf.open(io.BytesIO(cleaned)) as check:
            if _findings(check):
                raise _PdfNotClean("active content left")
        return cleaned
    except _PdfNotClean as exc:
        raise ValidationFailed("pdf_not_cleanable", detail=REFUSED_PDF, field="file") from exc
    except ValidationFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile input: whatever qpdf or a malformed graph raises, refuse
        raise ValidationFailed("unreadable_pdf", detail=UNREADABLE_PDF, field="file") from exc


class EvidenceStore:
    """The EvidenceFiles port on a blob store (infra/blobs.py: a local directory or S3-compatible storage);
    keys are random names, never anything the user sent."""

    def __init__(self, blobs: BlobStore, *, concurrency: int = 2) -> None:
        self.blobs = blobs
        # Decoding and re-encoding is CPU work: off the event loop, and only a few at a time.
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def store(self, data: bytes, key: CaseKey) -> EvidenceFile:
        # Two blobs through the same byte store (issue 16 §2): the original exactly as received, sealed (no route
        # serves it; only the domain's export reads it), and the cleaned copy staff open. Cleaning runs first, so
        # a file that is refused leaves nothing behind. Both are encrypted with the case's key (issue 17 §1),
        # bound to the case and to their own storage key; the hashes are of the plaintext.
        cleaned = await anyio.to_thread.run_sync(clean, data, limiter=self._limiter)
        original_key = f"{secrets.token_hex(16)}.{ORIGINAL_EXTENSION}"
        await self.blobs.put(
            original_key,
            seal(key.material, data, context=file_context(key, original_key)),
            content_type=STORED_TYPE,
        )
        copy_key = f"{secrets.token_hex(16)}.{EXTENSIONS[cleaned.content_type]}"
        await self.blobs.put(
            copy_key,
            seal(key.material, cleaned.data, context=file_context(key, copy_key)),
            content_type=STORED_TYPE,
        )
        return EvidenceFile(
            storage_key=copy_key,
            content_type=cleaned.content_type,
            size=len(cleaned.data),
            sha256=hashlib.sha256(data).hexdigest(),
            copy_sha256=cleaned.sha256,
            original_key=original_key,
            original_size=len(data),
        )

    async def open(self, storage_key: str, key: CaseKey) -> AsyncIterator[bytes]:
        stored = await self.blobs.get(storage_key)
        if not is_sealed(stored):
            # Stored before files were encrypted (issue 17): served as it is until re-encrypted.
            return _chunks(stored)
        plaintext = await anyio.to_thread.run_sync(
            lambda: unseal(key.material, stored, context=file_context(key, storage_key)),
            limiter=self._limiter,
        )
        return _chunks(plaintext)

    async def delete(self, storage_key: str) -> None:
        await self.blobs.delete(storage_key)


async def _chunks(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
