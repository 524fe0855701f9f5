"""Texts in several languages, kept as data: `<name>_<language>` keys beside each other (text_ja, text_en, ...).

Japanese is the language every text has; a file declares the further languages it speaks (`languages: [ja,
en]`) and validation refuses a declared language with a missing text, a text in an undeclared language, or a
translation whose {placeholders} differ from the Japanese ones. A further language (zh, ko, vi, pt, ...) is then
only data. Standard library only (domain rule).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from domain.errors import ValidationFailed

__all__ = [
    "BASE",
    "LANGUAGE",
    "choose_language",
    "language_list_problems",
    "pick",
    "split_key",
    "text_problems",
]

BASE = "ja"  # every text exists in Japanese; the fallback
LANGUAGE = re.compile(r"^[a-z]{2,3}$")  # ISO 639-1/-2 codes, lower case
_KEY = re.compile(r"^([a-z][a-z_]*?)_([a-z]{2,3})$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def split_key(key: object) -> tuple[str, str] | None:
    """("text", "en") for "text_en"; None for a key that is not a text of some language."""
    if not isinstance(key, str):
        return None
    m = _KEY.match(key)
    return (m.group(1), m.group(2)) if m else None


def pick(texts: Mapping[str, str], name: str, lang: str) -> str:
    """The text `name` in `lang`, else in Japanese, else ""."""
    return texts.get(f"{name}_{lang}") or texts.get(f"{name}_{BASE}", "")


def text_problems(
    texts: Mapping[str, str], languages: Sequence[str], where: str, *, names: Iterable[str] | None = None
) -> list[str]:
    """Missing translations, texts in undeclared languages and placeholder mismatches of one entry."""
    problems: list[str] = []
    declared = set(languages)
    wanted = set(names) if names is not None else None
    for key in sorted(texts):
        parts = split_key(key)
        if parts is None or (wanted is not None and parts[0] not in wanted):
            continue
        name, lang = parts
        if lang not in declared:
            problems.append(f"{where}: '{key}' is in a language not declared in 'languages'")
        elif lang != BASE and f"{name}_{BASE}" not in texts:
            problems.append(f"{where}: '{key}' has no Japanese '{name}_{BASE}'")
        if lang == BASE:
            expected = set(_PLACEHOLDER.findall(texts[key]))
            for other in languages:
                other_key = f"{name}_{other}"
                if other == BASE:
                    continue
                if other_key not in texts or not texts[other_key].strip():
                    problems.append(f"{where}: missing '{other_key}' (declared language '{other}')")
                elif set(_PLACEHOLDER.findall(texts[other_key])) != expected:
                    problems.append(f"{where}: '{other_key}' has other placeholders than '{key}'")
    return problems


def language_list_problems(languages: Sequence[str], where: str) -> list[str]:
    problems = [f"{where}: malformed language code '{x}'" for x in languages if not LANGUAGE.match(x)]
    if BASE not in languages:
        problems.append(f"{where}: 'languages' must include '{BASE}'")
    if len(set(languages)) != len(languages):
        problems.append(f"{where}: a language is listed twice")
    return problems


def choose_language(requested: str | None, accept_language: str | None, supported: Sequence[str]) -> str:
    """The language to speak: `requested` when given (UnsupportedLanguage if it is not supported), else the
    best supported one of an Accept-Language header (RFC 9110 q-values, primary subtags), else Japanese.
    An unsupported `requested` language is a 422 `unsupported_language`; an unsupported Accept-Language is
    ignored (the header is a preference, not a demand)."""
    if requested is not None:
        lang = requested.strip().lower()
        if lang not in supported:
            raise ValidationFailed("unsupported_language", field="language")
        return lang
    best, best_q = BASE, 0.0
    for part in (accept_language or "")[:512].split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        # Ties keep the earlier entry; q=0 means "not this one".
        if primary in supported and q > best_q:
            best, best_q = primary, q
    return best
