"""The council's masking, on realistic Japanese consultation text with every kind of identifier."""

from __future__ import annotations

import pytest

from domain.anonymise import Masker, Span, mask, suppress_small
from infra.morphology import SudachiProperNouns

TEXT = (
    "はじめまして。私は山田花子と申します。先月から、元同僚の佐藤健一さんと思われるアカウント@sato_ken_88 が、"
    "X（https://x.com/sato_ken_88/status/1859000000000000000）で私の住所「東京都新宿区西新宿2-8-1」と"
    "電話番号090-1234-5678、メールアドレス hanako.yamada@example.jp を晒しています。"
    "〒160-0023 の郵便番号まで書かれました。LINE ID: hanako_y0812 も載せられ、知らない人から連絡が来ます。"
    "会社の代表番号 03-5321-1111 にも電話がありました。爆サイでは ID:Ab12Cd34 の投稿者が同じことを書いています。"
    "名前はヤマダハナコとカタカナでも書かれています。"
)


def test_every_kind_of_identifier_is_masked() -> None:
    out = mask(TEXT)
    assert out is not None
    for leaked in (
        "山田花子",
        "佐藤健一",
        "sato_ken_88",
        "x.com",
        "新宿区西新宿2-8-1",
        "090-1234-5678",
        "hanako.yamada@example.jp",
        "160-0023",
        "hanako_y0812",
        "03-5321-1111",
        "Ab12Cd34",
        "ヤマダハナコ",
    ):
        assert leaked not in out, leaked
    for mask_text in (
        "［氏名］",
        "［アカウントID］",
        "［URL］",
        "［住所］",
        "［電話番号］",
        "［メールアドレス］",
        "［郵便番号］",
        "［LINE ID］",
    ):
        assert mask_text in out, mask_text
    # What is not personal data stays, so the council can still judge the handling.
    assert "晒しています" in out and "爆サイ" in out and "先月から" in out


def test_known_identifiers_are_masked_wherever_they_appear() -> None:
    out = mask("はなこ（実名）の件で、母の山田良子がお電話しました。", known=["はなこ", "山田良子"])
    assert out == "［氏名］(実名)の件で、母の［氏名］がお電話しました。"  # NFKC folds the full-width brackets


def test_dates_prices_and_times_are_not_phone_numbers_and_dates_keep_only_the_month() -> None:
    out = mask("2026年11月20日 21:15 に投稿。損害は 300000 円。2026/10/03 にも投稿。")
    assert out == "2026年11月●日 21:15 に投稿。損害は 300000 円。2026/10/● にも投稿。"


def test_full_width_input_is_normalised_first() -> None:
    out = mask("電話は０９０−１２３４−５６７８、メールはｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐです")
    assert out is not None and "1234" not in out and "taro" not in out


def test_small_counts_are_suppressed() -> None:
    # A single small count would be the total minus the others: the next smallest is withheld with it. A zero
    # points at nobody and is shown.
    assert suppress_small({"web": 12, "line": 4, "chatbot": 0}) == {"web": None, "line": None, "chatbot": 0}
    assert suppress_small({"web": 12, "line": 4, "chatbot": 7}) == {"web": 12, "line": None, "chatbot": None}


def test_names_found_anywhere_in_a_case_are_collected() -> None:
    from domain.anonymise import names_in

    found = names_in(["私は山田花子です。", "佐藤健一さんが投稿", None])
    assert {"山田花子", "佐藤健一"} <= found
    assert mask("山田花子は嘘つき", known=found) == "［氏名］は嘘つき"


# -- every kind the council must not see, with the morphological analyser the service uses -----------------

