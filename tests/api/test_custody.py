"""Chain of custody (issue 16 §3): every event on a consultation's record is a hash-linked link: a change's link
is written in the change's own transaction, a read's waits (committed with the read) for the next change, chain
read or worker pass (issue 12: reads of one case never wait on each other); edits, deletions, reordering and a
cut tail made directly in the database are found, by the check and by `madoguchi verify-audit`; concurrent
events on one consultation never fork."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import text

from domain.actors import Actor, Client, Role
from domain.custody import GENESIS, Link, canonical, link_hash
from infra.db.custody import SqlCustody
from tests.api.consultation_helpers import open_consultation, take
from tests.api.test_evidence import png


async def history(client, people, container=None) -> tuple[str, object, object, str]:  # type: ignore[no-untyped-def]
    """A consultation with the usual life: intake, an evidence item and its file, a consultant who takes
    the case, views the item and downloads the file (those two reads then chained by the worker's pass when
    `container` is given; each of those requests reads the consultation too: four reads)."""
    owner = await people.create()
    c = await open_consultation(client, owner)
    base = f"/v1/consultations/{c['id']}/evidence"
    item = await client.post(
        base,
        headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"url": "https://x.com/someone/status/1234567890", "poster_account": "@someone"},
    )
    assert item.status_code == 201, item.text
    evidence_id = item.json()["id"]
    put = await client.put(
        f"{base}/{evidence_id}/file", headers=owner.headers, files={"file": ("a.png", png(), "image/png")}
    )
    assert put.status_code == 200, put.text
    consultant = await people.create(Role.consultant)
    await take(client, consultant, c["id"])
    assert (await client.get(f"{base}/{evidence_id}", headers=consultant.headers)).status_code == 200
    assert (await client.get(f"{base}/{evidence_id}/file", headers=consultant.headers)).status_code == 200
    if container is not None:
        assert await container.custody.chain_reads() == 4
    return c["id"], owner, consultant, evidence_id


async def rows(container, consultation_id: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    async with container.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT * FROM custody_link WHERE consultation_id = :c ORDER BY seq"),
            {
                "c": uuid.UUID(consultation_id).hex
                if container.engine.dialect.name == "sqlite"
                else consultation_id
            },
        )
        out = []
        for r in result:
            row = dict(r._mapping)
            if isinstance(row["detail"], str):  # SQLite hands raw JSON text to a text() query
                row["detail"] = json.loads(row["detail"])
            out.append(row)
        return out


def cid_param(container, consultation_id: str) -> object:  # type: ignore[no-untyped-def]
    value = uuid.UUID(consultation_id)
    return value.hex if container.engine.dialect.name == "sqlite" else value


async def execute(container, sql: str, **params: object) -> None:  # type: ignore[no-untyped-def]
    async with container.engine.begin() as conn:
        for statement in sql.split(";"):
            await conn.execute(text(statement), params)


async def test_every_event_on_the_record_is_a_link(client, people, container) -> None:
    cid, owner, consultant, evidence_id = await history(client, people)
    # The consultant's last two requests only read: their four links wait, committed, for the chain's next
    # writer.
    waiting = await rows(container, cid)
    assert waiting[-1]["action"] == "consultation.changed"
    report = await container.custody.verify()
    assert report.breaks == [] and report.waiting == 4 and report.links == len(waiting)
    assert await container.custody.chain_reads() == 4  # the worker's pass
    links = await rows(container, cid)
    actions = [(r["action"], r["actor_role"], r["client"]) for r in links]
    assert actions[:3] == [
        ("consultation.created", "consulter", "web"),
        ("evidence.created", "consulter", "web"),
        ("evidence.file_received", "consulter", "web"),
    ]
    staff = [a for a, role, door in actions[3:]]
    assert all(role == "consultant" and door == "staff" for _, role, door in actions[3:])
    assert staff[-4:] == ["consultation.read", "evidence.viewed", "consultation.read", "evidence.downloaded"]
    assert "consultation.changed" in staff
    assert [r["seq"] for r in links] == list(range(1, len(links) + 1))
    assert links[0]["prev_hash"] == GENESIS
    received = next(r for r in links if r["action"] == "evidence.file_received")
    assert received["object_id"] == evidence_id and len(received["detail"]["sha256_hmac"]) == 64
    assert {str(r["actor_id"]).replace("-", "") for r in links} == {owner.id.hex, consultant.id.hex}
    report = await container.custody.verify()
    assert report.breaks == [] and report.links == len(links) and report.waiting == 0
    assert await container.custody.chain_reads() == 0


async def test_waiting_reads_are_chained_in_order_before_the_next_change(client, people, container) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    consultant = await people.create(Role.consultant)
    await take(client, consultant, c["id"])
    assert await container.custody.chain_reads() >= 0  # whatever the intake and the assignment left
    before = await rows(container, c["id"])
    for _ in range(3):
        assert (
            await client.get(f"/v1/consultations/{c['id']}", headers=consultant.headers)
        ).status_code == 200
    assert len(await rows(container, c["id"])) == len(before)
    # The consulter writes: the three reads are chained first, in the order they happened, then the message.
    posted = await client.post(
        f"/v1/consultations/{c['id']}/messages",
        headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"body": "追加のスクリーンショットを送ります。"},
    )
    assert posted.status_code == 201, posted.text
    new = [(r["action"], r["actor_role"]) for r in (await rows(container, c["id"]))[len(before) :]]
    assert new[:3] == [("consultation.read", "consultant")] * 3
    assert ("message.posted", "consulter") in new[3:] and all(role == "consulter" for _, role in new[3:])
    report = await container.custody.verify(uuid.UUID(c["id"]))
    assert report.breaks == [] and report.waiting == 0


async def test_the_evidence_bundle_carries_reads_not_yet_chained(client, people, container) -> None:
    cid, _owner, consultant, _evidence = await history(client, people)
    chained = len(await rows(container, cid))
    bundle = await client.get(f"/v1/consultations/{cid}/evidence/bundle", headers=consultant.headers)
    assert bundle.status_code == 200, bundle.text
    links = await rows(container, cid)
    # The four waiting reads first, in order, then the bundle's own events, the export last.
    assert [r["action"] for r in links[chained : chained + 4]] == [
        "consultation.read",
        "evidence.viewed",
        "consultation.read",
        "evidence.downloaded",
    ]
    assert links[-1]["action"] == "evidence.exported"
    assert (await container.custody.verify()).waiting == 0


async def test_a_worker_pass_chains_waiting_reads(client, people, container) -> None:
    cid, *_ = await history(client, people)
    assert (await container.custody.verify()).waiting == 4
    await container.worker.run_once()
    assert container.worker.last_pass.reads_chained == 4
    report = await container.custody.verify()
    assert report.waiting == 0 and report.breaks == []
    assert (await rows(container, cid))[-1]["action"] == "evidence.downloaded"


async def test_a_refused_event_leaves_no_link(client, people, container) -> None:
    owner = await people.create()
    c = await open_consultation(client, owner)
    before = await rows(container, c["id"])
    other = await people.create(Role.consultant)
    await take(client, other, c["id"])
    stranger = await people.create(Role.consultant)
    # Another consultant reads the assigned case: 404, and the read it started is rolled back with it.
    assert (
        await client.get(f"/v1/consultations/{c['id']}/evidence", headers=stranger.headers)
    ).status_code == 404
    await container.custody.chain_reads()  # anything waiting (not the stranger's read: it was rolled back)
    after = await rows(container, c["id"])
    assert len(after) > len(before)
    assert all(str(r["actor_id"]).replace("-", "") != stranger.id.hex for r in after)
    assert (await container.custody.verify()).waiting == 0


def test_canonical_form_is_byte_exact() -> None:
    from datetime import UTC, datetime

    link = Link(
        consultation_id=uuid.UUID("8a1c3e9e-0b51-4c36-9f1a-3f7f0c2b7d11"),
        seq=1,
        at=datetime(2026, 12, 1, 3, 4, 5, 6, tzinfo=UTC),
        action="evidence.viewed",
        object_type="evidence",
        object_id="e1",
        actor_role="consultant",
        actor_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        client="staff",
        detail={"メモ": "閲覧", "n": 2},
    )
    assert (
        canonical(link)
        == (
            '{"action":"evidence.viewed","actor_id":"00000000-0000-4000-8000-000000000001","actor_role":"consultant",'
            '"at":"2026-12-01T03:04:05.000006Z","client":"staff","consultation_id":"8a1c3e9e-0b51-4c36-9f1a-3f7f0c2b7d11",'
            '"detail":{"n":2,"メモ":"閲覧"},"object_id":"e1","object_type":"evidence","seq":1,"v":1}'
        ).encode()
    )
    import hashlib

    assert link_hash(GENESIS, link) == hashlib.sha256(bytes(32) + canonical(link)).hexdigest()
    with pytest.raises(ValueError):
        canonical(Link(**{**{s: getattr(link, s) for s in Link.__slots__}, "detail": {"x": 1.5}}))  # type: ignore[attr-defined]


TAMPERING = {
    # what is done to link 3 (or to the tail) and the first link the check names
    "edit": ("UPDATE custody_link SET object_id = 'someone-else' WHERE consultation_id = :c AND seq = 3", 3),
    "edit_actor": (
        "UPDATE custody_link SET actor_role = 'supervisor' WHERE consultation_id = :c AND seq = 3",
        3,
    ),
    "delete": ("DELETE FROM custody_link WHERE consultation_id = :c AND seq = 3", 3),
    "reorder": (  # links 2 and 3 swap places (in three steps: the key forbids two link 3s even for a moment)
        "UPDATE custody_link SET seq = -2 WHERE consultation_id = :c AND seq = 2;"
        "UPDATE custody_link SET seq = 2 WHERE consultation_id = :c AND seq = 3;"
        "UPDATE custody_link SET seq = 3 WHERE consultation_id = :c AND seq = -2",
        2,
    ),
}


@pytest.mark.parametrize("kind", [*TAMPERING, "rehashed_edit", "truncated_tail"])
async def test_tampering_in_the_database_is_found(client, people, container, kind: str) -> None:
    cid, *_ = await history(client, people, container)
    links = await rows(container, cid)
    c = cid_param(container, cid)
    if kind in TAMPERING:
        sql, first_broken = TAMPERING[kind]
        await execute(container, sql, c=c)
    elif kind == "rehashed_edit":
        # Someone who knows the scheme edits link 3 and recomputes its hash: link 4 no longer follows.
        async with container.sessions() as db:
            stored = (await SqlCustody(db, container.clock).stored_links(uuid.UUID(cid)))[2]
        forged = replace(stored, object_id="someone-else")
        await execute(
            container,
            "UPDATE custody_link SET object_id = 'someone-else', hash = :h WHERE consultation_id = :c AND seq = 3",
            c=c,
            h=link_hash(stored.prev_hash, forged),
        )
        first_broken = 4
    else:
        # The last two links are cut; every remaining link is intact, but the head remembers the length.
        await execute(
            container,
            "DELETE FROM custody_link WHERE consultation_id = :c AND seq >= :s",
            c=c,
            s=len(links) - 1,
        )
        first_broken = len(links) - 1
    report = await container.custody.verify()
    assert [(str(b.consultation_id), b.seq) for b in report.breaks] == [(cid, first_broken)], report.breaks


def verify_audit(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_")}
    env["MADOGUCHI_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "verify-audit"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_verify_audit_command_names_the_first_broken_link(
    client, people, container, database_url
) -> None:
    cid, *_ = await history(client, people)
    ok = await asyncio.to_thread(verify_audit, database_url)
    assert ok.returncode == 0, ok.stderr
    assert "0 broken (4 reads waiting to be chained)" in ok.stdout
    await container.custody.chain_reads()
    await execute(container, TAMPERING["edit"][0], c=cid_param(container, cid))
    broken = await asyncio.to_thread(verify_audit, database_url)
    assert broken.returncode == 1
    assert f"BROKEN consultation {cid} link 3: hash_mismatch" in broken.stderr
    assert "1 broken" in broken.stdout


async def test_concurrent_events_on_one_consultation_never_fork(container) -> None:
    """Twelve units of work write to one chain at once, each holding its transaction open a moment after
    its event; on PostgreSQL they run on twelve connections. Half change the record, half read it (their links
    wait and are chained by the worker's pass). The chain comes out 1..12, each link on the one before it."""
    consultation_id = uuid.uuid4()
    actor = Actor(Client.staff, uuid.uuid4(), role=Role.supervisor)
    started = asyncio.Event()

    async def event(n: int) -> None:
        action = "consultation.changed" if n % 2 else "consultation.read"
        async with container.consultations.uow() as uow:
            await uow.audit.record(actor, action, "consultation", consultation_id, {"n": n})
            started.set()
            await asyncio.sleep(0.02)
            await uow.commit()

    await asyncio.gather(*(event(n) for n in range(12)))
    await container.custody.chain_reads()
    report = await container.custody.verify(consultation_id)
    assert report.breaks == [] and report.links == 12 and report.waiting == 0
    async with container.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT seq, detail FROM custody_link WHERE consultation_id = :c ORDER BY seq"),
                {"c": cid_param(container, str(consultation_id))},
            )
        ).all()
    assert [seq for seq, _ in stored] == list(range(1, 13))
    details = [json.loads(d) if isinstance(d, str) else d for _, d in stored]
    assert sorted(d["n"] for d in details) == list(range(12))


@pytest.mark.commits  # the change holds its chain's head in a transaction of its own while the read runs
async def test_a_read_does_not_wait_for_a_change_holding_the_chain(client, people, container) -> None:
    """A staff read of a case commits its audit record and its waiting link while another transaction holds
    that case's chain head (before issue 12 it waited for that commit: reads of one case ran one at a time).
    SQLite runs one write transaction at a time, so there the read waits as every write does."""
    owner = await people.create()
    c = await open_consultation(client, owner)
    consultant = await people.create(Role.consultant)
    await take(client, consultant, c["id"])
    async with container.sessions() as db:
        await SqlCustody(db, container.clock).flush(settle={uuid.UUID(c["id"])})  # the head, held
        reading = asyncio.create_task(client.get(f"/v1/consultations/{c['id']}", headers=consultant.headers))
        await asyncio.sleep(0.5)
        assert reading.done() == (container.engine.dialect.name == "postgresql")
        await db.commit()
    assert (await reading).status_code == 200
    assert (await container.custody.verify(uuid.UUID(c["id"]))).waiting == 1
