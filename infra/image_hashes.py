"""The reference for hashing a picture on the person's device (issue 16 §1): SHA-256 of the file's bytes, the
PDQ perceptual hash (Meta's, the one StopNCII and Take It Down match on) and the picture's size. Front ends
that hash on the device (a LIFF page, the my-page) must give the same values as `image_hashes` for the same
file; the tests use it to make what the API receives. The server uses it too, for images it is sent.

PDQ through `pdqhash` (Python bindings of Meta's reference C++ code). The hex form follows ThreatExchange's
`pdq_hasher`: the 256 bits in pdqhash's order, read as one big-endian number, 64 lower-case hex digits. EXIF
orientation is applied first, as a viewer shows the picture, and the picture is decoded as RGB (greyscale,
palette and alpha images included).
"""

from __future__ import annotations

import hashlib
import io
import warnings

import anyio
import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from domain.consultations import ImageHashes
from infra.storage import MAX_PIXELS


def pdq_hex(bits: np.ndarray) -> str:
    return f"{int(''.join(str(int(b)) for b in bits), 2):064x}"


def image_hashes(data: bytes) -> ImageHashes:
    """SHA-256, PDQ (with quality) and size of an image file. Raises ValueError for what is not an image
    Pillow can decode, or one larger than the upload limit allows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ValueError("image too large")
                image.load()
                upright = ImageOps.exif_transpose(image).convert("RGB")
    except (
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise ValueError("not a readable image") from exc
    bits, quality = pdqhash.compute(np.asarray(upright))
    return ImageHashes(
        sha256=hashlib.sha256(data).hexdigest(),
        pdq=pdq_hex(bits),
        pdq_quality=int(quality),
        width=upright.width,
        height=upright.height,
    )


class PdqImageHasher:
    """The ImageHasher port: hashes of uploaded images, off the event loop and a few at a time."""

    def __init__(self, *, concurrency: int = 2) -> None:
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def hashes(self, data: bytes) -> ImageHashes | None:
        if data.startswith(b"%PDF-"):
            return None
        try:
            return await anyio.to_thread.run_sync(image_hashes, data, limiter=self._limiter)
        except ValueError:
            return None
