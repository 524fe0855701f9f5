"""The one Japanese font the service draws with: IPAexGothic, installed with the project.

It comes in the `matplotlib-fontja` wheel (IPA Font License v1.0), so letters, reports, charts and the LINE rich
menu render Japanese on any machine without a system font. PDFs embed the glyphs they use (subset).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

FONT_FAMILY = "IPAexGothic"


@cache
def japanese_font_path() -> Path:
    """Path of IPAexGothic (TrueType). Raises if the package is missing: there is no silent fallback."""
    path = Path(str(files("matplotlib_fontja") / "fonts" / "ipaexg.ttf"))
    if not path.is_file():
        raise FileNotFoundError(f"IPAexGothic not found at {path}: is matplotlib-fontja installed?")
    return path
