"""The LINE official account, put together: the webhook (infra/line_webhook.py), the worker's inbox and
delivery passes (infra/line_inbox.py, infra/line_delivery.py), the use cases behind them and behind the routes
(domain/line_conversation.py, line_linking.py, line_dead_letters.py) over the LINE unit of work
(infra/db/line.py), the Messaging API (infra/line_sdk.py) and the rich menu (infra/line_richmenu.py).

Flow: the webhook verifies `X-Line-Signature` and stores each reduced event in `line_inbox` before it answers
200. The worker answers inbox events by queueing `line_delivery` rows (what to say comes from domain/line.py)
and sends them; after the last try a delivery becomes a dead letter an admin can replay.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain import line as say
from domain.guidance import GuidanceService
from domain.knowledge_model import Knowledge
from domain.line_conversation import LineConversation
from domain.line_dead_letters import LineDeadLetters
from domain.line_linking import LineLinking
from domain.ports import Clock
from domain.triage import TriageRules
from infra.db.line import LineWebhookInbox, SqlLineRepositories, SqlLineUnitOfWork
from infra.line_delivery import LineDeliverySender
from infra.line_inbox import LineInboxWorker
from infra.line_richmenu import RICH_MENU_FILE
from infra.line_sdk import LineApi
from infra.line_webhook import LineWebhook
from infra.settings import Settings

LINE_TEXTS_FILE = RICH_MENU_FILE.with_name("line_texts.yaml")

OutboxHandler = Callable[[AsyncSession, dict[str, Any]], Awaitable[bool]]


def load_line_texts(path: Path = LINE_TEXTS_FILE) -> say.LineTexts:
    """The bot's texts in every declared language; LineTextsError when a declared language misses a text."""
    return say.LineTexts.from_raw(yaml.safe_load(path.read_text(encoding="utf-8")))


class LineBot:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        guidance: GuidanceService,
        triage: TriageRules,
        knowledge: Knowledge,
        clock: Clock,
        api: LineApi | None = None,
        texts: say.LineTexts | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.guidance = guidance
        self.triage = triage
        self.knowledge = knowledge
        self.texts = texts or load_line_texts()
        self.api = api or LineApi(settings)
        self.links = say.Links(home=settings.public_url)

        def uow() -> SqlLineUnitOfWork:
            return SqlLineUnitOfWork(sessions)

        self.webhook = LineWebhook(
            LineWebhookInbox(engine), settings, triage=triage, texts=self.texts, clock=clock
        )
        self.linking = LineLinking(uow, clock, nonce_minutes=settings.line_link_nonce_minutes)
        self.dead_letters = LineDeadLetters(uow, clock)
        self.conversation = LineConversation(
            uow,
            clock,
            texts=self.texts,
            links=self.links,
            login_url=settings.line_login_url or settings.public_url.rstrip("/") + "/line/link",
            guidance=guidance,
            knowledge=knowledge,
            link_tokens=self.api,
        )
        self.inbox = LineInboxWorker(sessions, settings, self.conversation, clock)
        self.deliveries = LineDeliverySender(sessions, settings, self.api, clock)

    @property
    def configured(self) -> bool:
        return self.webhook.configured

    async def close(self) -> None:
        await self.api.close()

    # -- the webhook ---------------------------------------------------------------------------------------

    def verify(self, body: bytes, signature: str | None) -> None:
        self.webhook.verify(body, signature)

    async def receive(self, body: bytes, signature: str | None) -> int:
        """Verify, reduce, store each event once. Returns how many events were new."""
        return await self.webhook.receive(body, signature)

    # -- the worker pass -----------------------------------------------------------------------------------

    async def run_once(self, limit: int = 100) -> int:
        """Process the inbox, then send what is due. Returns how many messages were delivered."""
        if not self.configured:
            return 0
        await self.inbox.drain(limit)
        return await self.deliveries.drain(limit)

    # -- notices from the outbox -----------------------------------------------------------------------------

    async def on_answer_published(self, db: AsyncSession, payload: dict[str, Any]) -> bool:
        """Outbox handler: queues a push for a linked, following consulter; otherwise done without a word.
        Returns False either way: the push itself is sent (and counted) by the LINE pass."""
        link = self.links.consultation(str(payload["consultation_id"]))
        return await self._notice(db, payload, "answer_published", lambda v: say.answer_published(link, v))

    def clock_notice_handler(self, kind: str) -> OutboxHandler:
        """Outbox handler for `line.clock_reminder` / `line.clock_overdue` (no case content)."""

        async def handle(db: AsyncSession, payload: dict[str, Any]) -> bool:
            link = self.links.consultation(str(payload["consultation_id"]))
            return await self._notice(db, payload, kind, lambda v: say.clock_notice(kind, link, v))

        return handle

    async def _notice(
        self,
        db: AsyncSession,
        payload: dict[str, Any],
        purpose: str,
        compose: Callable[[say.Voice], list[say.Message]],
    ) -> bool:
        if not (self.configured and self.api.configured):
            return False
        user_id = uuid.UUID(payload["user_id"])
        await self.conversation.notice(SqlLineRepositories(db), user_id, purpose, compose)
        return False
