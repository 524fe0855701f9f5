"""Composition root shared by the API, the worker and the CLI: settings → engine → adapters → use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.accounts import AccountService, AuthPolicy
from domain.anonymise import Masker
from domain.answers import AnswerService
from domain.case_keys import KeyEncryptionKeys
from domain.chatbot import ChatbotPolicy, ChatbotService
from domain.consents import ConsentService
from domain.consultations import ConsultationPolicy, ConsultationService
from domain.desks import DeskDirectory
from domain.erasure import ErasureService
from domain.exports import ExportPolicy, ExportService
from domain.guidance import GuidanceService
from domain.knowledge_model import Knowledge
from domain.letters import LetterService
from domain.ports import Clock
from domain.quality import QualityService
from domain.referrals import ReferralService
from domain.requests import CaseClocks, RequestService
from domain.retention import RetentionService
from domain.statistics import StatisticsService
from domain.suggestions import SuggestionService, TemplateValues
from domain.triage import TriageRules
from infra import tracing
from infra.blobs import BlobStore, make_blob_store
from infra.calendar import JapaneseHolidays
from infra.chatbot_loader import load_chatbot_flows
from infra.clock import SystemClock
from infra.clock_rules import load_clock_rules, load_template_uses
from infra.crypto import LocalKeyService, derived_kek, read_keks
from infra.custody import CustodyChecks
from infra.db.engine import make_engine, make_session_factory
from infra.db.migrate import head_revision
from infra.db.quality import SqlManualCatalogue
from infra.db.repositories import SqlSessionLookup
from infra.db.statistics_summary import StatisticsSummaries
from infra.db.uow import SqlUnitOfWorkFactory
from infra.exports import ExportPreparer, PersonalArchive, SealedExports
from infra.image_hashes import PdqImageHasher
from infra.knowledge import load_knowledge
from infra.letters_loader import load_letter_catalogue
from infra.line import LineBot
from infra.mail import make_mailer
from infra.morphology import SudachiProperNouns
from infra.passwords import Argon2Passwords
from infra.quality_loader import load_review_rules
from infra.retention_loader import load_retention_rules
from infra.settings import Settings
from infra.storage import EvidenceStore
from infra.throttle import ThrottleFactory, connect_redis, throttle_factory
from infra.tokens import TokenCodec, derive_key
from infra.totp import Totp
from infra.triage_loader import load_triage_engine
from infra.worker import OutboxWorker


@dataclass
class Container:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keys: KeyEncryptionKeys
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
    answers: AnswerService
    letters: LetterService
    quality: QualityService
    statistics: StatisticsService
    retention: RetentionService
    erasure: ErasureService
    consents: ConsentService
    exports: ExportService
    line: LineBot
    chatbot: ChatbotService
    requests: RequestService
    suggestions: SuggestionService
    blobs: BlobStore
    custody: CustodyChecks
    migration_head: str | None  # None only for a tree without migrations
    redis: Redis | None  # None when MADOGUCHI_REDIS_URL is unset: counters then live in the database

    async def close(self) -> None:
        await self.line.close()
        await self.blobs.close()
        if self.redis is not None:
            await self.redis.aclose()
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
    # Key-encryption keys (issue 17): MADOGUCHI_KEK_FILE or MADOGUCHI_KEK, else (not in production, the settings
    # refuse it there) one derived from the master secret.
    keks = read_keks(settings.kek.get_secret_value() if settings.kek else None, settings.kek_file)
    keys = LocalKeyService(keks if keks is not None else [derived_kek(settings.signing_key)])
    uow = SqlUnitOfWorkFactory(sessions, clock, keys)
    # Counters shared by every replica: in Redis when configured, else in the database.
    redis = (
        connect_redis(settings.redis_url.get_secret_value(), timeout_seconds=settings.redis_timeout_seconds)
        if settings.redis_url
        else None
    )
    throttle = throttle_factory(sessions, redis, prefix=settings.redis_prefix)
    blobs = make_blob_store(settings)
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
        uow=uow,
        hasher=passwords,
        tokens=tokens,
        totp=Totp(settings.signing_key),
        throttle=throttle(
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
        signup_throttle=throttle(limits={"*": settings.signup_per_hour}, window=timedelta(hours=1)),
        mail_throttle=throttle(limits={"*": settings.mail_per_recipient_per_hour}, window=timedelta(hours=1)),
        policy=AuthPolicy(
            session_lifetime=timedelta(days=settings.refresh_session_days),
            max_failures=settings.login_max_failures,
            failure_window=window,
            require_staff_mfa=settings.staff_mfa_required,
            step_up_max_age=timedelta(minutes=settings.step_up_max_age_minutes),
        ),
    )
    worker = OutboxWorker(sessions, settings, make_mailer(settings), tokens.unseal, clock)
    worker.add_accounts(accounts)
    knowledge = load_knowledge()
    desks = DeskDirectory(uow, clock, knowledge)
    holidays = JapaneseHolidays()
    # A case's clocks are recomputed in the same transaction as any evidence change; the template values a
    # draft records come from the case. Both are built before the services that call them.
    case_clocks = CaseClocks(load_clock_rules(knowledge), knowledge, holidays, clock)
    template_values = TemplateValues(knowledge, desks, load_template_uses(knowledge, case_clocks.rules))
    consultations = ConsultationService(
        uow=uow,
        clock=clock,
        knowledge=knowledge,
        triage=load_triage_engine(),
        holidays=holidays,
        policy=ConsultationPolicy(
            terms_version=settings.terms_version,
            digest_key=derive_key(settings.signing_key, "evidence-correction-digest"),
            first_answer_business_days=settings.first_answer_business_days,
            reopen_window=timedelta(days=settings.reopen_window_days),
            intake_per_hour=settings.consultations_per_hour,
            evidence_items_per_consultation=settings.evidence_items_per_consultation,
            evidence_bytes_per_consultation=settings.evidence_bytes_per_consultation,
            evidence_bytes_per_consulter=settings.evidence_bytes_per_consulter,
            consulter_messages_per_hour=settings.consulter_messages_per_hour,
            pdq_min_quality=settings.pdq_min_quality,
            pdq_match_distance=settings.pdq_match_distance,
        ),
        files=EvidenceStore(blobs),
        desks=desks,
        hasher=PdqImageHasher(),
        after_evidence=case_clocks.recompute,
    )
    answers = AnswerService(
        consultations, load_review_rules(), SqlManualCatalogue(sessions), template_values=template_values
    )
    requests = RequestService(consultations, case_clocks, desks)
    guidance = GuidanceService(
        knowledge,
        desks,
        consultations.triage,
        throttle(limits={"*": settings.triage_per_minute}, window=timedelta(minutes=1)),
        clock,
    )
    # LINE official account: webhook intake, conversations and notices; its pass runs with the outbox worker.
    line = LineBot(
        engine,
        sessions,
        settings,
        guidance=guidance,
        triage=consultations.triage,
        knowledge=knowledge,
        clock=clock,
    )
    custody = CustodyChecks(
        sessions,
        clock,
        tsa_url=settings.tsa_url,
        tsa_ca_file=settings.tsa_ca_file,
        tsa_timeout=settings.tsa_timeout_seconds,
    )
    worker.add_line(line)
    worker.add_custody(custody, settings.tsa_stamp_minutes * 60)
    worker.add_requests(requests)  # the worker sends the clocks' reminders
    worker.add_statistics(StatisticsSummaries(sessions, knowledge, clock))
    retention = RetentionService(uow, consultations, clock, load_retention_rules())
    worker.add_retention(retention)  # ended cases past their period are shredded (issue 17 §2)
    # The person's export (issue 17 §3): asked for through the API, prepared and swept by the worker.
    sealed_exports = SealedExports(blobs, keys)
    export_lifetime = timedelta(days=settings.export_lifetime_days)
    exports = ExportService(
        uow, sealed_exports, clock, ExportPolicy(export_lifetime, settings.exports_open_per_person)
    )
    preparer = ExportPreparer(
        sessions,
        PersonalArchive(uow, consultations.files, clock),
        sealed_exports,
        clock,
        lifetime=export_lifetime,
        lease=settings.worker_lease,
        max_attempts=settings.outbox_max_attempts,
    )
    worker.add_exports(preparer.run_once, exports.sweep)
    erasure = ErasureService(uow, clock, accounts.policy.step_up_max_age, tokens.seal, consultations.files)
    worker.add_erasure(erasure)  # erasure requests past their grace period are carried out (issue 17 §3)
    return Container(
        retention=retention,
        erasure=erasure,
        consents=ConsentService(uow, clock),
        exports=exports,
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        keys=keys,
        tokens=tokens,
        passwords=passwords,
        accounts=accounts,
        worker=worker,
        consultations=consultations,
        desks=desks,
        referrals=ReferralService(consultations, desks),
        triage=consultations.triage,
        knowledge=knowledge,
        guidance=guidance,
        answers=answers,
        letters=LetterService(answers, load_letter_catalogue(knowledge)),
        quality=QualityService(uow, clock, Masker(SudachiProperNouns())),
        statistics=StatisticsService(uow, clock, knowledge),
        line=line,
        chatbot=build_chatbot(
            settings, uow, clock, knowledge, guidance, desks, consultations.triage, tokens, throttle
        ),
        requests=requests,
        # Answer templates suggested per case and filled from it.
        suggestions=SuggestionService(requests, template_values),
        blobs=blobs,
        custody=custody,
        migration_head=head_revision(),
        redis=redis,
    )


def build_chatbot(
    settings: Settings,
    uow: SqlUnitOfWorkFactory,
    clock: Clock,
    knowledge: Knowledge,
    guidance: GuidanceService,
    desks: DeskDirectory,
    triage: TriageRules,
    tokens: TokenCodec,
    throttle: ThrottleFactory,
) -> ChatbotService:
    """The homepage chatbot: flows validated against the knowledge, the chart and triage shared with every
    front door, desk details from the directory, and its own rate limits per client address."""
    return ChatbotService(
        uow=uow,
        flows=load_chatbot_flows(),
        knowledge=knowledge,
        guidance=guidance,
        desks=desks,
        triage=triage,
        tokens=tokens,
        clock=clock,
        session_throttle=throttle(
            limits={"*": settings.chatbot_sessions_per_hour}, window=timedelta(hours=1)
        ),
        turn_throttle=throttle(limits={"*": settings.chatbot_turns_per_minute}, window=timedelta(minutes=1)),
        policy=ChatbotPolicy(
            idle=timedelta(minutes=settings.chatbot_session_minutes),
            guide_url=settings.public_url.rstrip("/") + "/guides/{slug}",
        ),
    )
