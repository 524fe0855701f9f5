"""Chain heads time-stamped by an RFC 3161 TSA (a local `openssl ts` on loopback with a throwaway CA): the
token verifies against the head statement, with rfc3161-client and independently with `openssl ts -verify`;
a head rewound over a cut tail, and a forged token, are found by the check."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
from sqlalchemy import text

from domain.actors import Actor, Client, Role
from domain.custody import head_statement
from infra.custody import CustodyChecks
from infra.timestamping import TimestampClient, TimestampFailed
from tests.integration.local_tsa import local_tsa, openssl


@pytest.fixture
def tsa():  # type: ignore[no-untyped-def]
    with local_tsa() as running:
        yield running


async def events(container, consultation_id: uuid.UUID, n: int) -> None:  # type: ignore[no-untyped-def]
    actor = Actor(Client.staff, uuid.uuid4(), role=Role.supervisor)
    for i in range(n):
        async with container.consultations.uow() as uow:
            await uow.audit.record(actor, "consultation.changed", "consultation", consultation_id, {"n": i})
            await uow.commit()


def key(container, consultation_id: uuid.UUID) -> object:  # type: ignore[no-untyped-def]
    return consultation_id.hex if container.engine.dialect.name == "sqlite" else consultation_id


async def test_heads_are_stamped_and_the_token_verifies(container, tsa) -> None:  # type: ignore[no-untyped-def]
    checks = CustodyChecks(container.sessions, container.clock, tsa_url=tsa.url, tsa_ca_file=tsa.ca_file)
    cid = uuid.uuid4()
    await events(container, cid, 3)
    stamped = await checks.stamp_heads()
    assert (stamped.stamped, stamped.failed) == (1, 0) and len(tsa.requests) == 1
    assert (await checks.stamp_heads()).stamped == 0  # nothing moved since
    async with container.sessions() as db:
        from infra.db.custody import SqlCustody

        custody = SqlCustody(db, container.clock)
        [stamp] = await custody.stamps(cid)
        head = await custody.head(cid)
    assert head is not None and (stamp.seq, stamp.hash) == (3, head.hash)
    report = await checks.verify(cid)
    assert report.breaks == [] and report.stamps_checked == 1
    # An independent implementation agrees: openssl checks the token over the head statement.
    (tsa.dir / "head.json").write_bytes(head_statement(cid, stamp.seq, stamp.hash))
    (tsa.dir / "token.tsr").write_bytes(stamp.token)
    verified = await asyncio.to_thread(
        subprocess.run,
        [openssl(), "ts", "-verify", "-in", "token.tsr", "-data", "head.json", "-CAfile", "ca.pem",
         "-untrusted", "tsa.pem"],
        cwd=tsa.dir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
    # The same token is not a token over anything else.
    with pytest.raises(TimestampFailed):
        from infra.timestamping import verify_token

        verify_token(stamp.token, head_statement(cid, stamp.seq + 1, stamp.hash), checks.roots)

    # A later event moves the head; the next pass stamps it again.
    await events(container, cid, 1)
    assert (await checks.stamp_heads()).stamped == 1
    assert (await checks.verify(cid)).stamps_checked == 2


async def test_a_rewound_head_over_a_cut_tail_shows_against_the_stamp(container, tsa) -> None:  # type: ignore[no-untyped-def]
    checks = CustodyChecks(container.sessions, container.clock, tsa_url=tsa.url, tsa_ca_file=tsa.ca_file)
    cid = uuid.uuid4()
    await events(container, cid, 4)
    await checks.stamp_heads()
    # Someone with database access cuts links 3 and 4 and sets the head back to link 2: the chain and
    # head agree again, but the stamp remembers link 4.
    async with container.engine.begin() as conn:
        k = key(container, cid)
        await conn.execute(text("DELETE FROM custody_link WHERE consultation_id = :c AND seq > 2"), {"c": k})
        h = (
            await conn.execute(
                text("SELECT hash FROM custody_link WHERE consultation_id = :c AND seq = 2"), {"c": k}
            )
        ).scalar_one()
        await conn.execute(
            text("UPDATE custody_head SET seq = 2, hash = :h WHERE consultation_id = :c"), {"c": k, "h": h}
        )
    [found] = (await checks.verify(cid)).breaks
    assert (found.seq, found.reason) == (4, "stamped_link_missing")


async def test_a_forged_token_is_found(container, tsa) -> None:  # type: ignore[no-untyped-def]
    checks = CustodyChecks(container.sessions, container.clock, tsa_url=tsa.url, tsa_ca_file=tsa.ca_file)
    cid = uuid.uuid4()
    await events(container, cid, 2)
    await checks.stamp_heads()
    async with container.engine.begin() as conn:
        k = key(container, cid)
        token = (
            await conn.execute(text("SELECT token FROM custody_stamp WHERE consultation_id = :c"), {"c": k})
        ).scalar_one()
        forged = bytearray(token)
        forged[-40] ^= 0xFF  # inside the signature
        await conn.execute(
            text("UPDATE custody_stamp SET token = :t WHERE consultation_id = :c"),
            {"c": k, "t": bytes(forged)},
        )
    [found] = (await checks.verify(cid)).breaks
    assert (found.seq, found.reason) == (2, "timestamp_invalid")


async def test_a_tsa_that_is_down_or_untrusted_stamps_nothing(container, tsa) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509

    other = TimestampClient("http://127.0.0.1:9/tsa", [], timeout=2)
    with pytest.raises(TimestampFailed):
        await other.stamp(b"x")
    # A token from a TSA whose root we do not trust is refused.
    made = await asyncio.to_thread(
        subprocess.run,
        [openssl(), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null", "-days", "1",
         "-subj", "/CN=someone else", "-addext", "basicConstraints=critical,CA:TRUE"],
        capture_output=True, check=True,
    )  # fmt: skip
    stranger = x509.load_pem_x509_certificate(made.stdout)
    with pytest.raises(TimestampFailed):
        await TimestampClient(tsa.url, [stranger]).stamp(b"head")


async def test_the_worker_stamps_heads_once_per_period(container, tsa, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from infra.worker import OutboxWorker

    checks = CustodyChecks(container.sessions, container.clock, tsa_url=tsa.url, tsa_ca_file=tsa.ca_file)
    worker = OutboxWorker(container.sessions, container.settings, None, str, container.clock)  # type: ignore[arg-type]
    worker.add_custody(checks, 3600)
    await events(container, uuid.uuid4(), 1)
    now = container.clock.now()
    assert await worker.stamp_heads_due(now) == 1
    await events(container, uuid.uuid4(), 1)
    assert await worker.stamp_heads_due(now + timedelta(minutes=30)) == 0  # not yet
    assert await worker.stamp_heads_due(now + timedelta(minutes=61)) == 1
