"""Issue 13 item 3: a council member reading a sampled closed case through
`GET /v1/council/samples/{id}/items/{p}` sees no name and no identifier of any kind planted in it, in any
field, and gets only what the review needs: structured fields, the month, day offsets and masked text."""

from __future__ import annotations

import re

from domain.actors import Role
from tests.api.consultation_helpers import answer, etag, open_consultation, take
from tests.clock import period_around_suite

PERIOD = {"period_from": period_around_suite()["from"], "period_to": period_around_suite()["to"]}

# The 20 kinds of identifier the probe planted, each in a sentence a consulter would write, with the fragment
# that must not reach the council.
PLANTED = [
    ("name without honorific", "元彼の佐藤健太に写真を拡散されました。", "佐藤健太"),
    ("name after 加害者は", "加害者は田中一郎です。", "田中一郎"),
    ("name with honorific", "同僚の木下さんも見ています。", "木下"),
    ("romaji name", "Xでは Kenta Sato と名乗っています。", "Kenta Sato"),
    ("katakana name", "同級生のスズキミオもグループにいます。", "スズキミオ"),
    ("phone in kanji digits", "番号は〇九〇・四四一二・八八三七と書かれました。", "四四一二"),
    (
        "phone in words",
        "「ぜろきゅうぜろ、いちにさんよん、ごろくななはち」とも書かれました。",
        "いちにさんよん",
    ),
    ("address in kanji numerals", "実家の「埼玉県川口市栄町三丁目五番十二号」も書かれています。", "栄町"),
    ("company and department", "勤務先の株式会社ミドリ商事 営業二課にも電話がありました。", "ミドリ商事"),
    ("school and class", "娘の学校は市立桜ヶ丘中学校の2年3組です。", "桜ヶ丘"),
    ("handle without @", "相手のプロフィールには sato_kenta_0415 とあります。", "sato_kenta_0415"),
    ("LINE id", "「LINE: takuya_0822 に連絡して」と言われました。", "takuya_0822"),
    ("short URL", "リンク先は bit.ly/3xKq9Zt と https://t.co/AbC12dEfG です。", "3xKq9Zt"),
    ("IP address", "管理画面では投稿元のIPは 203.0.113.45 でした。", "203.0.113.45"),
    ("My Number", "マイナンバー 1234 5678 9012 が写った画像も上げられました。", "5678 9012"),
    ("licence plate", "車のナンバー「品川 330 さ 12-34」も写っています。", "330"),
    ("birth date", "生年月日の1995年7月3日も書かれています。", "7月3日"),
    ("obfuscated e-mail", "相手のアドレスは mika.h1990 at gmail dot com です。", "mika.h1990"),
    ("e-mail", "私の連絡先 hanako.yamada@example.jp も載りました。", "hanako.yamada"),
    ("phone", "携帯 080-5555-1212 にも電話が来ます。", "5555"),
]


async def test_no_planted_identifier_reaches_the_council(client, people) -> None:  # type: ignore[no-untyped-def]
    supervisor = await people.create(Role.supervisor)
    staff = await people.create(Role.consultant)
    council = await people.create(Role.council)
    owner = await people.create()
    sentences = [sentence for _, sentence, _ in PLANTED]
    c = await open_consultation(
        client,
        owner,
        title="元彼の佐藤健太に写真を拡散されています",
        narrative="".join(sentences[:10]),
        tried="".join(sentences[10:13]),
    )
    await take(client, staff, c["id"])
    message = await client.post(
        f"/v1/consultations/{c['id']}/messages", headers=owner.headers, json={"body": "".join(sentences[13:])}
    )
    assert message.status_code == 201, message.text
    evidence = await client.post(
        f"/v1/consultations/{c['id']}/evidence",
        headers=owner.headers,
        json={
            "url": "https://bit.ly/3xKq9Zt",
            "poster_account": "@night_owl_x",
            "excerpt": "佐藤健太より: 田中一郎の家は栄町三丁目",
            "notes": "スクリーンショットは2026年11月20日に保存",
        },
    )
    assert evidence.status_code == 201, evidence.text
    await answer(
        client, staff, c["id"], "佐藤健太さんの投稿について、削除依頼の方法をご案内します。", people=people
    )
    closed = await client.post(
        f"/v1/consultations/{c['id']}/close",
        headers={**staff.headers, "If-Match": await etag(client, staff, c["id"])},
    )
    assert closed.status_code == 200, closed.text
    sample = (
        await client.post("/v1/council/samples", headers=supervisor.headers, json={**PERIOD, "size": 1})
    ).json()

    item = await client.get(f"/v1/council/samples/{sample['id']}/items/S001", headers=council.headers)

    assert item.status_code == 200, item.text
    shown = item.text
    leaked = [kind for kind, _, fragment in PLANTED if fragment in shown]
    assert leaked == []
    for fragment in ("night_owl_x", "bit.ly", c["id"], str(owner.id)):
        assert fragment not in shown, fragment
    body = item.json()
    # The review still reads: the harm, the handling and the masks' kinds stay.
    for mask in (
        "［氏名］",
        "［電話番号］",
        "［住所］",
        "［学校］",
        "［URL］",
        "［生年月日］",
        "［メールアドレス］",
    ):
        assert mask in item.text, mask
    assert "拡散されました" in body["narrative"] and "削除依頼の方法" in body["messages"][-1]["body"]
    # The least it needs: the month, day offsets, no exact date, the fact that a URL was given.
    assert re.fullmatch(r"\d{4}-\d{2}", body["month"])
    assert all(set(m) == {"from_staff", "day", "body"} for m in body["messages"])
    assert body["evidence"][0]["url"] == "［URL］"
    assert "11月●日" in body["evidence"][0]["notes"] and "20日" not in body["evidence"][0]["notes"]
