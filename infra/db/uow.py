"""Unit of work: one AsyncSession, one transaction, committed once at the end of a use case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.case_keys import KeyEncryptionKeys
from domain.ports import (
    AccountUnitOfWork,
    CaseUnitOfWork,
    ChatbotUnitOfWork,
    Clock,
    QualityUnitOfWork,
    StatisticsUnitOfWork,
    UnitOfWorkFactory,
)
from infra import idempotency
from infra.db.case_keys import SqlCaseKeys
from infra.db.chatbot import SqlChatbot
from infra.db.consents import SqlConsents
from infra.db.consultations import SqlConsultations
from infra.db.erasure import SqlErasure
from infra.db.exports import SqlExports
from infra.db.guidance import SqlDesks, SqlReferrals
from infra.db.letters import SqlLetters
from infra.db.quality import DbAuditLog, SqlAnswers, SqlCouncil, SqlManual, SqlQuality
from infra.db.repositories import (
    SqlEmailTokens,
    SqlOutbox,
    SqlRefreshTokens,
    SqlServiceClients,
    SqlSessions,
    SqlUsers,
)
from infra.db.requests import SqlRequests
from infra.db.retention import SqlRetention
from infra.db.statistics_summary import SummaryStatistics


class SqlUnitOfWork:
    def __init__(
        self, factory: async_sessionmaker[AsyncSession], clock: Clock, keys: KeyEncryptionKeys
    ) -> None:
        self._factory = factory
        self.clock = clock
        self.keys = keys
        self.db: AsyncSession | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self.db = self._factory()
        self.users = SqlUsers(self.db)
        self.sessions = SqlSessions(self.db)
        self.refresh_tokens = SqlRefreshTokens(self.db)
        self.email_tokens = SqlEmailTokens(self.db)
        self.service_clients = SqlServiceClients(self.db)
        self.outbox = SqlOutbox(self.db, self.clock)
        self.case_keys = SqlCaseKeys(self.db, self.keys, self.clock)
        self.consultations = SqlConsultations(self.db, self.clock, self.case_keys)
        self.consents = SqlConsents(self.db)
        self.exports = SqlExports(self.db)
        self.chatbot = SqlChatbot(self.db)
        self.desks = SqlDesks(self.db)
        self.referrals = SqlReferrals(self.db, self.case_keys)
        self.requests = SqlRequests(self.db, self.clock, self.consultations)
        self.retention = SqlRetention(self.db, self.case_keys)
        self.erasure = SqlErasure(self.db)
        self.answers = SqlAnswers(self.db, self.case_keys)
        self.letters = SqlLetters(self.db, self.case_keys)
        self.manual = SqlManual(self.db)
        self.council = SqlCouncil(self.db, self.case_keys)
        self.quality = SqlQuality(self.db)
        self.statistics = SummaryStatistics(self.db)
        self.audit = DbAuditLog(self.db, self.clock)
        self.custody = self.audit.custody
        scope = idempotency.current()
        if scope is not None and scope.armed:
            idempotency.watch(self.db, scope)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.db is not None
        try:
            if exc[0] is None and self.audit.pending:
                # A read that succeeded commits its audit record with it; a use case that raised leaves none.
                await self.commit()
            await self.db.rollback()  # a no-op after commit; undoes anything a failed use case left
        finally:
            await self.db.close()
            self.db = None

    async def commit(self) -> None:
        """Commits; the first commit that writes, in a request carrying a fresh Idempotency-Key, writes the
        key in the same transaction."""
        assert self.db is not None
        scope = idempotency.current()
        record_key = idempotency.should_record(self.db, scope, wrote=bool(self.audit.added))
        if not record_key and await self.audit.commit_alone():
            return  # a read's records and custody links, in one statement (PostgreSQL)
        await self.audit.flush()
        await self.custody.flush()  # the chain's links, last, so its head is locked only for the commit
        if not record_key:
            await self.db.commit()
            self.audit.committed()
            return
        assert scope is not None
        await idempotency.record(self.db, scope, self.clock.now())
        await self.db.commit()
        scope.recorded = True
        self.audit.committed()

    async def rollback(self) -> None:
        """Undoes the transaction, with the audit records and custody links not yet written."""
        assert self.db is not None
        await self.db.rollback()
        self.audit.discard()


class SqlUnitOfWorkFactory:
    def __init__(
        self, factory: async_sessionmaker[AsyncSession], clock: Clock, keys: KeyEncryptionKeys
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.keys = keys

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.factory, self.clock, self.keys)


if TYPE_CHECKING:

    def _every_feature(
        f: SqlUnitOfWorkFactory,
    ) -> tuple[
        UnitOfWorkFactory[AccountUnitOfWork],
        UnitOfWorkFactory[CaseUnitOfWork],
        UnitOfWorkFactory[QualityUnitOfWork],
        UnitOfWorkFactory[ChatbotUnitOfWork],
        UnitOfWorkFactory[StatisticsUnitOfWork],
    ]:
        """Never called: mypy proves here that the SQL unit of work is every feature's unit of work
        (domain/ports.py), whether or not the container happens to pass it to a typed parameter."""
        return (f, f, f, f, f)
