"""Text normalisation shared by every use case that compares or stores user-typed identifiers."""

from __future__ import annotations

import unicodedata


def nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def normalise_email(value: str) -> str:
    """NFKC folds full-width input typed on Japanese keyboards (ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ) to ASCII."""
    return nfkc(value).lower()
