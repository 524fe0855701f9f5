"""Correcting and deleting evidence items (issue 16 §3): both are links on the consultation's chain of custody,
a correction is made against the version the person saw, and a deletion removes the stored files while the
chain keeps that they existed and what their hashes were."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from domain.actors import Role
from domain.case_keys import file_digest
from infra.tokens import derive_key
from tests.api.consultation_helpers import open_consultation, take
from tests.api.test_evidence import png
from tests.conftest import assert_problem

POSTED = {
    "url": "https://x.com/tokumei_account/status/1859000000000000001",
    "platform": "x",
    "posted_at": "2026-11-20T21:15:00+09:00",
    "poster_account": "@tokumei_account",
    "excerpt": "〇〇は会社の金を横領している",
}


async def item(client, person, cid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    made = await client.post(f"/v1/consultations/{cid}/evidence", headers=person.headers, json=POSTED)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


async def chain(container, cid: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    import uuid

    from infra.db.custody import SqlCustody

    async with container.sessions() as db:
        links = await SqlCustody(db, container.clock).links(uuid.UUID(cid))
    return [{"action": link.action, "object_id": link.object_id, "detail": link.detail} for link in links]


async def test_a_correction_needs_the_version_seen_and_is_on_the_chain(client, people, container) -> None:
    owner = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    e = await item(client, owner, cid)
    url = f"/v1/consultations/{cid}/evidence/{e['id']}"
    seen = await client.get(url, headers=owner.headers)
    assert seen.headers["etag"] == '"v1"'
    fix = {"posted_at": "2026-11-20T23:15:00+09:00", "excerpt": "〇〇は会社の金を横領している（実名）"}
    assert_problem(await client.patch(url, headers=owner.headers, json=fix), 428, "if_match_required")
    corrected = await client.patch(url, headers={**owner.headers, "If-Match": '"v1"'}, json=fix)
    assert corrected.status_code == 200, corrected.text
    assert corrected.headers["etag"] == '"v2"'
    body = corrected.json()
    assert body["posted_at"] == "2026-11-20T14:15:00Z" and body["excerpt"] == fix["excerpt"]
    assert body["url"] == POSTED["url"]  # what was not sent is unchanged
    # The clock follows the corrected posting time.
    assert body["time_to_act_at"] == e["time_to_act_at"]  # same JST day: the log clock ends the same night
    # Someone holding the old version is refused, and nothing changes.
    stale = await client.patch(url, headers={**owner.headers, "If-Match": '"v1"'}, json={"excerpt": "別の文"})
    assert_problem(stale, 412, "stale_version")
    assert (await client.get(url, headers=owner.headers)).json()["excerpt"] == fix["excerpt"]
    # The chain names the fields and proves the earlier values without holding them.
    [link] = [x for x in await chain(container, cid) if x["action"] == "evidence.corrected"]
    assert link["object_id"] == e["id"] and link["detail"]["fields"] == "excerpt,posted_at"
    earlier = {"excerpt": POSTED["excerpt"], "posted_at": "2026-11-20T12:15:00+00:00"}
    canonical = json.dumps(earlier, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    # Keyed: the centre shows which earlier value it was; a reader of the chain cannot test guesses.
    key = derive_key(container.settings.signing_key, "evidence-correction-digest")
    assert link["detail"]["before_hmac_sha256"] == hmac.new(key, canonical, hashlib.sha256).hexdigest()
    assert hashlib.sha256(canonical).hexdigest() not in json.dumps(link)
    assert "横領" not in json.dumps(link, ensure_ascii=False)
    assert (await container.custody.verify()).breaks == []


async def test_a_correction_is_validated_like_a_new_item_and_only_by_those_on_the_case(
    client, people
) -> None:
    owner = await people.create()
    consultant = await people.create(Role.consultant)
    stranger = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    e = await item(client, owner, cid)
    url = f"/v1/consultations/{cid}/evidence/{e['id']}"
    headers = {**owner.headers, "If-Match": '"v1"'}
    assert_problem(
        await client.patch(url, headers=headers, json={"platform": "myspace"}), 422, "unknown_code"
    )
    naive = await client.patch(url, headers=headers, json={"posted_at": "2026-11-20T21:15:00"})
    assert_problem(naive, 422)
    assert_problem(await client.patch(url, headers=headers, json={"file": None}), 422)
    other = {**stranger.headers, "If-Match": '"v1"'}
    assert_problem(await client.patch(url, headers=other, json={"notes": "x"}), 404)
    assert_problem(await client.delete(url, headers=stranger.headers), 404)
    # Staff correct once they work the case; they never delete a person's evidence.
    staff = {**consultant.headers, "If-Match": '"v1"'}
    assert_problem(await client.patch(url, headers=staff, json={"notes": "確認済み"}), 403)
    await take(client, consultant, cid)
    assert (await client.patch(url, headers=staff, json={"notes": "確認済み"})).status_code == 200
    assert_problem(await client.delete(url, headers=consultant.headers), 403, "role_not_allowed")


async def test_deleting_an_item_removes_its_files_and_the_chain_keeps_its_hashes(
    client, people, container
) -> None:
    owner = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    e = await item(client, owner, cid)
    base = f"/v1/consultations/{cid}/evidence/{e['id']}"
    uploaded = await client.put(
        base + "/file", headers=owner.headers, files={"file": ("screenshot.png", png(), "image/png")}
    )
    assert uploaded.status_code == 200, uploaded.text
    file = uploaded.json()["file"]
    stored = await _keys(container, e["id"])
    assert all([await container.blobs.exists(key) for key in stored])

    gone = await client.delete(base, headers=owner.headers)
    assert gone.status_code == 204 and gone.content == b""
    assert_problem(await client.get(base, headers=owner.headers), 404)
    assert_problem(await client.get(base + "/file", headers=owner.headers), 404)
    assert_problem(await client.delete(base, headers=owner.headers), 404)
    listed = (await client.get(f"/v1/consultations/{cid}/evidence", headers=owner.headers)).json()
    assert listed["items"] == []
    # Both the cleaned copy and the sealed original are gone from the store.
    assert not any([await container.blobs.exists(key) for key in stored])
    [link] = [x for x in await chain(container, cid) if x["action"] == "evidence.deleted"]
    assert link["object_id"] == e["id"]
    # Keyed with the case's key (issue 17 §2 review): checkable while the case lives, no file's name once shredded.
    async with container.consultations.uow() as uow:
        key = await uow.case_keys.for_consultation(uuid.UUID(cid))
    assert link["detail"] == {
        "sha256_hmac": file_digest(key, file["sha256"]),
        "copy_sha256_hmac": file_digest(key, file["copy_sha256"]),
    }
    assert file["sha256"] not in json.dumps(link) and file["copy_sha256"] not in json.dumps(link)
    assert (await container.custody.verify()).breaks == []


async def test_an_item_a_request_names_is_not_deleted(client, people) -> None:
    owner = await people.create()
    cid = (await open_consultation(client, owner))["id"]
    e = await item(client, owner, cid)
    request = await client.post(
        f"/v1/consultations/{cid}/requests",
        headers=owner.headers,
        json={
            "kind": "platform_form",
            "target": {"platform": "x", "service": "x"},
            "evidence_ids": [e["id"]],
        },
    )
    assert request.status_code == 201, request.text
    url = f"/v1/consultations/{cid}/evidence/{e['id']}"
    assert_problem(await client.delete(url, headers=owner.headers), 409, "evidence_in_use")
    assert (await client.get(url, headers=owner.headers)).status_code == 200


async def _keys(container, evidence_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    import uuid

    from infra.db.tables import EvidenceRow

    async with container.sessions() as db:
        row = await db.get(EvidenceRow, uuid.UUID(evidence_id))
    assert row is not None and row.file_key and row.file_original_key
    return [row.file_key, row.file_original_key]
