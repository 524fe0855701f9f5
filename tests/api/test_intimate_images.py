"""Issue 16 §1: in a consultation about intimate images (or a minor) the centre keeps hashes, not pictures.
Uploads are refused with what to do instead; a supervisor's upload slot lets one adult's file in, sealed for
the assignee; items whose PDQ hashes are near each other are linked for staff, across consultations."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, replace
from typing import Any

import pytest

from domain.actors import Role
from infra.image_hashes import image_hashes
from tests.api.consultation_helpers import etag, every_page, open_consultation, take
from tests.conftest import assert_problem
from tests.pictures import encode, picture, resized_jpeg

SEXUAL = {"categories": ["RIGHTS.PRIVATE_SEXUAL"], "victim_is_minor": False}


def hashes_of(data: bytes) -> dict[str, Any]:
    """What a front end sends: the reference function's output, computed where the picture is."""
    return asdict(image_hashes(data))


async def add_item(client, person, cid: str, **body: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post(f"/v1/consultations/{cid}/evidence", headers=person.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def assign(client, supervisor, cid: str, assignee_id: object) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        f"/v1/consultations/{cid}/assign",
        headers={**supervisor.headers, "If-Match": await etag(client, supervisor, cid)},
        json={"assignee_id": str(assignee_id)},
    )
    assert response.status_code == 200, response.text


def stored_files(container) -> set[str]:  # type: ignore[no-untyped-def]
    root = container.settings.storage_dir
    return {p.name for p in root.iterdir()} if root.exists() else set()


async def test_hashes_not_pictures_for_intimate_images(client, people, container) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner, **SEXUAL)
    data = encode(picture(7))
    sent = hashes_of(data)
    item = await add_item(
        client,
        owner,
        c["id"],
        url="https://example-uploader.jp/v/abc123",
        notes="元交際相手が無断で投稿した写真です。画像は送らずにハッシュだけ記録します。",
        image_hashes={**sent, "sha256": sent["sha256"].upper()},
    )
    assert item["image_hashes"] == sent  # stored lower-case, exactly as computed
    assert item["file"] is None and item["upload_slot"] is None
    before = stored_files(container)
    refused = await client.put(
        f"/v1/consultations/{c['id']}/evidence/{item['id']}/file",
        headers=owner.headers,
        files={"file": ("写真.png", data, "image/png")},
    )
    problem = assert_problem(refused, 409, "images_not_accepted")
    assert (
        "StopNCII" in problem["detail"]
        and "Take It Down" in problem["detail"]
        and "#8103" in problem["detail"]
    )
    assert {"stopncii", "take_it_down", "police_8103"} <= set(problem["desks"])
    assert stored_files(container) == before  # not a byte of it was kept
    for code in problem["desks"]:  # every desk named is in the directory, with a source
        desk = await client.get(f"/v1/desks/{code}")
        assert desk.status_code == 200, code
    stop = (await client.get("/v1/desks/stopncii")).json()
    assert stop["url"] == "https://stopncii.org/"
    # The same refusal for every category of the kind, and for PDFs (a PDF carries the same picture).
    for categories in (["ILLEGAL.SEXUAL_FILMING"], ["RIGHTS.DEFAMATION", "RIGHTS.PRIVATE_SEXUAL"]):
        other = await open_consultation(client, owner, categories=categories, victim_is_minor=False)
        blank = await add_item(client, owner, other["id"], url="https://example.jp/p/1")
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        assert_problem(
            await client.put(
                f"/v1/consultations/{other['id']}/evidence/{blank['id']}/file",
                headers=owner.headers,
                files={"file": ("a.pdf", pdf, "application/pdf")},
            ),
            409,
            "images_not_accepted",
        )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"sha256": "a" * 63}, 422, "validation_failed"),
        ({"pdq": "z" * 64}, 422, "validation_failed"),
        ({"pdq_quality": 101}, 422, "validation_failed"),
        ({"pdq_quality": 12}, 422, "pdq_quality_too_low"),
        ({"width": 0}, 422, "validation_failed"),
        ({"extra": "x"}, 422, "validation_failed"),
    ],
)
async def test_device_hashes_are_validated_strictly(client, people, change, status, code) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c = await open_consultation(client, owner, **SEXUAL)
    body = {**hashes_of(encode(picture(8))), **change}
    response = await client.post(
        f"/v1/consultations/{c['id']}/evidence", headers=owner.headers, json={"image_hashes": body}
    )
    assert_problem(response, status, code)


