"""domain/text.py: what may be stored, what is kept as written, and the folding used only for comparison."""

from __future__ import annotations

import pytest

from domain.text import as_written_line, as_written_multiline, bad_character, fold_url_prefix, normalise_email


@pytest.mark.parametrize(
    "value", ["\x00", "a\x1bb", "\x7f", "\x85", "\ud800", "a\tb", "a\nb", "a\rb", "\u2028"]
)
def test_one_line_text_refuses_controls_surrogates_and_line_breaks(value: str) -> None:
    assert bad_character(value) is not None


def test_multi_line_text_allows_tab_and_line_breaks_only() -> None:
    assert bad_character("一、\t削除\r\n二、特定\n", multiline=True) is None
    assert bad_character("一、\x00", multiline=True) == 2
    assert bad_character("\x0b", multiline=True) == 0


@pytest.mark.parametrize("value", ["①㈱ＡＢＣ～！（続報）", "ﾔﾏﾀﾞ　ﾊﾅｺ", "👩‍👧 家族で相談", "Ⅱ期・㍻・№"])
def test_japanese_and_compatibility_characters_are_allowed_and_kept(value: str) -> None:
    assert bad_character(value) is None and bad_character(value, multiline=True) is None
    assert as_written_line(value) == value and as_written_multiline(value) == value


def test_multi_line_text_unifies_line_endings_and_keeps_the_opening_indent() -> None:
    assert as_written_multiline("\r\n\r\n　一行目\r\n二行目\r三行目 \n\n") == "　一行目\n二行目\n三行目"


def test_addresses_fold_full_width_and_case() -> None:
    assert normalise_email(" ＨＡＮＡＫＯ＠ｅｘａｍｐｌｅ．ｊｐ ") == "hanako@example.jp"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｊｐ／記事／①", "https://example.jp/記事／①"),
        ("https://example.jp/①?q=㈱#２", "https://example.jp/①?q=㈱#２"),
        ("ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｊｐ？ｑ＝１", "https://example.jp?ｑ＝１"),
        ("ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｊｐ", "https://example.jp"),
        ("not a url ①", "not a url ①"),
    ],
)
def test_only_the_scheme_and_host_of_a_url_are_folded(typed: str, stored: str) -> None:
    assert fold_url_prefix(typed) == stored
