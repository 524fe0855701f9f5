"""Issue 17 §2: ended cases are shredded after their retention period unless a supervisor's legal hold keeps them;
the hold's placing and lifting are on the chain of custody; a dry run says what would go; statistics keep
counting a shredded case."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain.actors import Role
from infra.db.custody import SqlCustody
from infra.db.tables import ConsultationRow, MessageRow
from infra.retention_loader import load_retention_rules, rules_from_raw
from tests.api.consultation_helpers import open_consultation, take
from tests.api.test_encryption_at_rest import as_actor, png_with_private_text, uploaded
from tests.conftest import assert_problem

NARRATIVE = "同級生がわたしの顔写真を加工して掲示板に貼っています。学校名も書かれています。"
HOLD_REASON = "名誉毀損訴訟の証拠保全(代理人弁護士からの依頼)"


def hold_url(cid: str) -> str:
    return f"/v1/consultations/{cid}/legal-hold"


async def withdrawn(client, owner, **intake) -> dict:  # type: ignore[no-untyped-def,type-arg]
    c = await open_consultation(client, owner, **intake)
    response = await client.post(f"/v1/consultations/{c['id']}/withdraw", headers=owner.headers)
    assert response.status_code == 200, response.text
    return c


async def later(people, clock, *persons, days: int = 366):  # type: ignore[no-untyped-def]
    """The clock moves past the retention period; the people sign in again (their tokens ran out meanwhile)."""
    clock.advance(timedelta(days=days))
    return [await people.sign_in(p.id, p.email, p.role) for p in persons]


async def links(container, cid: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with container.sessions() as db:
        return [x.action for x in await SqlCustody(db, container.clock).links(uuid.UUID(cid))]


async def test_a_case_past_its_period_is_shredded_and_a_held_one_is_kept(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    gone, _ = await uploaded(client, owner, png_with_private_text(41))
    sent = await client.post(
        f"/v1/consultations/{gone['id']}/messages", headers=owner.headers, json={"body": "追記です。"}
    )
    assert sent.status_code == 201, sent.text
    await client.post(f"/v1/consultations/{gone['id']}/withdraw", headers=owner.headers)
    held = await withdrawn(client, owner, narrative=NARRATIVE)
    still_open = await open_consultation(client, owner)
    placed = await client.put(hold_url(held["id"]), headers=supervisor.headers, json={"reason": HOLD_REASON})
    assert placed.status_code == 201, placed.text
    assert placed.json()["reason"] == HOLD_REASON and placed.json()["placed_by"] == str(supervisor.id)
    # Before the period ends nothing is due.
    report = (await client.get("/v1/retention", headers=supervisor.headers)).json()
    assert (report["due"], report["held"], report["consultation_ids"]) == (0, 0, [])
    assert {r["status"]: r["keep_days"] for r in report["rules"]} == {"closed": 1095, "withdrawn": 365}
    owner, supervisor = await later(people, clock, owner, supervisor)
    # The dry run names the case that would go and counts the held one; it changes nothing.
    report = (await client.get("/v1/retention", headers=supervisor.headers)).json()
    assert (report["due"], report["held"], report["consultation_ids"]) == (1, 1, [gone["id"]])
    assert (await client.get(f"/v1/consultations/{gone['id']}", headers=owner.headers)).status_code == 200
    # The worker's pass shreds it.
    assert await container.worker.shred_due(clock.now()) == 1
    assert_problem(
        await client.get(f"/v1/consultations/{gone['id']}", headers=owner.headers),
        404,
        "consultation_not_found",
    )
    for c in (held, still_open):
        assert (await client.get(f"/v1/consultations/{c['id']}", headers=owner.headers)).status_code == 200
    # What was written is gone from the rows, and the files from the store; the chain says when and why.
    case_id = uuid.UUID(gone["id"])
    async with container.sessions() as db:
        row = (await db.execute(select(ConsultationRow).where(ConsultationRow.id == case_id))).scalar_one()
        bodies = list(
            (await db.execute(select(MessageRow.body).where(MessageRow.consultation_id == case_id))).scalars()
        )
    assert (row.title, row.narrative, row.tried) == ("", "", None) and set(bodies) == {""}
    assert row.status == "withdrawn"  # the coded fields stay for the statistics
    assert (await links(container, gone["id"]))[-1] == "consultation.shredded"
    # A second pass finds nothing more; the held case stays until its hold is lifted.
    assert await container.worker.shred_due(clock.now() + timedelta(days=1)) == 0
    assert (await client.delete(hold_url(held["id"]), headers=supervisor.headers)).status_code == 204
    assert [a for a in await links(container, held["id"]) if a.startswith("legal_hold.")] == [
        "legal_hold.placed",
        "legal_hold.lifted",
    ]
    assert (await container.retention.apply()).shredded == 1
    assert (await client.get(f"/v1/consultations/{held['id']}", headers=owner.headers)).status_code == 404


async def test_a_shredded_case_leaves_no_file_in_the_store(client, people, container, clock) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    c, item = await uploaded(client, owner, png_with_private_text(42))
    exported, _ = await container.consultations.export_original(
        as_actor(owner), uuid.UUID(c["id"]), uuid.UUID(item["id"])
    )
    keys = [exported.file.storage_key, exported.file.original_key]
    assert all([await container.blobs.exists(k) for k in keys])
    await client.post(f"/v1/consultations/{c['id']}/withdraw", headers=owner.headers)
    clock.advance(timedelta(days=366))
    assert (await container.retention.apply()).shredded == 1
    assert not any([await container.blobs.exists(k) for k in keys])


async def test_statistics_keep_counting_a_shredded_case(client, people, container, clock) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    await withdrawn(client, owner)
    year = clock.now().year if clock.now().month >= 4 else clock.now().year - 1
    table = "/v1/statistics/tables/channel"
    params = {"fiscal_year": year, "granularity": "year"}
    before = (await client.get(table, headers=supervisor.headers, params=params)).json()
    assert before["total"] == 1 and [r["total"] for r in before["rows"] if r["key"] == "web"] == [
        1
    ]  # counted
    (supervisor,) = await later(people, clock, supervisor)
    assert (await container.retention.apply()).shredded == 1
    after = (await client.get(table, headers=supervisor.headers, params=params)).json()
    assert after["rows"] == before["rows"] and after["total"] == before["total"]


async def test_a_hold_needs_a_supervisor_a_reason_and_one_at_a_time(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner = await people.create()
    supervisor = await people.create(Role.supervisor)
    consultant = await people.create(Role.consultant)
    c = await open_consultation(client, owner)
    url = hold_url(c["id"])
    for who in (owner, consultant):
        assert_problem(
            await client.put(url, headers=who.headers, json={"reason": HOLD_REASON}), 403, "role_not_allowed"
        )
    assert_problem(await client.put(url, headers=supervisor.headers, json={"reason": "   "}), 422)
    assert_problem(await client.get(url, headers=supervisor.headers), 404, "legal_hold_not_found")
    assert (
        await client.put(url, headers=supervisor.headers, json={"reason": HOLD_REASON})
    ).status_code == 201
    assert_problem(
        await client.put(url, headers=supervisor.headers, json={"reason": "別件"}), 409, "legal_hold_exists"
    )
    assert (await client.get(url, headers=supervisor.headers)).json()["reason"] == HOLD_REASON
    assert (await client.delete(url, headers=supervisor.headers)).status_code == 204
    assert_problem(await client.delete(url, headers=supervisor.headers), 404, "legal_hold_not_found")
    # A case that does not exist answers like one the caller may not see.
    assert_problem(
        await client.put(
            hold_url(str(uuid.uuid4())), headers=supervisor.headers, json={"reason": HOLD_REASON}
        ),
        404,
        "consultation_not_found",
    )
    # The reason is on the hold, not on the chain (ids only there).
    async with container.sessions() as db:
        chain = await SqlCustody(db, container.clock).links(uuid.UUID(c["id"]))
    assert HOLD_REASON not in str([x.detail for x in chain])


def test_the_retention_rules_are_reference_data_with_a_source() -> None:
    rules = load_retention_rules()
    assert {r.status.value for r in rules} == {"closed", "withdrawn"}
    assert all(r.source.startswith("https://") and r.checked for r in rules)
    good = {
        "status": "closed",
        "keep": {"days": 1095},
        "basis_ja": "x",
        "source": "https://a.example",
        "checked": rules[0].checked,
    }
    with pytest.raises(ValueError, match="retention.yaml"):
        rules_from_raw({"rules": [{**good, "kep": {"days": 1}}]})
    with pytest.raises(ValueError, match="no rule for withdrawn"):
        rules_from_raw({"rules": [good]})
    with pytest.raises(ValueError, match="less than 30 days"):
        rules_from_raw({"rules": [good, {**good, "status": "withdrawn", "keep": {"days": 3}}]})


async def test_a_shredded_case_leaves_the_review_queue_and_its_texts_everywhere(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    """Security review: a draft awaiting review on a shredded case broke the advisor's whole queue (the key
    was asked for and gone), and letters, reviews and request events kept their texts."""
    from infra.db.tables_quality import AnswerVersionRow

    owner = await people.create()
    staff = await people.create(Role.consultant)
    advisor = await people.create(Role.legal_advisor)
    c = await open_consultation(client, owner, narrative=NARRATIVE)
    await take(client, staff, c["id"])
    base = f"/v1/consultations/{c['id']}/answers"
    draft = (await client.post(base, headers=staff.headers, json={"body": "発信者情報開示のご案内"})).json()
    assert (await client.post(f"{base}/{draft['id']}/submit", headers=staff.headers)).status_code == 200
    await client.post(f"/v1/consultations/{c['id']}/withdraw", headers=owner.headers)
    owner, staff, advisor = await later(people, clock, owner, staff, advisor)
    assert (await container.retention.apply()).shredded == 1
    queue = await client.get("/v1/reviews", headers=advisor.headers)
    assert queue.status_code == 200 and draft["id"] not in queue.text
    async with container.sessions() as db:
        bodies = list((await db.execute(select(AnswerVersionRow.body))).scalars())
    assert bodies == [""]


async def test_shredding_leaves_no_file_hash_in_the_evidence_rows_or_the_trail(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    """Security review: the files' SHA-256 stayed in the evidence row and in the audit and custody details;
    the hash of an intimate image names it for good."""
    import json

    from infra.db.tables import EvidenceRow
    from infra.db.tables_custody import CustodyHeadRow, CustodyLinkRow
    from infra.db.tables_quality import AuditEventRow
    from tests.api.test_evidence import png

    clock.set(clock.now())
    owner = await people.create()
    consultant = await people.create(Role.consultant)
    c = await open_consultation(client, owner, narrative=NARRATIVE)
    base = f"/v1/consultations/{c['id']}/evidence"
    made = (await client.post(base, headers=owner.headers, json={})).json()
    uploaded = await client.put(
        f"{base}/{made['id']}/file", headers=owner.headers, files={"file": ("証拠.png", png(), "image/png")}
    )
    assert uploaded.status_code == 200, uploaded.text
    hashes = [uploaded.json()["file"]["sha256"], uploaded.json()["file"]["copy_sha256"]]
    await client.post(f"/v1/consultations/{c['id']}/assign", headers=consultant.headers, json={})
    assert (await client.get(f"{base}/{made['id']}/file", headers=consultant.headers)).status_code == 200
    assert (
        await client.post(f"/v1/consultations/{c['id']}/withdraw", headers=owner.headers)
    ).status_code == 200
    async with container.sessions() as db:  # an event recorded before the trail keyed files' hashes
        db.add(
            AuditEventRow(
                id=uuid.uuid4(),
                at=clock.now(),
                action="evidence.file_received",
                object_type="evidence",
                object_id=made["id"],
                detail={"sha256": hashes[0], "copy_sha256": hashes[1], "size": 1},
            )
        )
        await db.commit()
    await later(people, clock)
    assert (await container.retention.apply()).shredded == 1
    async with container.sessions() as db:
        rows = [
            r.model_dump(mode="json")
            for table in (EvidenceRow, AuditEventRow, CustodyLinkRow, CustodyHeadRow)
            for r in (await db.execute(select(table))).scalars()
        ]
    text = json.dumps(rows, default=str)
    assert c["id"] in text  # the rows are there, only the hashes are not
    assert [h for h in hashes if h in text] == []
    assert '"size": 1' in text  # the old event stays, without the hashes
    assert (await container.custody.verify()).breaks == []
