"""Text rules shared by every front door (API schemas, the LINE webhook, the CLI) and every use case.

Two ideas, kept apart on purpose:

* **Stored as written.** What a person typed is kept exactly (①, ㈱, （続報）, ～！ and full-width spaces
  included): a consultation, a message or a piece of evidence is a record of someone's own words. Only line
  endings are unified to ``\\n`` and characters no database or screen can hold are refused (`bad_character`).
* **Folded where compared.** NFKC (and lower case) is applied to the *key* of a comparison only: e-mail
  addresses, codes, search needles and what they are matched against, passwords (infra/passwords.py), triage.
"""

from __future__ import annotations

import unicodedata

# Allowed in multi-line text only; every other C0/C1 control (NUL, ESC, DEL, NEL …) is refused everywhere.
MULTILINE_CONTROLS = frozenset("\t\n\r")
# Line and paragraph separators break a single line as surely as LF does.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def bad_character(value: str, *, multiline: bool = False) -> int | None:
    """Index of the first character this text may not contain, or None.

    Refused: C0 and C1 controls (PostgreSQL cannot store NUL; the others are invisible and used to hide or
    split text) except tab, CR and LF in multi-line text; lone surrogates (cannot be encoded as UTF-8);
    and in single-line text, Unicode line separators."""
    for i, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category == "Cs":
            return i
        if category == "Cc" and not (multiline and ch in MULTILINE_CONTROLS):
            return i
        if not multiline and ch in LINE_BREAKS:
            return i
    return None


def unify_line_endings(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def as_written_multiline(value: str) -> str:
    """Line endings unified; blank lines before the text and whitespace after it dropped. The first line's
    indentation (a full-width space opening a paragraph, 字下げ) is kept."""
    lines = unify_line_endings(value).rstrip().split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def as_written_line(value: str) -> str:
    """Surrounding spaces (ASCII and the ideographic U+3000) dropped; nothing inside changes."""
    return value.strip()


def nfkc(value: str) -> str:
    """The comparison key of a text: compatibility forms folded (ＡＢＣ → ABC, ① → 1). Never store it in
    place of what was written."""
    return unicodedata.normalize("NFKC", value).strip()


def normalise_email(value: str) -> str:
    """NFKC folds full-width input typed on Japanese keyboards (ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ) to ASCII. An
    address is an identifier that is matched (register, reset, sign-in, invitation), so it is stored folded."""
    return nfkc(value).lower()


def fold_url_prefix(url: str) -> str:
    """Fold the scheme and host of a URL typed in full width (ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｊｐ), as IDNA
    mapping (UTS #46) does for hosts, up to the delimiter that ends the host; path, query and fragment stay
    as written, since on most sites /記事/① and /記事/1 are different pages."""
    seen_slashes = 0
    for i, ch in enumerate(url):
        folded = unicodedata.normalize("NFKC", ch)
        if folded == "/":
            seen_slashes += 1
            if seen_slashes == 3:
                return nfkc(url[: i + 1]) + url[i + 1 :]
        elif folded in ("?", "#") and seen_slashes >= 2:
            return nfkc(url[: i + 1]) + url[i + 1 :]
    return nfkc(url) if seen_slashes >= 2 else url
