"""Letters from the evidence (issue 15 §3): built from one consultation's evidence, guided fields required to
finalise, every version kept, PDF with selectable Japanese text, form text within limits, the legal-advisor
rule on disclosure requests, and 404 for everyone else."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest

from domain.actors import Role
from tests.api.consultation_helpers import every_page, open_consultation, take
from tests.conftest import assert_problem
from tests.pdf_tools import pdf_pages, pdf_text

REASON = "投稿には私の氏名と勤務先が書かれており、「横領している」という事実無根の内容で、職場で噂になり困っています。"
EXCERPT = "山田花子は会社の金を横領している"
KINDS = [
    "removal_defamation_privacy",
    "removal_copyright",
    "removal_trademark",
    "removal_intimate_image",
    "disclosure",
]


def flat(pdf: bytes) -> str:
    """The selectable text of every page, with the line breaks of the layout taken out."""
    return "".join(pdf_text(pdf)).replace("\r", "").replace("\n", "")


async def evidence(client, person, cid: str, n: int = 1, **extra: Any) -> str:  # type: ignore[no-untyped-def]
    body = {
        "url": f"https://x.com/anon_account/status/18{n:02d}",
        "platform": "x",
        "posted_at": f"2026-11-2{n}T14:05:00Z",
        "excerpt": f"{EXCERPT}({n})",
        **extra,
    }
    r = await client.post(f"/v1/consultations/{cid}/evidence", headers=person.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def complete(kind: str, evidence_ids: list[str], **override: Any) -> dict[str, Any]:
    """A letter with every required field written, for each kind."""
    choices: dict[str, list[str]] = {
        "removal_defamation_privacy": {"right": ["名誉権", "プライバシー権"]},
        "removal_copyright": {"right": ["公衆送信権"]},
        "removal_trademark": {"right": ["商標権"]},
        "removal_intimate_image": {"right": ["プライバシー権"]},
        "disclosure": {
            "right": ["名誉権"],
            "purpose": ["損害賠償請求権の行使のため"],
            "requested": ["上記の者の住所", "侵害情報の送信に係るIPアドレス及びポート番号"],
            "withheld": ["住所"],
        },
    }[kind]
    texts = {
        "removal_defamation_privacy": {"reason": REASON},
        "removal_copyright": {
            "work": "私が2026年10月に自分のブログで公開したイラスト「冬の港」",
            "rightsholder": "元の投稿のアカウントと制作データがあります",
            "reason": "許可なく転載され、作者名も消されています。",
        },
        "removal_trademark": {
            "registration": "登録第6123456号「まどぐち」第45類",
            "reason": "同じ名称で偽の相談サービスを名乗っています。",
        },
        "removal_intimate_image": {"reason": "写っているのは私で、公開に同意していません。"},
        "disclosure": {
            "reason": REASON,
            "purpose_detail": "損害賠償を請求したいが、投稿者が誰か分からないため。",
        },
    }[kind]
    body = {
        "kind": kind,
        "recipient": "X Corp.",
        "evidence_ids": evidence_ids,
        "choices": choices,
        "texts": texts,
        "sender": {"name": "山田 花子", "address": None, "contact": "hanako@example.jp"},
    }
    body.update(override)
    return body


async def letter(client, person, cid: str, body: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/v1/consultations/{cid}/letters", headers=person.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_removal_letter_from_the_evidence_end_to_end(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    e1, e2 = await evidence(client, owner, cid, 1), await evidence(client, owner, cid, 2)
    made = await letter(client, owner, cid, complete("removal_defamation_privacy", [e1, e2]))
    assert made["state"] == "draft" and made["missing_fields"] == [] and not made["needs_advisor"]
    items = made["versions"][0]["items"]
    assert [i["url"] for i in items] == [
        "https://x.com/anon_account/status/1801",
        "https://x.com/anon_account/status/1802",
    ]
    # 14:05 UTC is 23:05 in Japan, the same day.
    assert items[0]["posted_at_jst"] == "2026年11月21日 23時05分(日本時間)"
    assert items[0]["posted_at"] == "2026-11-21T14:05:00Z"
    assert "意見照会" in made["notice"]["forwarding_ja"] and "弁護士" in made["notice"]["address_ja"]

    base = f"/v1/consultations/{cid}/letters/{made['id']}"
    pdf = await client.get(base + "/pdf", headers=owner.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    text = flat(pdf.content)
    for expected in (
        "侵害情報の通知書 兼 送信防止措置依頼書",
        "X Corp. 御中",
        "https://x.com/anon_account/status/1801",
        "2026年11月22日 23時05分(日本時間)",
        f"{EXCERPT}(2)",
        "名誉権、プライバシー権",
        "下書き(未確定)",
        "山田 花子",
        "hanako@example.jp",
        "差出人の氏名・住所は、本人の選択により記載していません。",
        "http://www.isplaw.jp/p_form.pdf",
    ):
        assert expected in text, expected
    assert "横領している" in text  # the person's own reason, as written

    final = await client.post(base + "/finalise", headers=owner.headers)
    assert final.status_code == 200, final.text
    assert final.json()["state"] == "final" and final.json()["finalised_at"] is not None
    text = flat((await client.get(base + "/pdf", headers=owner.headers)).content)
    assert "下書き" not in text
    revision = {k: v for k, v in complete("removal_defamation_privacy", [e1]).items() if k != "kind"}
    again = await client.post(base + "/versions", headers=owner.headers, json=revision)
    assert again.status_code == 409 and again.json()["code"] == "letter_not_editable"


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_renders_as_an_a4_pdf_with_selectable_japanese(client, people, kind: str) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    made = await letter(client, owner, cid, complete(kind, [eid]))
    assert made["missing_fields"] == []
    pdf = await client.get(f"/v1/consultations/{cid}/letters/{made['id']}/pdf", headers=owner.headers)
    assert pdf.status_code == 200
    text = flat(pdf.content)
    form = next(f for f in (await client.get("/v1/letter-forms")).json() if f["kind"] == kind)
    assert form["title_ja"] in text and form["subtitle_ja"] in text
    for f in form["fields"]:
        assert f["label_ja"] in text, f["label_ja"]
    for value in complete(kind, [eid])["texts"].values():
        assert value in text
    assert "https://x.com/anon_account/status/1801" in text
    images = pdf_pages(pdf.content, 72)
    assert images, "no pages"
    for image in images:
        # A4 at 72 dpi is 595 × 842 points.
        assert abs(image.size[0] - 595) <= 1 and abs(image.size[1] - 842) <= 1
        grey = image.convert("L")
        dark = sum(grey.histogram()[:128])
        assert dark > 2000, "the page is (nearly) blank: the Japanese text did not render"


async def test_guided_fields_are_required_before_final(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    body = complete("removal_defamation_privacy", [eid], texts={}, choices={})
    made = await letter(client, owner, cid, body)
    assert made["missing_fields"] == ["right", "reason"]
    base = f"/v1/consultations/{cid}/letters/{made['id']}"
    refused = await client.post(base + "/finalise", headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "letter_incomplete"
    assert refused.json()["fields"] == ["right", "reason"]
    forms = (await client.get("/v1/letter-forms")).json()
    reason = next(f for f in forms if f["kind"] == "removal_defamation_privacy")["fields"]
    guided = [f for f in reason if f["kind"] == "guided"]
    assert guided and all(f["help_ja"] and f["required"] for f in guided)


async def test_every_change_is_a_new_version(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    made = await letter(client, owner, cid, complete("removal_defamation_privacy", [eid]))
    base = f"/v1/consultations/{cid}/letters/{made['id']}"
    revision = {k: v for k, v in complete("removal_defamation_privacy", [eid]).items() if k != "kind"}
    for text in ("  一度目の修正です。\n\n改行も残ります。", "二度目の修正です。"):
        r = await client.post(
            base + "/versions", headers=owner.headers, json={**revision, "texts": {"reason": text}}
        )
        assert r.status_code == 200, r.text
    got = (await client.get(base, headers=owner.headers)).json()
    assert [v["number"] for v in got["versions"]] == [1, 2, 3]
    assert [v["texts"]["reason"] for v in got["versions"]] == [
        REASON,
        "  一度目の修正です。\n\n改行も残ります。",
        "二度目の修正です。",
    ]


async def test_no_letter_is_written_or_revised_once_the_consultation_is_withdrawn(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    made = await letter(client, owner, cid, complete("removal_defamation_privacy", [eid]))
    assert (await client.post(f"/v1/consultations/{cid}/withdraw", headers=owner.headers)).status_code == 200
    base = f"/v1/consultations/{cid}/letters"
    refused = await client.post(
        base, headers=owner.headers, json=complete("removal_defamation_privacy", [eid])
    )
    assert_problem(refused, 409, "consultation_not_open")
    revision = {k: v for k, v in complete("removal_defamation_privacy", [eid]).items() if k != "kind"}
    refused = await client.post(f"{base}/{made['id']}/versions", headers=owner.headers, json=revision)
    assert_problem(refused, 409, "consultation_not_open")
    assert [x["id"] for x in await every_page(client, base, owner.headers)] == [made["id"]]
    assert len((await client.get(f"{base}/{made['id']}", headers=owner.headers)).json()["versions"]) == 1


async def test_evidence_of_another_consultation_is_refused_without_leaking(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    other_cid = (await open_consultation(client, owner, title="別の相談です"))["id"]
    theirs = await people.create(Role.consulter)
    their_cid = (await open_consultation(client, theirs))["id"]
    mine_elsewhere = await evidence(client, owner, other_cid)
    someone_elses = await evidence(client, theirs, their_cid)
    answers = []
    for eid in (mine_elsewhere, someone_elses, str(uuid.uuid4())):
        r = await client.post(
            f"/v1/consultations/{cid}/letters",
            headers=owner.headers,
            json=complete("removal_defamation_privacy", [eid]),
        )
        assert r.status_code == 422, r.text
        answers.append({k: v for k, v in r.json().items() if k not in ("instance", "request_id")})
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["code"] == "unknown_evidence"
    assert someone_elses not in str(answers[1])


async def test_unknown_fields_and_options_and_over_long_texts_are_refused(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    url = f"/v1/consultations/{cid}/letters"
    for override, code in (
        ({"choices": {"right": ["存在しない権利"]}}, "unknown_option"),
        ({"choices": {"reason": ["名誉権"]}}, "unknown_field"),
        ({"texts": {"place": "https://example.jp"}}, "unknown_field"),
        ({"texts": {"reason": "長" * 2001}}, "field_too_long"),
        ({"evidence_ids": []}, "validation_failed"),
    ):
        r = await client.post(
            url, headers=owner.headers, json={**complete("removal_defamation_privacy", [eid]), **override}
        )
        assert r.status_code == 422, (override, r.text)
        assert r.json()["code"] == code, (override, r.json())


async def test_disclosure_is_final_only_with_the_legal_advisors_approval(client, people) -> None:  # type: ignore[no-untyped-def]
    # A consultation that does not itself ask to identify the poster: the letter implies it.
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner, desired_outcomes=["delete"]))["id"]
    eid = await evidence(client, owner, cid)
    made = await letter(client, owner, cid, complete("disclosure", [eid]))
    assert made["needs_advisor"] and "disclosure" in made["review_reasons"]
    base = f"/v1/consultations/{cid}/letters/{made['id']}"
    refused = await client.post(base + "/finalise", headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "review_required"

    # The assigned consultant reads it, asks for review and approves: that is not the advisor's approval.
    consultant = await people.create(Role.consultant)
    await take(client, consultant, cid)
    assert (await client.get(base, headers=consultant.headers)).status_code == 200
    assert (await client.post(base + "/submit", headers=consultant.headers)).status_code == 200
    advisor = await people.create(Role.legal_advisor)
    queue = (await client.get("/v1/letter-reviews", headers=advisor.headers)).json()["items"]
    assert [q["letter"]["id"] for q in queue] == [made["id"]]
    assert queue[0]["letter"]["versions"][-1]["texts"]["reason"] == REASON
    ok = await client.post(
        f"/v1/letter-reviews/{made['id']}", headers=consultant.headers, json={"decision": "approved"}
    )
    assert ok.status_code == 200, ok.text
    refused = await client.post(base + "/finalise", headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "review_required"

    # The advisor returns it with advice; the person revises; the advisor approves; now it can be final.
    assert (await client.post(base + "/submit", headers=owner.headers)).status_code == 200
    returned = await client.post(
        f"/v1/letter-reviews/{made['id']}", headers=advisor.headers, json={"decision": "returned"}
    )
    assert returned.status_code == 422 and returned.json()["code"] == "advice_required"
    returned = await client.post(
        f"/v1/letter-reviews/{made['id']}",
        headers=advisor.headers,
        json={"decision": "returned", "advice": "事実でないことを具体的に書いてください。"},
    )
    assert returned.status_code == 200 and returned.json()["state"] == "returned"
    assert (await client.post(base + "/finalise", headers=owner.headers)).status_code == 409
    revision = {k: v for k, v in complete("disclosure", [eid]).items() if k != "kind"}
    revised = await client.post(base + "/versions", headers=owner.headers, json=revision)
    assert revised.status_code == 200 and revised.json()["state"] == "draft"
    assert (await client.post(base + "/submit", headers=owner.headers)).status_code == 200
    approved = await client.post(
        f"/v1/letter-reviews/{made['id']}", headers=advisor.headers, json={"decision": "approved"}
    )
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    # Not waiting any more: the advisor no longer sees it.
    again = await client.post(
        f"/v1/letter-reviews/{made['id']}", headers=advisor.headers, json={"decision": "approved"}
    )
    assert again.status_code == 404

    # A change after approval needs a new approval.
    changed = await client.post(
        base + "/versions",
        headers=owner.headers,
        json={**revision, "texts": {**revision["texts"], "reason": REASON + "追記。"}},
    )
    assert changed.status_code == 200 and changed.json()["state"] == "draft"
    assert (await client.post(base + "/finalise", headers=owner.headers)).json()["code"] == "review_required"
    assert (await client.post(base + "/submit", headers=owner.headers)).status_code == 200
    assert (
        await client.post(
            f"/v1/letter-reviews/{made['id']}", headers=advisor.headers, json={"decision": "approved"}
        )
    ).status_code == 200
    final = await client.post(base + "/finalise", headers=owner.headers)
    assert final.status_code == 200 and final.json()["state"] == "final"
    text = flat((await client.get(base + "/pdf", headers=owner.headers)).content)
    assert "発信者情報開示請求書" in text and "■ 上記の者の住所" in text and "□ 上記の者の電話番号" in text


async def test_staff_read_and_review_but_do_not_write_the_letter(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    consultant = await people.create(Role.consultant)
    await take(client, consultant, cid)
    r = await client.post(
        f"/v1/consultations/{cid}/letters",
        headers=consultant.headers,
        json=complete("removal_defamation_privacy", [eid]),
    )
    assert r.status_code == 403 and r.json()["code"] == "role_not_allowed"
    made = await letter(client, owner, cid, complete("removal_defamation_privacy", [eid]))
    base = f"/v1/consultations/{cid}/letters/{made['id']}"
    assert (await client.get(base + "/pdf", headers=consultant.headers)).status_code == 200
    assert (await client.post(base + "/finalise", headers=consultant.headers)).status_code == 403
    # A removal letter sent to review on request: the assigned staff's approval is enough.
    assert (await client.post(base + "/submit", headers=owner.headers)).json()["review_reasons"] == [
        "requested"
    ]
    ok = await client.post(
        f"/v1/letter-reviews/{made['id']}",
        headers=consultant.headers,
        json={"decision": "approved", "advice": "この内容で送れます。"},
    )
    assert ok.status_code == 200 and ok.json()["reviews"][0]["advice"] == "この内容で送れます。"
    assert (await client.post(base + "/finalise", headers=owner.headers)).status_code == 200


async def test_everyone_else_gets_404(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    made = await letter(client, owner, cid, complete("disclosure", [eid]))
    stranger = await people.create(Role.consulter)
    stranger_cid = (await open_consultation(client, stranger))["id"]
    base = f"/v1/consultations/{cid}/letters"
    one = f"{base}/{made['id']}"
    revision = {k: v for k, v in complete("disclosure", [eid]).items() if k != "kind"}
    calls = [
        ("GET", base, None),
        ("POST", base, complete("disclosure", [eid])),
        ("GET", one, None),
        ("POST", one + "/versions", revision),
        ("POST", one + "/submit", None),
        ("POST", one + "/finalise", None),
        ("GET", one + "/pdf", None),
        ("GET", one + "/form-text?service=x", None),
    ]
    for method, path, body in calls:
        r = await client.request(method, path, headers=stranger.headers, json=body)
        assert r.status_code == 404, (path, r.text)
    # The letter's id under the stranger's own consultation is not theirs either.
    r = await client.get(f"/v1/consultations/{stranger_cid}/letters/{made['id']}", headers=stranger.headers)
    assert r.status_code == 404 and r.json()["code"] == "letter_not_found"
    # An unassigned consultant is refused; a consultant assigned elsewhere cannot reach it by the review route.
    other = await people.create(Role.consultant)
    await take(client, other, stranger_cid)
    assert (await client.get(one, headers=other.headers)).status_code in (403, 404)
    await client.post(one + "/submit", headers=owner.headers)
    r = await client.post(
        f"/v1/letter-reviews/{made['id']}", headers=other.headers, json={"decision": "approved"}
    )
    assert r.status_code in (403, 404)
    # A legal advisor sees only letters waiting for review.
    advisor = await people.create(Role.legal_advisor)
    assert (await client.get(one, headers=advisor.headers)).status_code == 403


async def test_form_text_within_the_services_limits_never_silently_cut(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    made = await letter(client, owner, cid, complete("removal_defamation_privacy", [eid]))
    base = f"/v1/consultations/{cid}/letters/{made['id']}/form-text"
    r = await client.get(base, params={"service": "openchat"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fits"] and body["source_url"].startswith("https://")
    fields = {f["code"]: f for f in body["fields"]}
    assert fields["place"]["text"] == "https://x.com/anon_account/status/1801"
    assert fields["posted_at"]["text"].endswith("2026年11月21日 23時05分(日本時間)")
    assert fields["content"]["text"] == f"{EXCERPT}(1)"
    assert fields["right"]["text"] == "名誉権、プライバシー権"
    assert fields["reason"]["text"] == REASON
    assert all(f["length"] == len(f["text"]) <= f["max_length"] for f in body["fields"])

    # A reason longer than a field takes: whole text, told which field and by how much.
    long_reason = (
        "事実無根です。" * 280
    )  # 1,960 characters: fits the letter (2,000) but not 爆サイ's box (1,000)
    revision = {k: v for k, v in complete("removal_defamation_privacy", [eid]).items() if k != "kind"}
    await client.post(
        f"/v1/consultations/{cid}/letters/{made['id']}/versions",
        headers=owner.headers,
        json={**revision, "texts": {"reason": long_reason}},
    )
    r = await client.get(base, params={"service": "bakusai"}, headers=owner.headers)
    body = r.json()
    reason = next(f for f in body["fields"] if f["code"] == "reason")
    assert not body["fits"] and not reason["fits"]
    assert reason["text"] == long_reason and reason["over_by"] == len(long_reason) - reason["max_length"]

    five = (await client.get(base, params={"service": "five_ch"}, headers=owner.headers)).json()
    assert {f["code"]: f["text"] for f in five["fields"]}["subject"] == "削除申し立て"
    unknown = await client.get(base, params={"service": "no_such_service"}, headers=owner.headers)
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_code"


async def test_letter_texts_are_never_logged(client, people, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    # With a character the font lacks: fpdf2 would name it in a warning.
    secret = "ZQXLETTER誰にも見せない理由😀"
    made = await letter(
        client, owner, cid, complete("disclosure", [eid], texts={"reason": secret, "purpose_detail": secret})
    )
    base = f"/v1/consultations/{cid}/letters/{made['id']}"
    await client.get(base + "/pdf", headers=owner.headers)
    await client.get(base + "/form-text", params={"service": "x"}, headers=owner.headers)
    await client.post(base + "/submit", headers=owner.headers)
    assert "ZQXLETTER" not in caplog.text and "山田 花子" not in caplog.text and "😀" not in caplog.text


async def test_letter_forms_cite_their_source(client) -> None:  # type: ignore[no-untyped-def]
    forms = (await client.get("/v1/letter-forms")).json()
    assert sorted(f["kind"] for f in forms) == sorted(KINDS)
    for f in forms:
        assert f["source_url"].startswith("https://www.isplaw.jp") and f["checked"] == "2026-12-01"


async def test_a_retried_create_makes_one_letter(client, people) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    cid = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, cid)
    headers = {**owner.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = complete("removal_intimate_image", [eid])
    first = await client.post(f"/v1/consultations/{cid}/letters", headers=headers, json=body)
    again = await client.post(f"/v1/consultations/{cid}/letters", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = (await client.get(f"/v1/consultations/{cid}/letters", headers=owner.headers)).json()["items"]
    assert [x["id"] for x in listed] == [first.json()["id"]]
    # A private-sexual-image letter falls under the sexual-images review rule, like an answer would.
    assert "sexual_images" in first.json()["review_reasons"] and first.json()["needs_advisor"]


async def test_letters_page_newest_first_and_a_cursor_reads_only_its_own_case(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = await people.create(Role.consulter), await people.create(Role.consulter)
    mine = (await open_consultation(client, owner))["id"]
    other = (await open_consultation(client, owner))["id"]
    eid = await evidence(client, owner, mine)
    made = []
    for _ in range(3):
        clock.advance(timedelta(seconds=1))
        made.append((await letter(client, owner, mine, complete("removal_defamation_privacy", [eid])))["id"])
    theirs = (
        await letter(
            client,
            owner,
            other,
            complete("removal_defamation_privacy", [await evidence(client, owner, other)]),
        )
    )["id"]
    url = f"/v1/consultations/{mine}/letters"
    first = (await client.get(url, headers=owner.headers, params={"limit": 2})).json()
    assert [x["id"] for x in first["items"]] == made[::-1][:2] and first["next_cursor"]
    rest = (
        await client.get(url, headers=owner.headers, params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [x["id"] for x in rest["items"]] == made[:1] and rest["next_cursor"] is None
    there = await client.get(
        f"/v1/consultations/{other}/letters", headers=owner.headers, params={"cursor": first["next_cursor"]}
    )
    assert {x["id"] for x in there.json()["items"]} <= {theirs}
    # Someone else's case stays hidden whatever cursor comes with the request.
    hidden = await client.get(url, headers=stranger.headers, params={"cursor": first["next_cursor"]})
    assert hidden.status_code == 404


async def test_the_letter_review_queue_pages_longest_waiting_first(client, people, clock) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    advisor = await people.create(Role.legal_advisor)
    waiting = []
    for _ in range(3):
        cid = (await open_consultation(client, owner))["id"]
        made = await letter(
            client, owner, cid, complete("removal_defamation_privacy", [await evidence(client, owner, cid)])
        )
        clock.advance(timedelta(seconds=10))
        submitted = await client.post(
            f"/v1/consultations/{cid}/letters/{made['id']}/submit", headers=owner.headers
        )
        assert submitted.status_code == 200, submitted.text
        waiting.append(made["id"])
    first = (await client.get("/v1/letter-reviews", headers=advisor.headers, params={"limit": 2})).json()
    assert [q["letter"]["id"] for q in first["items"]] == waiting[:2] and first["next_cursor"]
    rest = (
        await client.get(
            "/v1/letter-reviews", headers=advisor.headers, params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [q["letter"]["id"] for q in rest["items"]] == waiting[2:] and rest["next_cursor"] is None
    refused = await client.get(
        "/v1/letter-reviews", headers=owner.headers, params={"cursor": first["next_cursor"]}
    )
    assert refused.status_code == 403
    # Each page puts on the trail the letters it showed, and only those (not the one that says more follow).
    supervisor = await people.create(Role.supervisor)
    trail = await every_page(client, "/v1/audit-events", supervisor.headers, object_type="letter")
    assert sorted(e["object_id"] for e in trail if e["action"] == "letter.read_for_review") == sorted(waiting)
