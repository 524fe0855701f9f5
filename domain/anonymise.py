"""Masking for the promotion council's view: names, e-mail addresses, phone numbers, postal addresses, URLs,
account IDs and LINE IDs are replaced in every text field before a council member sees it. The masks keep
the kind of what was removed (［電話番号］), so the case stays readable."""

from __future__ import annotations

import re
from collections.abc import Iterable

from domain.text import nfkc

MASKS = {
    "email": "［メールアドレス］",
    "url": "［URL］",
    "phone": "［電話番号］",
    "postal": "［郵便番号］",
    "address": "［住所］",
    "line_id": "［LINE ID］",
    "account": "［アカウントID］",
    "name": "［氏名］",
}

PREFECTURES = (
    "北海道|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|東京都|神奈川県|新潟県|富山県|"
    "石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|京都府|大阪府|兵庫県|奈良県|和歌山県|鳥取県|島根県|"
    "岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)
KANJI_NAME = r"[\u4e00-\u9fff々]{1,4}"
KANA_NAME = r"[\u30a1-\u30fa\u30fc]{2,8}|[\u3041-\u3096]{2,6}"

# Order matters: URLs before account handles (an @ in a URL), e-mail before handles, LINE IDs before
# generic IDs, phone numbers before postal codes (both are digit groups with hyphens).
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    (
        "url",
        re.compile(
            r"(?:https?://|www\.)[^\s　「」『』（）()<>]+|\b[a-z0-9-]+\.(?:com|jp|net|org|co\.jp|ne\.jp)/\S*",
            re.IGNORECASE,
        ),
    ),
    (
        "line_id",
        re.compile(
            r"(?:LINE\s*ID|LINEのID|ラインID|ＬＩＮＥ\s*ＩＤ)\s*[:：は]?\s*[@]?[A-Za-z0-9._-]{3,30}",
            re.IGNORECASE,
        ),
    ),
    (
        "account",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])@[A-Za-z0-9_]{2,30}|\bID\s*[:：]\s*[A-Za-z0-9._/+-]{3,30}", re.IGNORECASE
        ),
    ),
    ("phone", re.compile(r"(?<![\d-])(?:\+81[-\s]?|0)\d{1,4}[-\s(]?\d{1,4}[-\s)]?\d{3,4}(?![\d-])|#\d{4}")),
    ("postal", re.compile(r"〒\s*\d{3}-?\d{4}|(?<![\d-])\d{3}-\d{4}(?![\d-])")),
    (
        "address",
        re.compile(
            rf"(?:{PREFECTURES})?[\u4e00-\u9fff々ヶケ]{{1,6}}[市区町村郡](?:[\u4e00-\u9fff々ヶケ]{{1,6}}[区町村])?"
            r"[\u4e00-\u9fff々ヶケ\u30a0-\u30ff]{0,8}\d+(?:丁目|-)\d+(?:番地?|-)?(?:\d+号?)?"
            rf"|(?:{PREFECTURES})[\u4e00-\u9fff々ヶケ]{{1,6}}[市区町村郡]"
        ),
    ),
    (
        "name",
        re.compile(rf"(?:{KANJI_NAME}|{KANA_NAME})(?=(?:さん|様|さま|くん|君|ちゃん|氏|先生|容疑者|被告))"),
    ),
]

# Names introduced by a phrase: the phrase stays, the name goes (group 1 is kept).
INTRODUCED_NAMES = [
    re.compile(
        rf"((?:名前は|氏名は|実名は|本名は|名前が|実名が|本名が|私は|僕は|私、|母の|父の|娘の|息子の|夫の|妻の)\s*)"
        rf"(?:{KANJI_NAME}\s?{KANJI_NAME}|{KANA_NAME}|{KANJI_NAME})(?=と|が|を|に|の|で|です|、|。|\s|$)"
    ),
    re.compile(rf"([（(]実名[:：]?\s*){KANJI_NAME}\s?{KANJI_NAME}?(?=[)）])"),
]

# NFKC leaves the minus sign and long-vowel marks that IMEs put between digits (０９０−１２３４).
DASH_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\u2010-\u2015\u2212\u30fc\uff70\uff0d](?=\d)")


# Digits in prices, dates and times look like phone numbers to the pattern above: only a run of 10 or 11
# digits (after removing separators), or a #xxxx short code, is taken as a phone number.
def _is_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return (
        candidate.startswith("#")
        or len(digits) in (10, 11)
        or (candidate.startswith("+81") and len(digits) >= 10)
    )


def mask(text: str | None, known: Iterable[str] = ()) -> str | None:
    """Mask personal data in `text`; `known` holds identifiers known to belong to people in this case (the
    consulter's name and address), masked wherever they appear."""
    if text is None:
        return None
    out = DASH_BETWEEN_DIGITS.sub("-", nfkc(text))
    for value in sorted({nfkc(k) for k in known if k and len(nfkc(k)) >= 2}, key=len, reverse=True):
        out = out.replace(value, MASKS["name"] if "@" not in value else MASKS["email"])
    for kind, pattern in PATTERNS:
        if kind == "phone":
            out = pattern.sub(lambda m: MASKS["phone"] if _is_phone(m.group(0)) else m.group(0), out)
        else:
            out = pattern.sub(MASKS[kind], out)
    for pattern in INTRODUCED_NAMES:
        out = pattern.sub(lambda m: m.group(1) + MASKS["name"], out)
    return out


def names_in(texts: Iterable[str | None]) -> set[str]:
    """Names the patterns recognise anywhere in a case, so each is masked in every field of that case,
    also where it stands bare (山田花子は…)."""
    found: set[str] = set()
    for text in texts:
        if not text:
            continue
        normalised = nfkc(text)
        for kind, pattern in PATTERNS:
            if kind == "name":
                found.update(m.group(0).strip() for m in pattern.finditer(normalised))
        for pattern in INTRODUCED_NAMES:
            found.update(m.group(0)[len(m.group(1)) :].strip() for m in pattern.finditer(normalised))
    return {n for n in found if len(n) >= 2}


def suppress_small(counts: dict[str, int], threshold: int = 5) -> dict[str, int | None]:
    """Counts below the threshold become None, so a rare combination cannot point at one person."""
    return {k: (v if v >= threshold else None) for k, v in counts.items()}
