"""Checking every chain of custody, and time-stamping chain heads (the `verify-audit` and `stamp-heads`
commands, and the worker's periodic pass)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.custody import Break, Stamp, head_statement, verify_chain
from domain.ports import Clock
from infra.db.custody import SqlCustody
from infra.timestamping import TimestampClient, TimestampFailed, load_roots, verify_token

log = logging.getLogger("madoguchi.custody")


@dataclass(slots=True)
class Report:
    chains: int = 0
    links: int = 0
    stamps_checked: int = 0
    waiting: int = 0  # reads not yet chained (the next change, chain read or worker pass chains them)
    breaks: list[Break] = field(default_factory=list)


@dataclass(slots=True)
class StampPass:
    stamped: int = 0
    failed: int = 0


class CustodyChecks:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        tsa_url: str | None = None,
        tsa_ca_file: Path | None = None,
        tsa_timeout: float = 10.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.roots = load_roots(tsa_ca_file) if tsa_ca_file else []
        self.tsa = (
            TimestampClient(tsa_url, self.roots, timeout=tsa_timeout) if tsa_url and self.roots else None
        )

    async def verify(self, consultation_id: uuid.UUID | None = None) -> Report:
        """Every chain (or one): links re-hashed in order, the head compared with the last link, every
        stamp's (seq, hash) found in the chain and, when the TSA's CA is configured, its token's signature
        and imprint checked. One break per chain: the first."""
        report = Report()
        async with self.sessions() as db:
            custody = SqlCustody(db, self.clock)
            ids = [consultation_id] if consultation_id else await custody.chain_ids()
            report.waiting = await custody.waiting(consultation_id)
            for cid in ids:
                links = await custody.stored_links(cid)
                head = await custody.stored_head(cid)
                stamps = await custody.stamps(cid)
                report.chains += 1
                report.links += len(links)
                found = verify_chain(cid, links, head, stamps)
                if found is None and self.roots:
                    found = self._check_tokens(stamps)
                    report.stamps_checked += len(stamps)
                if found is not None:
                    report.breaks.append(found)
        return report

    def _check_tokens(self, stamps: list[Stamp]) -> Break | None:
        for stamp in stamps:
            try:
                verify_token(
                    stamp.token, head_statement(stamp.consultation_id, stamp.seq, stamp.hash), self.roots
                )
            except TimestampFailed:
                return Break(stamp.consultation_id, stamp.seq, "timestamp_invalid")
        return None

    async def chain_reads(self, limit: int = 500) -> int:
        """Chains the reads waiting for their consultation's next change (oldest first), each chain in its own
        short transaction; returns how many reads were chained. Runs on every worker pass, before heads are
        stamped, so a stamp covers the reads made before it."""
        async with self.sessions() as db:
            ids = await SqlCustody(db, self.clock).waiting_chains(limit)
        chained = 0
        for cid in ids:
            async with self.sessions() as db:
                chained += len(await SqlCustody(db, self.clock).flush(settle={cid}))
                await db.commit()
        return chained

    async def stamp_heads(self, limit: int = 500) -> StampPass:
        """A token for every head that moved since its last stamp. Each head is stamped in its own short
        transaction; a TSA failure leaves the head for the next pass."""
        result = StampPass()
        if self.tsa is None:
            return result
        async with self.sessions() as db:
            heads = await SqlCustody(db, self.clock).unstamped_heads(limit)
        for head in heads:
            statement = head_statement(head.consultation_id, head.seq, head.hash)
            try:
                token = await self.tsa.stamp(statement)
            except TimestampFailed as exc:
                log.warning(
                    "custody_stamp_failed",
                    extra={"consultation_id": str(head.consultation_id), "error": str(exc)},
                )
                result.failed += 1
                continue
            async with self.sessions() as db:
                await SqlCustody(db, self.clock).add_stamp(
                    Stamp(
                        head.consultation_id,
                        head.seq,
                        head.hash,
                        token.response,
                        token.gen_time,
                        self.tsa.url,
                    )
                )
                await db.commit()
            result.stamped += 1
        return result
