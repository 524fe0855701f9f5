"""Composition root shared by the API, the worker and the CLI: settings → engine → adapters → use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.accounts import AccountService, AuthPolicy
from domain.anonymise import Masker
from domain.answers import AnswerService
from domain.chatbot import ChatbotPolicy, ChatbotService
from domain.consultations import ConsultationPolicy, ConsultationService
from domain.desks import DeskDirectory
from domain.guidance import GuidanceService
from domain.knowledge_model import Knowledge
from domain.ports import Clock
from domain.quality import QualityService
from domain.referrals import ReferralService
from domain.triage import TriageRules
from infra import tracing
from infra.calendar import JapaneseHolidays
from infra.chatbot_loader import load_chatbot_flows
from infra.clock import SystemClock
from infra.db.engine import make_engine, make_session_factory
from infra.db.quality import SqlManualCatalogue
from infra.db.repositories import SqlSessionLookup
from infra.db.uow import SqlUnitOfWorkFactory
from infra.knowledge import load_knowledge
from infra.line import LineBot
from infra.mail import make_mailer
from infra.morphology import SudachiProperNouns
from infra.passwords import Argon2Passwords
from infra.quality_loader import load_review_rules
from infra.settings import Settings
from infra.storage import LocalEvidenceFiles
from infra.throttle import DbThrottle
from infra.tokens import TokenCodec
from infra.totp import Totp
from infra.triage_loader import load_triage_engine
from infra.worker import OutboxWorker


@dataclass
class Container:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenCodec
    passwords: Argon2Passwords
    accounts: AccountService
    worker: OutboxWorker
    consultations: ConsultationService
    desks: DeskDirectory
    referrals: ReferralService
    triage: TriageRules
    knowledge: Knowledge
    guidance: GuidanceService
    answers: AnswerService | None = None
    quality: QualityService | None = None
    line: LineBot | None = None
    chatbot: ChatbotService | None = None
    migration_head: str | None = None

    async def close(self) -> None:
        if self.line is not None:
            await self.line.close()
        await self.engine.dispose()


def build_container(settings: Settings, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    engine = make_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeout=settings.database_timeout_seconds,
        pooled=settings.database_pool,
    )
    tracing.instrument_engine(engine)  # a no-op unless tracing is configured
    sessions = make_session_factory(engine)
    tokens = TokenCodec(
        settings.signing_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        person_minutes=settings.access_token_minutes,
        staff_minutes=settings.staff_access_token_minutes,
    )
    passwords = Argon2Passwords(
        memory_kib=settings.password_hash_memory_kib,
        iterations=settings.password_hash_iterations,
        concurrency=settings.password_hash_concurrency,
    )
    window = timedelta(minutes=settings.login_window_minutes)
    accounts = AccountService(
        uow=SqlUnitOfWorkFactory(sessions, clock),
        hasher=passwords,
        tokens=tokens,
        totp=Totp(settings.signing_key),
        throttle=DbThrottle(
            sessions,
            limits={
                "pair": settings.login_max_failures,
                "addr": settings.login_max_failures_per_address,
                "acct": settings.login_max_failures_per_account,
            },
            window=window,
            windows={"acct": timedelta(minutes=settings.login_account_window_minutes)},
        ),
        clock=clock,
        sessions=SqlSessionLookup(engine),
        signup_throttle=DbThrottle(
            sessions, limits={"*": settings.signup_per_hour}, window=timedelta(hours=1)
        ),
        mail_throttle=DbThrottle(
            sessions, limits={"*": settings.mail_per_recipient_per_hour}, window=timedelta(hours=1)
        ),
        policy=AuthPolicy(
            session_lifetime=timedelta(days=settings.refresh_session_days),
            max_failures=settings.login_max_failures,
            failure_window=window,
            require_staff_mfa=settings.staff_mfa_required,
        ),
    )
    worker = OutboxWorker(sessions, settings, make_mailer(settings), tokens.unseal, clock)
    worker.add_accounts(accounts)
    knowledge = load_knowledge()
    desks = DeskDirectory(SqlUnitOfWorkFactory(sessions, clock), clock, knowledge)
    consultations = ConsultationService(
        uow=SqlUnitOfWorkFactory(sessions, clock),
        clock=clock,
        knowledge=knowledge,
        triage=load_triage_engine(),
        holidays=JapaneseHolidays(),
        policy=ConsultationPolicy(
            terms_version=settings.terms_version,
            first_answer_business_days=settings.first_answer_business_days,
            reopen_window=timedelta(days=settings.reopen_window_days),
            intake_per_hour=settings.consultations_per_hour,
        ),
        files=LocalEvidenceFiles(settings.storage_dir),
        desks=desks,
    )
    answers = AnswerService(consultations, load_review_rules(), SqlManualCatalogue(sessions))
    quality = QualityService(SqlUnitOfWorkFactory(sessions, clock), clock, Masker(SudachiProperNouns()))
    container = Container(
        answers=answers,
        quality=quality,
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        tokens=tokens,
        passwords=passwords,
        accounts=accounts,
        worker=worker,
        consultations=consultations,
        desks=desks,
        referrals=ReferralService(consultations, desks),
        triage=consultations.triage,
        knowledge=knowledge,
        guidance=GuidanceService(
            knowledge,
            desks,
            consultations.triage,
            DbThrottle(sessions, limits={"*": settings.triage_per_minute}, window=timedelta(minutes=1)),
            clock,
        ),
    )
    # LINE official account: webhook intake, conversations and notices; its pass runs with the outbox worker.
    container.line = LineBot(
        sessions,
        settings,
        guidance=container.guidance,
        triage=container.triage,
        knowledge=knowledge,
        clock=clock,
    )
    worker.add_line(container.line)
    container.chatbot = build_chatbot(settings, sessions, container)
    return container


def build_chatbot(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], c: Container
) -> ChatbotService:
    """The homepage chatbot: flows validated against the knowledge, the chart and triage shared with every
    front door, desk details from the directory, and its own rate limits per client address."""
    return ChatbotService(
        uow=SqlUnitOfWorkFactory(sessions, c.clock),
        flows=load_chatbot_flows(),
        knowledge=c.knowledge,
        guidance=c.guidance,
        desks=c.desks,
        triage=c.triage,
        tokens=c.tokens,
        clock=c.clock,
        session_throttle=DbThrottle(
            sessions, limits={"*": settings.chatbot_sessions_per_hour}, window=timedelta(hours=1)
        ),
        turn_throttle=DbThrottle(
            sessions, limits={"*": settings.chatbot_turns_per_minute}, window=timedelta(minutes=1)
        ),
        policy=ChatbotPolicy(
            idle=timedelta(minutes=settings.chatbot_session_minutes),
            guide_url=settings.public_url.rstrip("/") + "/guides/{slug}",
        ),
    )
