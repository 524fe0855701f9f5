"""Evidence files: recognised by content, image metadata stripped, stored under a server-chosen name."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from domain.consultations import EvidenceFile
from domain.errors import ValidationFailed

Image.MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: about 6,300 × 6,300

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
    """Re-encode images so EXIF (GPS, device, time) and text chunks are dropped; PDFs are kept as sent.
    The SHA-256 is of the stored bytes, so a later download can be checked against it."""
    content_type = sniff(data)
    if content_type != "application/pdf":
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
                out = io.BytesIO()
                if content_type == "image/jpeg":
                    upright.convert("RGB").save(out, "JPEG", quality=92)
                else:
                    upright.save(out, "PNG")
                data = out.getvalue()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
            raise ValidationFailed("unreadable_image", field="file") from exc
    elif b"%%EOF" not in data[-2048:]:
        raise ValidationFailed("unreadable_pdf", field="file")
    return CleanFile(data, content_type, hashlib.sha256(data).hexdigest())


class LocalEvidenceFiles:
    """The EvidenceFiles port on a local directory; keys are random names, never anything the user sent."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def store(self, data: bytes) -> EvidenceFile:
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
