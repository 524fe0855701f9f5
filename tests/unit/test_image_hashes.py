"""The reference for device-side hashing (infra/image_hashes.py) on real pictures: PDQ via pdqhash, hex in
ThreatExchange's form; the same picture resized and re-encoded stays within the match distance, another
picture does not."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from domain.consultations import ConsultationPolicy, ImageHashes, check_image_hashes, pdq_distance
from domain.errors import ValidationFailed
from infra.image_hashes import image_hashes, pdq_hex
from tests.pictures import encode, picture, resized_jpeg

MATCH = ConsultationPolicy().pdq_match_distance


def test_hashes_of_a_png() -> None:
    data = encode(picture(1))
    h = image_hashes(data)
    assert h.sha256 == hashlib.sha256(data).hexdigest()
    assert len(h.pdq) == 64 and int(h.pdq, 16) >= 0 and h.pdq == h.pdq.lower()
    assert (h.width, h.height) == (480, 360)
    assert h.pdq_quality >= ConsultationPolicy().pdq_min_quality
    assert image_hashes(data) == h  # deterministic


def test_same_picture_resized_and_reencoded_matches_and_another_does_not() -> None:
    original = image_hashes(encode(picture(1)))
    travelled = image_hashes(resized_jpeg(picture(1)))
    other = image_hashes(encode(picture(2)))
    assert travelled.sha256 != original.sha256  # different bytes ...
    assert pdq_distance(original.pdq, travelled.pdq) <= MATCH  # ... the same picture
    assert pdq_distance(original.pdq, other.pdq) > 2 * MATCH  # far apart: not a near miss


def test_modes_and_orientation() -> None:
    grey = image_hashes(encode(picture(3).convert("L")))
    palette = image_hashes(encode(picture(3).convert("P")))
    rgba = image_hashes(encode(picture(3).convert("RGBA")))
    colour = image_hashes(encode(picture(3)))
    for h in (grey, palette, rgba):
        assert pdq_distance(h.pdq, colour.pdq) <= MATCH
    # EXIF orientation 6 (rotate 90° clockwise to view): hashed as shown, like the upright picture.
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = picture(3).transpose(Image.Transpose.ROTATE_90)
    shown = image_hashes(encode(turned, "JPEG", exif=exif, quality=95))
    assert (shown.width, shown.height) == (480, 360)
    assert pdq_distance(shown.pdq, colour.pdq) <= MATCH


def test_a_blank_picture_has_no_quality_and_is_refused() -> None:
    blank = image_hashes(encode(Image.new("RGB", (300, 300), (128, 128, 128))))
    assert blank.pdq_quality < ConsultationPolicy().pdq_min_quality
    with pytest.raises(ValidationFailed) as refused:
        check_image_hashes(blank, min_quality=ConsultationPolicy().pdq_min_quality)
    assert refused.value.code == "pdq_quality_too_low"


def test_not_an_image() -> None:
    with pytest.raises(ValueError):
        image_hashes(b"%PDF-1.7\n...")


def test_hex_form_is_big_endian_over_pdqhash_bits() -> None:
    bits = [1] + [0] * 254 + [1]
    import numpy as np

    assert pdq_hex(np.array(bits)) == "8" + "0" * 62 + "1"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sha256": "a" * 63}, "invalid_hash"),
        ({"pdq": "g" * 64}, "invalid_hash"),
        ({"pdq_quality": 101}, "invalid_hash"),
        ({"pdq_quality": 49}, "pdq_quality_too_low"),
        ({"width": 0}, "invalid_image_size"),
    ],
)
def test_strict_checks(change: dict[str, object], code: str) -> None:
    good = {"sha256": "A" * 64, "pdq": "0f" * 32, "pdq_quality": 100, "width": 10, "height": 10}
    assert check_image_hashes(ImageHashes(**good), min_quality=50).sha256 == "a" * 64  # stored lower-case
    with pytest.raises(ValidationFailed) as refused:
        check_image_hashes(ImageHashes(**{**good, **change}), min_quality=50)  # type: ignore[arg-type]
    assert refused.value.code == code
