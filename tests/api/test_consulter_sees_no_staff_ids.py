"""A consulter never learns who on staff works their case: no staff member's user id or e-mail appears in any
response a consulter gets (the perpetrator may hold a consulter account). Staff keep seeing them.

One case touches every feature (an earlier case it follows, assignment, a published answer, messages, evidence
with a file, a request with status events and advice, a referral, a letter returned with
the legal advisor's advice and approved by the consultant, the person's export); then every route the consulter
may read is called, and each body and its headers are searched for every staff id and e-mail."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from domain.actors import Role
from tests.api.consultation_helpers import answer, etag, every_page, open_consultation, take
from tests.api.test_authorization_matrix import TINY_PNG
from tests.conftest import PASSWORD

REASON = "投稿は事実無根で、名誉を傷つけられました。"


def base(cid: str) -> str:
    return f"/v1/consultations/{cid}"


def disclosure(evidence_id: str) -> dict[str, Any]:
    return {
        "kind": "disclosure",
        "recipient": "X Corp.",
        "evidence_ids": [evidence_id],
        "choices": {
            "right": ["名誉権"],
            "purpose": ["損害賠償請求権の行使のため"],
            "requested": ["上記の者の住所"],
            "withheld": ["住所"],
        },
        "texts": {"reason": REASON, "purpose_detail": "損害賠償を請求したいが、投稿者が誰か分からないため。"},
        "sender": {"name": "山田 花子", "address": None, "contact": "hanako@example.jp"},
    }


def ok(response, status: int = 200):  # type: ignore[no-untyped-def]
    assert response.status_code == status, (response.request.url, response.text)
    return response


def secrets_in(response, secrets: list[str]) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """The staff ids and e-mails found in the body (as text, also inside a ZIP) or the headers."""
    texts = [response.content.decode("latin-1"), *(f"{k}: {v}" for k, v in response.headers.items())]
    if response.content.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as z:
            texts += [z.read(name).decode("latin-1") for name in z.namelist()]
    return [(str(response.request.url), s) for s in secrets for t in texts if s.lower() in t.lower()]


async def whole_case(client, people, container) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    owner = await people.create(Role.consulter)
    consultant = await people.create(Role.consultant)
    supervisor = await people.create(Role.supervisor)
    advisor = await people.create(Role.legal_advisor)

    # An earlier case, worked by the consultant and closed, that the new one follows.
    earlier = (await open_consultation(client, owner))["id"]
    await take(client, consultant, earlier)
    await answer(client, consultant, earlier, people=people)
    ok(
        await client.post(
            base(earlier) + "/close",
            headers={**consultant.headers, "If-Match": await etag(client, consultant, earlier)},
        )
    )
    cid = (await open_consultation(client, owner))["id"]
    followed = ok(
        await client.post(base(cid) + "/follows", headers=owner.headers, json={"earlier_id": earlier})
    )

    await take(client, consultant, cid)
    await answer(client, consultant, cid, people=people)
    posted = [
        ok(await client.post(base(cid) + "/messages", headers=owner.headers, json={"body": "追記です"}), 201),
        ok(
            await client.post(
                base(cid) + "/messages", headers=consultant.headers, json={"body": "内部メモ", "kind": "note"}
            ),
            201,
        ),
    ]
    evidence = ok(
        await client.post(
            base(cid) + "/evidence",
            headers=owner.headers,
            json={
                "url": "https://x.com/anon_account/status/1801",
                "platform": "x",
                "posted_at": "2026-11-21T14:05:00Z",
                "excerpt": "事実無根の書き込み",
            },
        ),
        201,
    ).json()
    eid = evidence["id"]
    ok(
        await client.put(
            base(cid) + f"/evidence/{eid}/file",
            headers=owner.headers,
            files={"file": ("a.png", TINY_PNG, "image/png")},
        )
    )
    request = ok(
        await client.post(
            base(cid) + "/requests",
            headers=owner.headers,
            json={
                "kind": "platform_form",
                "target": {"platform": "x", "service": "x"},
                "evidence_ids": [eid],
            },
        ),
        201,
    ).json()
    rid = request["id"]
    ok(
        await client.post(
            base(cid) + f"/requests/{rid}/status", headers=owner.headers, json={"status": "sent"}
        )
    )
    ok(
        await client.post(
            base(cid) + f"/requests/{rid}/advice",
            headers=consultant.headers,
            json={"note": "返事が来なければ、法務局の人権相談も検討しましょう。"},
        )
    )
    ok(
        await client.post(
            base(cid) + "/referrals",
            headers=consultant.headers,
            json={"desk_code": "houterasu", "reason": "弁護士への相談をおすすめします"},
        ),
        201,
    )

    # A letter: the advisor returns it with advice, the person revises, the consultant and the advisor approve.
    made = ok(
        await client.post(base(cid) + "/letters", headers=owner.headers, json=disclosure(eid)), 201
    ).json()
    lid = made["id"]
    one = base(cid) + f"/letters/{lid}"
    ok(await client.post(one + "/submit", headers=owner.headers))
    ok(
        await client.post(
            f"/v1/letter-reviews/{lid}",
            headers=advisor.headers,
            json={"decision": "returned", "advice": "事実でないことを具体的に書いてください。"},
        )
    )
    revision = {k: v for k, v in disclosure(eid).items() if k != "kind"}
    ok(await client.post(one + "/versions", headers=owner.headers, json=revision))
    ok(await client.post(one + "/submit", headers=owner.headers))
    ok(
        await client.post(
            f"/v1/letter-reviews/{lid}", headers=consultant.headers, json={"decision": "approved"}
        )
    )
    ok(await client.post(one + "/submit", headers=owner.headers))
    ok(await client.post(f"/v1/letter-reviews/{lid}", headers=advisor.headers, json={"decision": "approved"}))
    # What the consulter's own writes answer (a PATCH, a submit) is a consulter's view too.
    patched = ok(
        await client.patch(
            base(cid),
            headers={**owner.headers, "If-Match": await etag(client, owner, cid)},
            json={"title": "投稿の削除について"},
        )
    )
    finalised = ok(await client.post(one + "/finalise", headers=owner.headers))

    ok(await client.post("/v1/auth/step-up", headers=owner.headers, json={"password": PASSWORD}))
    export = ok(await client.post("/v1/me/exports", headers=owner.headers), 202).json()
    await container.worker.run_once()
    return {
        "owner": owner,
        "consultant": consultant,
        "staff": [consultant, supervisor, advisor],
        "cid": cid,
        "earlier": earlier,
        "eid": eid,
        "rid": rid,
        "lid": lid,
        "export_id": export["id"],
        "written": [followed, *posted, patched, finalised],
    }


def consulter_reads(case: dict[str, Any]) -> list[str]:
    """Every GET the consulter may call on their case and account (tests/api/test_authorization_matrix.py)."""
    cid, eid, rid, lid = case["cid"], case["eid"], case["rid"], case["lid"]
    one = base(cid)
    return [
        "/v1/me",
        "/v1/me/consents",
        "/v1/consultations",
        one,
        base(case["earlier"]),
        one + "/history",
        base(case["earlier"]) + "/history",
        one + "/messages",
        one + "/evidence",
        one + f"/evidence/{eid}",
        one + f"/evidence/{eid}/file",
        one + "/requests",
        one + f"/requests/{rid}",
        one + "/clocks",
        one + "/clock-facts",
        one + "/earlier",
        one + "/referrals",
        one + "/letters",
        one + f"/letters/{lid}",
        one + f"/letters/{lid}/pdf",
        one + f"/letters/{lid}/form-text?service=x",
        f"/v1/me/exports/{case['export_id']}",
        # Last: the download is given once.
        f"/v1/me/exports/{case['export_id']}/download",
    ]


async def test_no_staff_id_or_email_in_anything_the_consulter_reads(client, people, container) -> None:  # type: ignore[no-untyped-def]
    case = await whole_case(client, people, container)
    owner = case["owner"]
    secrets = [s for p in case["staff"] for s in (str(p.id), p.id.hex, p.email)]
    found = [hit for r in case["written"] for hit in secrets_in(r, secrets)]
    for path in consulter_reads(case):
        found += secrets_in(ok(await client.get(path, headers=owner.headers)), secrets)
    assert found == [], "\n".join(f"{url}: {secret}" for url, secret in found)
    # The consulter still sees that staff acted, not who.
    detail = (await client.get(base(case["cid"]), headers=owner.headers)).json()
    assert detail["assignee_id"] is None
    letter = (await client.get(base(case["cid"]) + f"/letters/{case['lid']}", headers=owner.headers)).json()
    assert [(r["reviewer_role"], r["decision"], r["reviewer_id"]) for r in letter["reviews"]] == [
        ("legal_advisor", "returned", None),
        ("consultant", "approved", None),
        ("legal_advisor", "approved", None),
    ]


async def test_staff_still_see_who_holds_and_who_reviewed(client, people, container) -> None:  # type: ignore[no-untyped-def]
    case = await whole_case(client, people, container)
    consultant, advisor = case["consultant"], case["staff"][2]
    cid = case["cid"]
    detail = ok(await client.get(base(cid), headers=consultant.headers)).json()
    assert detail["assignee_id"] == str(consultant.id)
    queue = await every_page(client, "/v1/consultations", consultant.headers, assignee="me")
    assert {c["id"]: c["assignee_id"] for c in queue}[cid] == str(consultant.id)
    earlier = ok(await client.get(base(cid) + "/earlier", headers=consultant.headers)).json()
    assert [c["assignee_id"] for c in earlier] == [str(consultant.id)]
    letter = ok(await client.get(base(cid) + f"/letters/{case['lid']}", headers=consultant.headers)).json()
    assert [r["reviewer_id"] for r in letter["reviews"]] == [
        str(advisor.id),
        str(consultant.id),
        str(advisor.id),
    ]
    assert letter["versions"][0]["author_id"] == str(case["owner"].id)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Known, not fixed here: the evidence bundle's custody chain names each actor (staff reads too) "
    "and is hash-linked over actor_id (domain/custody.py format 1), so the consulter's copy cannot drop it "
    "without a new chain format.",
)
async def test_the_evidence_bundle_names_no_staff_member(client, people, container) -> None:  # type: ignore[no-untyped-def]
    case = await whole_case(client, people, container)
    secrets = [s for p in case["staff"] for s in (str(p.id), p.email)]
    bundle = ok(await client.get(base(case["cid"]) + "/evidence/bundle", headers=case["owner"].headers))
    assert secrets_in(bundle, secrets) == []
