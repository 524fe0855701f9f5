"""Real pictures for the hashing tests, drawn with Pillow: shapes and a gradient from a seed, so two seeds give
two unrelated pictures and the same seed the same one."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def picture(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    rng = random.Random(seed)
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(20, width // 2), y0 + rng.randrange(20, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def resized_jpeg(image: Image.Image, factor: float = 0.5, quality: int = 70) -> bytes:
    """The same picture as it travels: scaled down and re-encoded as a lossy JPEG."""
    small = image.resize((int(image.width * factor), int(image.height * factor)), Image.Resampling.LANCZOS)
    return encode(small, "JPEG", quality=quality)
