"""Evidence files: recognised by content, image metadata stripped, stored under a server-chosen name."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

import anyio
import pikepdf
from PIL import Image, ImageOps, UnidentifiedImageError

from domain.consultations import EvidenceFile
from domain.errors import ValidationFailed

MAX_PIXELS = 40_000_000  # about 6,300 × 6,300: any real screenshot, and ~160 MiB decoded at most
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
)
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}


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


# Names in a PDF that run something or carry hidden content when a viewer opens the file.
ACTIVE_KEYS = ("/OpenAction", "/AA", "/JavaScript", "/JS", "/Launch", "/EmbeddedFiles", "/RichMedia", "/XFA")


def _clean_pdf(data: bytes) -> bytes:
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            for name in ("/OpenAction", "/AA", "/Metadata"):
                if name in pdf.Root:
                    del pdf.Root[name]
            names = pdf.Root.get("/Names")
            if names is not None:
                for name in ("/JavaScript", "/EmbeddedFiles"):
                    if name in names:
                        del names[name]
            acroform = pdf.Root.get("/AcroForm")
            if acroform is not None and "/XFA" in acroform:
                del acroform["/XFA"]
            for page in pdf.pages:
                if "/AA" in page.obj:
                    del page.obj["/AA"]
                for annot in page.obj.get("/Annots", []):
                    for name in ("/A", "/AA"):
                        if name in annot:
                            del annot[name]
            if "/Info" in pdf.trailer:
                del pdf.trailer["/Info"]
            out = io.BytesIO()
            pdf.save(out, deterministic_id=True)
            return out.getvalue()
    except pikepdf.PdfError as exc:
        raise ValidationFailed("unreadable_pdf", field="file") from exc


class LocalEvidenceFiles:
    """The EvidenceFiles port on a local directory; keys are random names, never anything the user sent."""

    def __init__(self, root: Path, *, concurrency: int = 2) -> None:
        self.root = Path(root)
        # Decoding and re-encoding is CPU work: off the event loop, and only a few at a time.
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def store(self, data: bytes) -> EvidenceFile:
        return await anyio.to_thread.run_sync(self._store, data, limiter=self._limiter)

    def _store(self, data: bytes) -> EvidenceFile:
        cleaned = clean(data)
        key = self._put(cleaned.data, EXTENSIONS[cleaned.content_type])
        return EvidenceFile(
            storage_key=key, content_type=cleaned.content_type, size=len(cleaned.data), sha256=cleaned.sha256
        )

    def _put(self, data: bytes, extension: str) -> str:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = f"{secrets.token_hex(16)}.{extension}"
        path = self.root / key
        with open(path, "xb") as handle:
            handle.write(data)
        os.chmod(path, 0o600)
        return key

    def read(self, key: str) -> bytes:
        if "/" in key or "\\" in key or key.startswith("."):
            raise ValueError("bad storage key")
        return (self.root / key).read_bytes()
