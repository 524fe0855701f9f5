"""The council's masking, on realistic Japanese consultation text with every kind of identifier."""

from __future__ import annotations

from domain.anonymise import mask, suppress_small

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


def test_dates_prices_and_times_are_not_phone_numbers() -> None:
    out = mask("2026年11月20日 21:15 に投稿。損害は 300000 円。")
    assert out == "2026年11月20日 21:15 に投稿。損害は 300000 円。"


def test_full_width_input_is_normalised_first() -> None:
    out = mask("電話は０９０−１２３４−５６７８、メールはｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐです")
    assert out is not None and "1234" not in out and "taro" not in out


def test_small_counts_are_suppressed() -> None:
    assert suppress_small({"web": 12, "line": 4, "chatbot": 0}) == {"web": 12, "line": None, "chatbot": None}


def test_names_found_anywhere_in_a_case_are_collected() -> None:
    from domain.anonymise import names_in

    found = names_in(["私は山田花子です。", "佐藤健一さんが投稿", None])
    assert {"山田花子", "佐藤健一"} <= found
    assert mask("山田花子は嘘つき", known=found) == "［氏名］は嘘つき"
