"""Issue 15 §4: answer templates suggested per case type and filled from the case — the platform, the post's
URL, the desk's name and phone from the directory, the deadline from the case's clocks — and the values a
draft was filled with recorded with its version."""

from __future__ import annotations

from datetime import datetime

from domain.actors import Role
from domain.calendar import JST
from tests.api.consultation_helpers import open_consultation, take
from tests.conftest import assert_problem


async def test_templates_fit_the_case_and_are_filled_from_it(client, people, clock) -> None:
    clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=JST))
    owner, other = await people.create(), await people.create()
    staff = await people.create(Role.consultant)
    assert (
        await client.patch("/v1/me", headers=owner.headers, json={"display_name": "山田花子"})
    ).status_code == 200
    c = await open_consultation(client, owner)  # 名誉毀損・プライバシー, remove and identify the poster, on X
    cid = c["id"]
    url = "https://x.com/tokumei_account/status/1859000000000000001"
    evidence = await client.post(
        f"/v1/consultations/{cid}/evidence",
        headers=owner.headers,
        json={"url": url, "platform": "x", "posted_at": "2026-11-20T21:15:00+09:00"},
    )
    request = await client.post(
        f"/v1/consultations/{cid}/requests",
        headers=owner.headers,
        json={
            "kind": "platform_form",
            "target": {"platform": "x", "service": "x"},
            "evidence_ids": [evidence.json()["id"]],
        },
    )
    await client.post(
        f"/v1/consultations/{cid}/requests/{request.json()['id']}/status",
        headers=owner.headers,
        json={"status": "sent"},
    )
    path = f"/v1/consultations/{cid}/answer-suggestions"
    assert_problem(await client.get(path, headers=other.headers), 404)
    assert_problem(await client.get(path, headers=owner.headers), 403)
    assert_problem(await client.get(path, headers=staff.headers), 403, "not_assigned")
    await take(client, staff, cid)
    got = await client.get(path, headers=staff.headers)
    assert got.status_code == 200, got.text
    suggestions = {s["template"]: s for s in got.json()}
    order = [s["template"] for s in got.json()]
    # A designated platform and a wish to remove come first; the disclosure guide is among the best fits.
    assert order[0] == "platform-request-guide"
    assert set(order[1:3]) == {"delete-request-guide", "disclosure-guide"}
    assert "sexual-images-urgent" not in suggestions and "urgent-safety" not in suggestions

    platform = suggestions["platform-request-guide"]
    assert platform["values"]["platform"] == "X"
    assert platform["values"]["url"] == url
    assert platform["values"]["deadline"] == "2026年12月9日(水)"  # sent 2 December, seven days
    assert platform["values"]["consulter_name"] == "山田花子"
    desk = {d["code"]: d for d in (await client.get("/v1/desks")).json()}["moj_internet_jinken"]
    assert platform["values"]["desk_name"] == desk["name_ja"]
    assert "{" not in platform["body"] and "2026年12月9日(水)" in platform["body"]
    disclosure = suggestions["disclosure-guide"]
    assert disclosure["values"]["deadline"] == "2027年2月20日(土)"  # the logs' three months
    houterasu = {d["code"]: d for d in (await client.get("/v1/desks")).json()}["houterasu"]
    assert disclosure["values"]["desk_phone"] == houterasu["phone"]

    # A draft from the template records what it was filled with, with its version.
    draft = await client.post(
        f"/v1/consultations/{cid}/answers",
        headers=staff.headers,
        json={"body": disclosure["body"], "manual_sections": ["disclosure"], "template": "disclosure-guide"},
    )
    assert draft.status_code == 201, draft.text
    [version] = draft.json()["versions"]
    assert version["template"] == {"code": "disclosure-guide", "version": disclosure["version"]}
    assert version["template_values"] == disclosure["values"]
    reread = await client.get(f"/v1/consultations/{cid}/answers/{draft.json()['id']}", headers=staff.headers)
    assert reread.json()["versions"][0]["template_values"] == disclosure["values"]
    plain = await client.post(
        f"/v1/consultations/{cid}/answers",
        headers=staff.headers,
        json={"body": "ご相談ありがとうございます。"},
    )
    assert plain.json()["versions"][0]["template_values"] == {}


async def test_what_the_case_cannot_fill_stays_as_written(client, people, clock) -> None:
    clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=JST))
    owner = await people.create()
    staff = await people.create(Role.supervisor)
    c = await open_consultation(client, owner, platforms=[], platform_other=None)
    await take(client, staff, c["id"])
    got = (await client.get(f"/v1/consultations/{c['id']}/answer-suggestions", headers=staff.headers)).json()
    disclosure = next(s for s in got if s["template"] == "disclosure-guide")
    # No evidence, no posting time, no name given: nothing is guessed.
    assert set(disclosure["unfilled"]) == {"consulter_name", "platform", "url", "deadline"}
    assert "{deadline}" in disclosure["body"] and "{url}" in disclosure["body"]
    assert "deadline" not in disclosure["values"]