async def test_a_minor_s_images_are_never_accepted(client, people) -> None:
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    for categories in (["RIGHTS.DEFAMATION"], ["ILLEGAL.CSAM"]):
        c = await open_consultation(client, owner, categories=categories, victim_is_minor=True)
        await take(client, supervisor, c["id"])
        item = await add_item(client, owner, c["id"], image_hashes=hashes_of(encode(picture(9))))
        for who in (owner, supervisor):
            problem = assert_problem(
                await client.put(
                    f"/v1/consultations/{c['id']}/evidence/{item['id']}/file",
                    headers=who.headers,
                    files={"file": ("a.png", encode(picture(9)), "image/png")},
                ),
                403,
                "minor_images_never_accepted",
            )
            assert "take_it_down" in problem["desks"] and "stopncii" not in problem["desks"]
        # Not even a supervisor can open a slot.
        assert_problem(
            await client.post(
                f"/v1/consultations/{c['id']}/evidence/{item['id']}/upload-slot",
                headers=supervisor.headers,
                json={"reason": "本人の強い希望"},
            ),
            403,
            "minor_images_never_accepted",
        )


async def test_a_supervisor_s_upload_slot_lets_one_file_in_sealed_for_the_assignee(client, people) -> None:
    owner = await people.create()
    stranger = await people.create()
    supervisor = await people.create(Role.supervisor)
    consultant = await people.create(Role.consultant)
    other_consultant = await people.create(Role.consultant)
    c = await open_consultation(client, owner, **SEXUAL)
    item = await add_item(client, owner, c["id"], url="https://example-uploader.jp/v/abc123")
    base = f"/v1/consultations/{c['id']}/evidence/{item['id']}"
    reason = "ご本人が、警察に相談する前に画像そのものを証拠として預けたいと強く希望されたため"
    # Only a supervisor opens a slot, with a reason.
    for who in (owner, consultant):
        assert_problem(
            await client.post(base + "/upload-slot", headers=who.headers, json={"reason": reason}),
            403,
            "role_not_allowed",
        )
    assert_problem(
        await client.post(base + "/upload-slot", headers=supervisor.headers, json={"reason": "   "}),
        422,
    )
    opened = await client.post(base + "/upload-slot", headers=supervisor.headers, json={"reason": reason})
    assert opened.status_code == 200, opened.text
    slot = opened.json()["upload_slot"]
    assert slot["reason"] == reason and slot["opened_by"] == str(supervisor.id)
    # The consulter does not see the staff's reasoning, only their item.
    mine = (await client.get(base, headers=owner.headers)).json()
    assert mine["upload_slot"] is None
    assert_problem(
        await client.post(base + "/upload-slot", headers=supervisor.headers, json={"reason": reason}),
        409,
        "upload_slot_already_open",
    )
    # Another item of the same case still takes no picture: the slot is for one item.
    second = await add_item(client, owner, c["id"], url="https://example-uploader.jp/v/def456")
    assert_problem(
        await client.put(
            f"/v1/consultations/{c['id']}/evidence/{second['id']}/file",
            headers=owner.headers,
            files={"file": ("a.png", encode(picture(10)), "image/png")},
        ),
        409,
        "images_not_accepted",
    )
    data = encode(picture(10))
    uploaded = await client.put(
        base + "/file", headers=owner.headers, files={"file": ("a.png", data, "image/png")}
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["file"]["sealed"] is True
    assert uploaded.json()["image_hashes"]["pdq"] == image_hashes(data).pdq  # hashed by the server as well
    assert_problem(
        await client.put(base + "/file", headers=owner.headers, files={"file": ("b.png", data, "image/png")}),
        409,
        "file_already_attached",
    )
    # Sealed: nobody opens it but the assigned consultant; everyone else is 404, as if there were no file.
    await assign(client, supervisor, c["id"], consultant.id)
    assert (await client.get(base + "/file", headers=consultant.headers)).status_code == 200
    for who in (owner, supervisor, other_consultant, stranger):
        assert_problem(await client.get(base + "/file", headers=who.headers), 404)
    # The evidence bundle follows the same rule: the consulter's bundle (originals asked for) carries the
    # picture's hashes and no bytes of it; the assignee's carries the cleaned copy.
    bundle = f"/v1/consultations/{c['id']}/evidence/bundle"
    theirs = zipfile.ZipFile(
        io.BytesIO((await client.get(bundle, headers=owner.headers, params={"originals": "true"})).content)
    )
    entry = next(
        i for i in json.loads(theirs.read("manifest.json"))["items"] if i["evidence_id"] == item["id"]
    )
    assert (
        entry["original"]["sha256"] == uploaded.json()["file"]["sha256"] and not entry["original"]["included"]
    )
    assert not any(n.startswith(("files/", "originals/")) for n in theirs.namelist())
    assigned = zipfile.ZipFile(io.BytesIO((await client.get(bundle, headers=consultant.headers)).content))
    assert any(n.startswith("files/") for n in assigned.namelist())
    # A case without the slot rule needs none.
    plain = await open_consultation(client, owner)
    plain_item = await add_item(client, owner, plain["id"])
    assert_problem(
        await client.post(
            f"/v1/consultations/{plain['id']}/evidence/{plain_item['id']}/upload-slot",
            headers=supervisor.headers,
            json={"reason": reason},
        ),
        409,
        "upload_slot_not_needed",
    )
    audit = await every_page(client, "/v1/audit-events", supervisor.headers)
    actions = [e["action"] for e in audit]
    assert "evidence.upload_slot_opened" in actions and "evidence.file_received" in actions


async def test_similar_pictures_are_linked_for_staff_across_consultations(client, people, container) -> None:
    first_owner, second_owner, third_owner = [await people.create() for _ in range(3)]
    supervisor = await people.create(Role.supervisor)
    a = await open_consultation(client, first_owner, **SEXUAL)
    b = await open_consultation(client, second_owner, **SEXUAL)
    d = await open_consultation(client, third_owner)  # an ordinary case: its screenshot is uploaded
    one = await add_item(client, first_owner, a["id"], image_hashes=hashes_of(encode(picture(21))))
    travelled = await add_item(
        client, second_owner, b["id"], image_hashes=hashes_of(resized_jpeg(picture(21), 0.4, 60))
    )
    unrelated = await add_item(client, second_owner, b["id"], image_hashes=hashes_of(encode(picture(22))))
    screenshot = await add_item(client, third_owner, d["id"], url="https://example.jp/p/9")
    uploaded = await client.put(
        f"/v1/consultations/{d['id']}/evidence/{screenshot['id']}/file",
        headers=third_owner.headers,
        files={"file": ("s.jpg", resized_jpeg(picture(21), 0.8, 85), "image/jpeg")},
    )
    assert uploaded.status_code == 200, uploaded.text

    url = f"/v1/consultations/{a['id']}/evidence/{one['id']}/similar"
    found = (await client.get(url, headers=supervisor.headers)).json()
    assert {f["evidence_id"] for f in found} == {travelled["id"], screenshot["id"]}
    assert {f["consultation_id"] for f in found} == {b["id"], d["id"]}
    assert all(0 <= f["distance"] <= container.settings.pdq_match_distance for f in found)
    assert set(found[0]) == {"evidence_id", "consultation_id", "distance", "created_at"}  # ids only
    assert unrelated["id"] not in {f["evidence_id"] for f in found}
    no_hashes = await add_item(client, first_owner, a["id"], url="https://example.jp/p/2")
    assert (
        await client.get(
            f"/v1/consultations/{a['id']}/evidence/{no_hashes['id']}/similar", headers=supervisor.headers
        )
    ).json() == []
    # Consulters never see other consultations' anything, their own case's owner included.
    for who in (first_owner, second_owner):
        assert_problem(await client.get(url, headers=who.headers), 403)
    # A consultant who may not see the case gets 404, as for any of its routes.
    consultant = await people.create(Role.consultant)
    await take(client, supervisor, a["id"])
    assert_problem(await client.get(url, headers=consultant.headers), 404)
    # The distance is a setting: at 0 bits only identical hashes link.
    service = container.consultations
    kept = service.policy
    service.policy = replace(kept, pdq_match_distance=0)
    try:
        assert (await client.get(url, headers=supervisor.headers)).json() == []
    finally:
        service.policy = kept


async def test_ids_from_another_consultation_are_404(client, people) -> None:
    """An evidence id is looked up under its own consultation only: pairing it with another case's id is 404
    for the new routes, as for the others."""
    owner, other = await people.create(), await people.create()
    supervisor = await people.create(Role.supervisor)
    mine = await open_consultation(client, owner, **SEXUAL)
    theirs = await open_consultation(client, other, **SEXUAL)
    item = await add_item(client, other, theirs["id"], image_hashes=hashes_of(encode(picture(40))))
    crossed = f"/v1/consultations/{mine['id']}/evidence/{item['id']}"
    assert_problem(
        await client.post(
            crossed + "/upload-slot", headers=supervisor.headers, json={"reason": "本人の希望"}
        ),
        404,
        "evidence_not_found",
    )
    assert_problem(
        await client.get(crossed + "/similar", headers=supervisor.headers), 404, "evidence_not_found"
    )
    # The owner of one case cannot reach the other's item through any of them.
    direct = f"/v1/consultations/{theirs['id']}/evidence/{item['id']}"
    for method, path in (("GET", direct), ("GET", direct + "/file"), ("PUT", direct + "/file")):
        response = await client.request(
            method,
            path,
            headers=owner.headers,
            **({"files": {"file": ("a.png", encode(picture(40)), "image/png")}} if method == "PUT" else {}),
        )
        assert_problem(response, 404)


async def test_a_case_reclassified_as_intimate_images_seals_its_earlier_files(client, people) -> None:
    owner = await people.create()
    consultant = await people.create(Role.consultant)
    supervisor = await people.create(Role.supervisor)
    c = await open_consultation(client, owner)  # defamation: screenshots are accepted
    item = await add_item(client, owner, c["id"], url="https://x.com/a/status/5")
    file_url = f"/v1/consultations/{c['id']}/evidence/{item['id']}/file"
    put = await client.put(
        file_url, headers=owner.headers, files={"file": ("s.png", encode(picture(50)), "image/png")}
    )
    assert put.status_code == 200 and put.json()["file"]["sealed"] is False
    assert (await client.get(file_url, headers=owner.headers)).status_code == 200
    await take(client, consultant, c["id"])
    changed = await client.patch(
        f"/v1/consultations/{c['id']}",
        headers={**consultant.headers, "If-Match": await etag(client, consultant, c["id"])},
        json={"categories": ["RIGHTS.PRIVATE_SEXUAL"]},
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get(file_url, headers=consultant.headers)).status_code == 200
    for who in (owner, supervisor):
        assert_problem(await client.get(file_url, headers=who.headers), 404, "file_not_found")