PLANTED = [
    # (kind, text, what must not show)
    ("name without honorific", "元彼の佐藤健太に写真を拡散されました。", "佐藤健太"),
    ("name after は", "加害者は田中一郎です。毎日書き込んでいます。", "田中一郎"),
    ("name with honorific", "同僚の木下さんが言いふらしています。", "木下"),
    ("given name alone", "娘の陽菜の写真が載っています。", "陽菜"),
    ("romaji name", "Xで Kenta Sato という名前のアカウントが中傷しています。", "Kenta Sato"),
    ("katakana name", "同級生のスズキミオにLINEで悪口を書かれました。", "スズキミオ"),
    ("phone in kanji digits", "掲示板に〇九〇・四四一二・八八三七と番号を書かれました。", "四四一二"),
    (
        "phone in kana words",
        "番号を「ぜろきゅうぜろ、いちにさんよん、ごろくななはち」と書かれた。",
        "いちにさんよん",
    ),
    ("phone in digits", "携帯090-8765-4321に電話が来ます。", "8765"),
    ("address in kanji numerals", "実家の住所「埼玉県川口市栄町三丁目五番十二号」を書かれた。", "栄町三丁目"),
    (
        "address with hyphens",
        "住所の大阪府大阪市北区梅田1-2-3 グランドハイツ梅田805号室が晒された。",
        "梅田1-2-3",
    ),
    ("postal code", "〒530-0001 の郵便番号まで書かれました。", "530-0001"),
    ("company and department", "勤務先の株式会社ミドリ商事 営業二課に電話が来ます。", "ミドリ商事"),
    ("department", "勤務先の株式会社ミドリ商事 営業二課に電話が来ます。", "営業二課"),
    ("school", "学校は市立桜ヶ丘中学校です。", "桜ヶ丘中学校"),
    ("class", "クラスは2年3組です。", "2年3組"),
    ("handle without @", "プロフィールには sato_kenta_0415 と書かれています。", "sato_kenta_0415"),
    ("handle with @", "@night_owl_x というアカウントからDMが来ました。", "night_owl_x"),
    ("LINE id", "「LINE: takuya_0822 に連絡して」と言われました。", "takuya_0822"),
    ("short URL", "リンク先は bit.ly/3xKq9Zt と https://t.co/AbC12dEfG です。", "3xKq9Zt"),
    ("t.co URL", "リンク先は bit.ly/3xKq9Zt と https://t.co/AbC12dEfG です。", "AbC12dEfG"),
    ("IP address", "投稿元のIPアドレスは 203.0.113.45 です。", "203.0.113.45"),
    ("IPv6 address", "アクセス元は 2001:db8:85a3::8a2e:370:7334 でした。", "8a2e"),
    ("My Number", "マイナンバー 1234 5678 9012 が写っています。", "5678"),
    ("My Number in kanji", "個人番号は四五六七 八九〇一 二三四五 です。", "八九〇一"),
    ("licence plate", "ナンバーの「品川 330 さ 12-34」まで写っています。", "330 さ"),
    ("birth date", "生年月日の1995年7月3日も見えています。", "7月3日"),
    ("birth date in era", "私の生年月日 平成10年2月14日 まで書かれた。", "平成10年"),
    ("obfuscated e-mail", "アドレスは mika.h1990 at gmail dot com です。", "mika.h1990"),
    ("obfuscated e-mail, brackets", "アドレスは rk.love[at]docomo.ne.jp です。", "rk.love"),
    ("e-mail", "連絡先は hanako.yamada@example.jp です。", "hanako.yamada"),
    ("bank account", "振込先は 普通 1234567 です。", "1234567"),
    ("card number", "カード番号 4980 1234 5678 9012 を入れました。", "9012"),
    ("station", "最寄り駅の武蔵小杉駅の写真が添付されていました。", "武蔵小杉"),
]


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(SudachiProperNouns())


@pytest.mark.parametrize(("kind", "text", "leaked"), PLANTED, ids=[p[0] for p in PLANTED])
def test_each_kind_of_identifier_is_masked(masker: Masker, kind: str, text: str, leaked: str) -> None:
    out = masker.mask(text)
    assert out is not None and leaked not in out and "［" in out, (kind, out)


def test_several_phone_numbers_of_different_forms_in_one_text(masker: Masker) -> None:
    out = masker.mask(
        "番号は〇九〇・四四一二・八八三七、別の番号は「ぜろはちぜろ、いちいちいちいち、にいにいにいに」です。"
    )
    assert out == "番号は［電話番号］、別の番号は「［電話番号］」です。"


def test_the_masked_text_stays_readable(masker: Masker) -> None:
    out = masker.mask(
        "元彼の佐藤健太に、付き合っていた頃の写真をインスタに載せられました。佐藤健太は「職場にばらす」と言っています。"
    )
    assert out == (
        "元彼の［氏名］に、付き合っていた頃の写真をインスタに載せられました。［氏名］は「職場にばらす」と言っています。"
    )
    # Ordinary words after a relation word are not names: the analyser knows them.
    assert (
        masker.mask("相手は不倫相手の女性で、元職場の人です。") == "相手は不倫相手の女性で、元職場の人です。"
    )


def test_a_name_found_in_one_field_is_masked_in_every_field(masker: Masker) -> None:
    known = masker.names_in(["加害者は田中一郎です。", None])
    assert "田中一郎" in known
    assert masker.mask("一郎ではなく田中一郎が書いた", known) == "［氏名］ではなく［氏名］が書いた"


class OneName:
    """A fake analyser: the domain only knows the port."""

    def find(self, text: str) -> list[Span]:
        start = text.find("黒羽根")
        return [Span(start, start + 3, "name")] if start >= 0 else []

    def is_common(self, word: str) -> bool:
        return False


def test_the_masker_uses_what_the_analyser_finds() -> None:
    assert mask("投稿したのは黒羽根です。") == "投稿したのは黒羽根です。"  # no pattern knows this name
    assert Masker(OneName()).mask("投稿したのは黒羽根です。") == "投稿したのは［氏名］です。"
