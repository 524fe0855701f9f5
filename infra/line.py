"""The LINE official account: webhook intake, the conversation worker pass, account linking, deliveries with
retry and dead letters, and the rich-menu deployment. The only module that talks to line-bot-sdk.

Flow: the webhook verifies `X-Line-Signature` over the raw bytes, reduces each event to what the bot needs
(free text becomes triage codes here, so the words are never stored) and inserts it into `line_inbox`, unique on
`webhookEventId`, then answers 200. The worker turns inbox rows into `line_delivery` rows (what to say comes
from domain/line.py) and sends them: a reply while the reply token is fresh, a push with a stored
`X-Line-Retry-Key` otherwise; 429 and 5xx are retried with backoff, and after the last try a delivery becomes a
dead letter that an admin can replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import yaml
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    Message,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuRequest,
)
from linebot.v3.messaging.exceptions import ApiException
from linebot.v3.webhook import SignatureValidator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import line as say
from domain.actors import Actor, Role
from domain.chart import InvalidChartAnswer
from domain.consents import may_notify_by_line
from domain.errors import Forbidden, InvalidState, NotFound, Unauthenticated, Unavailable, ValidationFailed
from domain.guidance import GuidanceService
from domain.knowledge_model import Knowledge
from domain.ports import Clock
from domain.text import bad_character
from domain.triage import TriageRules
from infra.db.consents import SqlConsents
from infra.db.leases import drain
from infra.db.line import (
    DEAD,
    DELIVERIES,
    INBOX,
    PENDING,
    SENT,
    SKIPPED,
    SqlLineDeliveries,
    SqlLineInbox,
    SqlLineNonces,
    SqlLineUsers,
)
from infra.db.tables import UserRow
from infra.db.tables_line import LineDeliveryRow, LineInboxRow
from infra.fonts import japanese_font_path
from infra.logging import log as json_log
from infra.settings import Settings

log = logging.getLogger("madoguchi.line")
delivery_log = json_log("madoguchi.line")
# The SDK logs response bodies at DEBUG (link tokens among them): keep it quiet whatever the root level.
logging.getLogger("linebot").setLevel(logging.WARNING)

ACCOUNT_LINK_URL = "https://access.line.me/dialog/bot/accountLink"
# A link token as LINE issues it (URL-safe characters; LINE does not document a length, so a generous range).
# Checked here, where the redirect URL is built, whoever the caller is.
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,128}")
RICH_MENU_FILE = Path(__file__).resolve().parent.parent / "domain" / "knowledge" / "line_rich_menu.yaml"
LINE_TEXTS_FILE = RICH_MENU_FILE.with_name("line_texts.yaml")
INBOX_MAX_ATTEMPTS = 5
# `last_error` of a delivery whose reply may have reached LINE (the call was cut off, or the worker died during
# it). A reply carries no retry key, so such a row is never said again by push: only a reply with the same token
# (LINE refuses a used one) may follow, and if that cannot settle it the row waits as a dead letter.
REPLY_UNSURE = "reply_unsure"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# -- the Messaging API --------------------------------------------------------------------------------


class LineCallFailed(Exception):
    """A Messaging API call failed. `status` 0 means no HTTP answer (network, timeout)."""

    def __init__(self, status: int, retry_after: float | None = None, *, code: str | None = None) -> None:
        super().__init__(f"line_http_{status}")
        self.status = status
        self.retry_after = retry_after
        self._code = code

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def code(self) -> str:
        if self._code is not None:
            return self._code
        return "network" if self.status == 0 else f"http_{self.status}"

    @property
    def outcome_unknown(self) -> bool:
        """No HTTP answer: LINE may or may not have acted on the call."""
        return self.status == 0


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class LineApi:
    """line-bot-sdk's async client at a configurable base URL. Errors become LineCallFailed carrying only the
    status: the SDK's exception text includes response headers and bodies."""

    def __init__(self, settings: Settings) -> None:
        token = settings.line_channel_access_token
        self.token = token.get_secret_value() if token else ""
        self.host = settings.line_api_base_url.rstrip("/")
        self.data_host = settings.line_data_api_base_url.rstrip("/")
        self.timeout = settings.line_request_timeout_seconds
        self._clients: dict[str, AsyncApiClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http_client: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def _client(self, host: str) -> AsyncApiClient:
        # aiohttp sessions belong to the loop they were made on; the CLI and tests may run several loops.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._clients = {}
            self._loop = loop
        if host not in self._clients:
            self._clients[host] = AsyncApiClient(Configuration(host=host, access_token=self.token))
        return self._clients[host]

    async def close(self) -> None:
        clients, self._clients, self._loop = self._clients, {}, None
        http, self._http_client, self._http_loop = self._http_client, None, None
        if http is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                await http.aclose()
        for client in clients.values():
            with contextlib.suppress(Exception):  # closing is best effort
                await client.close()

    async def _call(self, make: Any) -> Any:
        try:
            return await make()
        except ApiException as exc:
            raise LineCallFailed(int(exc.status or 0), _retry_after(exc.headers)) from None
        except (aiohttp.ClientError, TimeoutError, OSError):
            raise LineCallFailed(0) from None
        except Exception as exc:  # noqa: BLE001 - whatever the SDK raises, the call's outcome is unknown
            raise LineCallFailed(0, code=f"unexpected_{type(exc).__name__}"[:64]) from None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http_loop is not loop or self._http_client is None:
            self._http_client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
            self._http_loop = loop
        return self._http_client

    async def _send(self, path: str, request: Any, headers: dict[str, str]) -> None:
        """POST a message request; the HTTP status alone decides. The answer's body is never parsed: a 2xx
        means LINE took the message, whatever it wrote back (through the SDK, a 2xx body it could not parse
        made a sent message look failed, and it was sent again and again)."""
        try:
            response = await self._http().post(
                self.host + path,
                content=request.to_json(),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    **headers,
                },
            )
        except httpx.TransportError:
            raise LineCallFailed(0) from None
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the call's outcome is unknown
            raise LineCallFailed(0, code=f"unexpected_{type(exc).__name__}"[:64]) from None
        if not 200 <= response.status_code < 300:
            raise LineCallFailed(response.status_code, _retry_after(response.headers))

    async def reply(self, reply_token: str, messages: Sequence[dict[str, Any]]) -> None:
        request = ReplyMessageRequest(
            reply_token=reply_token, messages=[Message.from_dict(m) for m in messages]
        )
        await self._send("/v2/bot/message/reply", request, {})

    async def push(self, to: str, messages: Sequence[dict[str, Any]], retry_key: str) -> None:
        request = PushMessageRequest(to=to, messages=[Message.from_dict(m) for m in messages])
        await self._send("/v2/bot/message/push", request, {"X-Line-Retry-Key": retry_key})

    async def issue_link_token(self, line_user_id: str) -> str:
        api = AsyncMessagingApi(self._client(self.host))
        response = await self._call(lambda: api.issue_link_token(line_user_id, _request_timeout=self.timeout))
        return str(response.link_token)

    async def create_rich_menu(self, request: dict[str, Any]) -> str:
        api = AsyncMessagingApi(self._client(self.host))
        body = RichMenuRequest.from_dict(request)
        response = await self._call(lambda: api.create_rich_menu(body, _request_timeout=self.timeout))
        return str(response.rich_menu_id)

    async def set_rich_menu_image(self, rich_menu_id: str, png: bytes) -> None:
        blob = AsyncMessagingApiBlob(self._client(self.data_host))
        await self._call(
            lambda: blob.set_rich_menu_image(
                rich_menu_id, png, _headers={"Content-Type": "image/png"}, _request_timeout=self.timeout
            )
        )

    async def set_default_rich_menu(self, rich_menu_id: str) -> None:
        api = AsyncMessagingApi(self._client(self.host))
        await self._call(lambda: api.set_default_rich_menu(rich_menu_id, _request_timeout=self.timeout))


# -- what the API and the worker see -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkNonce:
    nonce: str
    redirect_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkStatus:
    linked: bool
    linked_at: datetime | None
    following: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: uuid.UUID
    purpose: str
    status: str
    attempts: int
    replays: int
    last_error: str | None
    created_at: datetime
    failed_at: datetime | None


def _dead_letter(row: LineDeliveryRow) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        purpose=row.purpose,
        status=row.status,
        attempts=row.attempts,
        replays=row.replays,
        last_error=row.last_error,
        created_at=row.created_at,
        failed_at=row.failed_at,
    )


def _text(value: object, limit: int) -> str | None:
    """A field of a LINE event, or None when it is not one line of storable text (a NUL cannot be stored)."""
    if not isinstance(value, str) or not value or bad_character(value) is not None:
        return None
    return value[:limit]


class LineBot:
    def __init__(
        self,
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
        self.sessions = sessions
        self.texts = texts or load_line_texts()
        self.clock = clock
        self.settings = settings
        self.guidance = guidance
        self.triage = triage
        self.knowledge = knowledge
        self.api = api or LineApi(settings)
        secret = settings.line_channel_secret
        self._validator = (
            SignatureValidator(secret.get_secret_value()) if secret and secret.get_secret_value() else None
        )
        self.links = say.Links(home=settings.public_url)
        self.login_url = settings.line_login_url or settings.public_url.rstrip("/") + "/line/link"

    @property
    def configured(self) -> bool:
        return self._validator is not None

    async def close(self) -> None:
        await self.api.close()

    # -- webhook ---------------------------------------------------------------------------------------

    def verify(self, body: bytes, signature: str | None) -> None:
        """Signature first, over the exact bytes received; nothing is parsed before it holds."""
        if not signature or not signature.strip():
            raise Unauthenticated("missing_signature")
        if self._validator is None:
            raise Unavailable(60, "line_not_configured")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Unauthenticated("invalid_signature") from None
        if not self._validator.validate(text, signature.strip()):
            raise Unauthenticated("invalid_signature")

    async def receive(self, body: bytes, signature: str | None) -> int:
        """The webhook use case: verify, reduce, store each event once. Returns how many events were new."""
        self.verify(body, signature)
        try:
            document = json.loads(body)
        except ValueError:
            raise ValidationFailed("invalid_payload") from None
        if not isinstance(document, dict) or not isinstance(document.get("events", []), list):
            raise ValidationFailed("invalid_payload")
        bot = self.settings.line_bot_user_id
        if bot and document.get("destination") != bot:
            raise Unauthenticated("wrong_destination")
        now = self.clock.now()
        rows = [r for r in (self._reduce(e, now) for e in document.get("events", [])) if r is not None]
        if not rows:
            return 0
        async with self.sessions() as db:
            stored = await SqlLineInbox(db).add(rows)
            await db.commit()
        return stored

    def _reduce(self, event: object, now: datetime) -> dict[str, Any] | None:
        """Keep what the bot needs to answer, nothing else: no profile, no message text, no locations."""
        if not isinstance(event, dict):
            return None
        event_id = _text(event.get("webhookEventId"), 64)
        if event_id is None:
            return None
        kind = _text(event.get("type"), 32) or "unknown"
        source = event.get("source") if isinstance(event.get("source"), dict) else {}
        line_user_id = _text(source.get("userId"), 64) if source.get("type") == "user" else None
        stamp = event.get("timestamp")
        event_at = (
            datetime.fromtimestamp(stamp / 1000, UTC)
            if isinstance(stamp, int | float) and 0 < stamp < 10**14
            else now
        )
        context = event.get("deliveryContext") if isinstance(event.get("deliveryContext"), dict) else {}
        payload: dict[str, Any] = {"mode": "standby" if event.get("mode") == "standby" else "active"}
        if kind == "message":
            message = event.get("message") if isinstance(event.get("message"), dict) else {}
            payload["message"] = _text(message.get("type"), 32) or "unknown"
            if payload["message"] == "text":
                payload.update(self._reduce_text(message.get("text")))
        elif kind == "postback":
            data = event.get("postback", {}).get("data") if isinstance(event.get("postback"), dict) else None
            payload["data"] = _text(data, say.POSTBACK_MAX) or ""
        elif kind == "accountLink":
            link = event.get("link") if isinstance(event.get("link"), dict) else {}
            nonce = _text(link.get("nonce"), 255)
            payload["ok"] = link.get("result") == "ok"
            payload["nonce_digest"] = digest(nonce) if nonce else None  # the nonce itself is a secret
        return {
            "id": uuid.uuid4(),
            "webhook_event_id": event_id,
            "event_type": kind,
            "line_user_id": line_user_id,
            "reply_token": _text(event.get("replyToken"), 255),
            "payload": payload,
            "event_at": event_at,
            "received_at": now,
            "redelivery": bool(context.get("isRedelivery")),
            "attempts": 0,
            "next_attempt_at": now,
        }

    def _reduce_text(self, value: object) -> dict[str, Any]:
        """Free text is triaged here and dropped: only codes reach the database."""
        words = value if isinstance(value, str) else ""
        if say.is_menu_request(words):
            return {"intent": "menu"}
        lang = self.texts.language_of_keyword(words)
        if lang is not None:
            return {"intent": "language", "lang": lang}
        result = self.triage.triage(words[:5000])
        return {
            "intent": "triage",
            "categories": [c.code for c in result.categories],
            "urgent": bool(result.urgency),
            "desks": list(result.desk_codes),
            "guides": list(result.guide_slugs),
        }

    # -- the worker pass -------------------------------------------------------------------------------

    async def run_once(self, limit: int = 100) -> int:
        """Process the inbox, then send what is due. Returns how many messages were delivered."""
        if not self.configured:
            return 0
        await self._drain_inbox(limit)
        return await self._drain_deliveries(limit)

    async def _drain_inbox(self, limit: int) -> None:
        await drain(
            self.sessions,
            INBOX,
            self._process,
            clock=self.clock,
            lease=self.settings.worker_lease,
            limit=limit,
        )

    async def _process(self, row_id: uuid.UUID) -> bool:
        try:
            await self._process_row(row_id)
        except Exception as exc:  # noqa: BLE001 - the database went away mid-row: counted, retried later
            await self._inbox_failed(row_id, type(exc).__name__)
        return False

    async def _process_row(self, row_id: uuid.UUID) -> None:
        async with self.sessions() as db:
            row = await SqlLineInbox(db).get(row_id)
            if row is None or row.processed_at is not None:
                return
            try:
                await self._handle(db, row)
            except Exception as exc:  # noqa: BLE001 - retried later; only the type name is kept
                await db.rollback()
                await self._inbox_failed(row_id, type(exc).__name__)
                return
            row.processed_at = self.clock.now()
            row.payload = None
            row.reply_token = None  # moved to the delivery, if any
            row.locked_until = None
            await db.commit()

    async def _inbox_failed(self, row_id: uuid.UUID, error: str) -> None:
        with contextlib.suppress(Exception):  # not even this could be written: the lease runs out, retaken
            await self._inbox_failure(row_id, error)

    async def _inbox_failure(self, row_id: uuid.UUID, error: str) -> None:
        async with self.sessions() as db:
            row = await SqlLineInbox(db).get(row_id)
            if row is None:
                return
            now = self.clock.now()
            row.attempts += 1
            row.last_error = error[:64]
            row.locked_until = None
            row.next_attempt_at = now + self._backoff(row.attempts)
            if row.attempts >= INBOX_MAX_ATTEMPTS:
                row.processed_at = now
                row.payload = None
                row.reply_token = None
            log.warning(
                "line event failed",
                extra={
                    "inbox_id": str(row.id),
                    "event_type": row.event_type,
                    "attempts": row.attempts,
                    "error": row.last_error,
                },
            )
            await db.commit()

    async def _handle(self, db: AsyncSession, row: LineInboxRow) -> None:
        payload = row.payload or {}
        if row.line_user_id is None or payload.get("mode") == "standby":
            return  # groups, rooms and standby mode: nothing to say
        now = self.clock.now()
        users = SqlLineUsers(db)
        person = await users.seen(row.line_user_id, now)
        v = self.texts.voice(person.language)
        messages: list[dict[str, Any]] = []
        if row.event_type == "follow":
            await users.follow(person, now)
            messages = say.greeting(self.links, v)
        elif row.event_type == "unfollow":
            await users.unfollow(person, now)
        elif row.event_type == "message":
            if payload.get("message") != "text":
                messages = say.unsupported_message(self.links, v)
            elif payload.get("intent") == "menu":
                messages = say.menu(self.links, v)
            elif payload.get("intent") == "language":
                messages = await self._switch(users, person, str(payload.get("lang")), now)
            else:
                messages = await self._triage_reply(payload, v)
        elif row.event_type == "postback":
            data = str(payload.get("data", ""))
            action = say.decode_postback(data)
            if action.kind == "language" and action.lang is not None:
                messages = await self._switch(users, person, action.lang, now)
            else:
                messages = await self._postback(person.line_user_id, person.user_id, data, v)
        elif row.event_type == "accountLink":
            messages = await self._account_link(db, users, person, payload, now, v)
        if not messages:
            return
        if person.unfollowed_at is not None and row.event_type != "follow":
            return  # never message someone who blocked the bot
        SqlLineDeliveries(db).add(
            purpose=f"event_{row.event_type}"[:32],
            line_user_id=person.line_user_id,
            messages=messages[: say.MESSAGES_MAX],
            now=now,
            reply_token=row.reply_token,
            event_at=row.event_at,
        )
        await db.flush()

    async def _switch(
        self, users: SqlLineUsers, person: Any, lang: str, now: datetime
    ) -> list[dict[str, Any]]:
        """Speak `lang` with this person from now on (a language the texts do not declare: the menu, unchanged)."""
        if not self.texts.speaks(lang):
            return say.menu(self.links, self.texts.voice(person.language))
        await users.set_language(person, lang, now)
        return say.language_switched(self.links, self.texts.voice(lang))

    async def _triage_reply(self, payload: dict[str, Any], v: say.Voice) -> list[dict[str, Any]]:
        labels = {c.code: c.label_en if v.english_names else c.label_ja for c in self.knowledge.categories}
        desks = await self.guidance.desks.resolve(list(payload.get("desks", []))[:10])
        guides = [
            g for g in (self.knowledge.guide(s) for s in payload.get("guides", [])[:5]) if g is not None
        ]
        view = say.TriageView(
            categories=tuple(labels[c] for c in payload.get("categories", [])[:5] if c in labels),
            urgent=bool(payload.get("urgent")),
            desks=tuple(desks[:5]),
            guides=tuple(guides[:3]),
        )
        return say.triage_reply(view, self.links, v)

    async def _postback(
        self, line_user_id: str, user_id: uuid.UUID | None, data: str, v: say.Voice
    ) -> list[dict[str, Any]]:
        action = say.decode_postback(data)
        if action.kind == "chart":
            return await self._walk(action.answers, v)
        item = action.item or say.MenuItem.menu
        if item is say.MenuItem.chart:
            return await self._walk((), v)
        if item is say.MenuItem.howto:
            return say.how_to_consult(self.links, v)
        if item is say.MenuItem.evidence:
            return say.evidence_tips(self.links, self.knowledge.guide("evidence-preservation"), v)
        if item is say.MenuItem.link:
            if user_id is not None:
                return say.link_already(v)
            token = await self.api.issue_link_token(line_user_id)
            separator = "&" if "?" in self.login_url else "?"
            return say.link_prompt(self.login_url + separator + urlencode({"linkToken": token}), v)
        return say.menu(self.links, v)

    async def _walk(self, answers: Sequence[str], v: say.Voice) -> list[dict[str, Any]]:
        try:
            result = await self.guidance.walk_chart(list(answers))
        except InvalidChartAnswer:
            start = self.knowledge.chart.node(self.knowledge.chart.start)
            assert start is not None
            return say.chart_restart(start, self.links, v)
        if result.step.done:
            return say.chart_outcome(result.step.node, result.desks, result.guides, self.links, v)
        return say.chart_question(result.step.node, result.step.answers, self.links, v)

    async def _account_link(
        self,
        db: AsyncSession,
        users: SqlLineUsers,
        person: Any,
        payload: dict[str, Any],
        now: datetime,
        v: say.Voice,
    ) -> list[dict[str, Any]]:
        nonce_digest = payload.get("nonce_digest")
        if not payload.get("ok") or not isinstance(nonce_digest, str):
            return say.link_failed(v)
        user_id = await SqlLineNonces(db).consume(nonce_digest, now)
        account = await db.get(UserRow, user_id) if user_id else None
        if account is None or not account.is_active or account.role != Role.consulter.value:
            return say.link_failed(v)
        await users.bind(person, account.id, now)
        log.info("line account linked", extra={"user_id": str(account.id)})
        return say.link_done(v)

    # -- deliveries ------------------------------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(600.0, self.settings.line_retry_base_seconds * 2 ** max(0, attempts - 1))
        )

    async def _drain_deliveries(self, limit: int) -> int:
        if not self.api.configured:
            return 0
        return await drain(
            self.sessions,
            DELIVERIES,
            self._deliver,
            clock=self.clock,
            lease=self.settings.worker_lease,
            limit=limit,
        )

    async def _deliver(self, row_id: uuid.UUID) -> bool:
        """Send one delivery and record the outcome. Any exception, of whatever type, is a failed attempt of
        this row alone (backoff, then a dead letter); it never leaves the row leased to be sent again blind."""
        began = time.perf_counter()
        try:
            sent = await self._deliver_row(row_id)
        except Exception as exc:  # noqa: BLE001 - the type name is all we keep
            await self._record_failure(row_id, LineCallFailed(0, code=type(exc).__name__[:64]))
            sent = False
        # One line per delivery: the row id and whether it went out (failures log their reason above), never
        # the LINE user id, the reply token or the messages.
        delivery_log.info(
            "delivery",
            queue="line_delivery",
            delivery_id=str(row_id),
            outcome="sent" if sent else "not_sent",
            duration_ms=round((time.perf_counter() - began) * 1000, 2),
        )
        return sent

    async def _deliver_row(self, row_id: uuid.UUID) -> bool:
        async with self.sessions() as db:
            row = await SqlLineDeliveries(db).get(row_id)
            if row is None or row.status != PENDING:
                return False
            person = await SqlLineUsers(db).by_line_id(row.line_user_id)
            if (
                person is None
                or person.unfollowed_at is not None
                or (row.user_id is not None and person.user_id != row.user_id)
            ):
                # Blocked, or the account was unlinked since: the notice is no longer wanted.
                self._finish(row, SKIPPED)
                await db.commit()
                return False
            now = self.clock.now()
            unsure = (row.last_error or "").startswith(REPLY_UNSURE)
            fresh = (
                row.mode == "reply"
                and row.reply_token is not None
                and row.event_at is not None
                and (now - row.event_at).total_seconds() < self.settings.line_reply_window_seconds
            )
            if row.mode == "reply" and unsure and not fresh:
                self._dead(row, "reply_outcome_unknown", now)  # a push now might say it a second time
                await db.commit()
                return False
            if not fresh and row.mode == "reply":
                row.mode, row.reply_token = "push", None
            try:
                if fresh:
                    # Marked before the call: if this worker dies during it, whoever retakes the row knows.
                    row.last_error = f"{REPLY_UNSURE}_in_flight"
                    await db.commit()
                    try:
                        await self.api.reply(str(row.reply_token), row.messages or [])
                    except LineCallFailed as refused:
                        if refused.status != 400:
                            raise
                        if unsure:
                            # Used already (by the attempt we are unsure of) or expired: we cannot tell.
                            self._dead(row, "reply_outcome_unknown", now)
                            await db.commit()
                            return False
                        # The reply token was refused (expired or already used): say it with a push, now.
                        row.mode, row.reply_token, fresh = "push", None, False
                if not fresh:
                    await self.api.push(row.line_user_id, row.messages or [], row.retry_key)
            except LineCallFailed as failure:
                if fresh or failure.status != 409:
                    self._failed(row, failure, now, replying=fresh)
                    await db.commit()
                    return False
                # 409 to a push: LINE already accepted this retry key, so the message was sent.
            self._finish(row, SENT)
            row.sent_at = now
            row.last_error = None
            await db.commit()
            return True

    async def _record_failure(self, row_id: uuid.UUID, failure: LineCallFailed) -> None:
        """In a fresh session: the one that failed may be unusable."""
        try:
            async with self.sessions() as db:
                row = await SqlLineDeliveries(db).get(row_id)
                if row is None or row.status != PENDING:
                    return
                self._failed(row, failure, self.clock.now(), replying=False)
                await db.commit()
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the row is tried again
            log.error("line delivery failure not recorded: %s", type(exc).__name__)

    def _finish(self, row: LineDeliveryRow, status: str) -> None:
        row.status = status
        row.locked_until = None
        row.reply_token = None
        row.messages = None

    def _failed(
        self, row: LineDeliveryRow, failure: LineCallFailed, now: datetime, *, replying: bool
    ) -> None:
        row.attempts += 1
        row.last_error = failure.code
        if replying and failure.outcome_unknown:
            row.last_error = f"{REPLY_UNSURE}_{failure.code}"[:64]
        row.locked_until = None
        if failure.retryable and row.attempts < self.settings.line_max_attempts:
            wait = self._backoff(row.attempts)
            if failure.retry_after is not None:
                wait = max(wait, timedelta(seconds=min(3600.0, failure.retry_after)))
            row.next_attempt_at = now + wait
        else:
            self._dead(row, row.last_error, now)
        log.warning(
            "line delivery failed",
            extra={
                "delivery_id": str(row.id),
                "purpose": row.purpose,
                "attempts": row.attempts,
                "error": row.last_error,
            },
        )

    @staticmethod
    def _dead(row: LineDeliveryRow, error: str | None, now: datetime) -> None:
        row.status = DEAD  # kept with its messages so an admin can replay it (by push)
        row.last_error = error
        row.failed_at = now
        row.locked_until = None
        row.reply_token = None
        row.mode = "push"

    # -- notices from the outbox ---------------------------------------------------------------------

    async def on_answer_published(self, db: AsyncSession, payload: dict[str, Any]) -> bool:
        """Outbox handler: queues a push for a linked, following consulter; otherwise done without a word.
        Returns False either way: the push itself is sent (and counted) by the LINE pass."""
        link = self.links.consultation(str(payload["consultation_id"]))
        return await self._notice(db, payload, "answer_published", lambda v: say.answer_published(link, v))

    def clock_notice_handler(self, kind: str):  # type: ignore[no-untyped-def]
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
        compose: Callable[[say.Voice], list[Any]],
    ) -> bool:
        """Queue a push to a linked, following, active consulter, in the language they chose on LINE."""
        if not (self.configured and self.api.configured):
            return False
        user_id = uuid.UUID(payload["user_id"])
        person = await SqlLineUsers(db).by_user(user_id)
        if person is None or person.unfollowed_at is not None:
            return False
        account = await db.get(UserRow, user_id)
        if account is None or not account.is_active:
            return False
        if not may_notify_by_line(await SqlConsents(db).for_user(user_id)):
            return False  # LINE notices withdrawn on the consent page (issue 17 §4)
        SqlLineDeliveries(db).add(
            purpose=purpose,
            line_user_id=person.line_user_id,
            user_id=user_id,
            messages=compose(self.texts.voice(person.language)),
            now=self.clock.now(),
        )
        await db.flush()
        return False

    # -- account linking (the my-page side) ----------------------------------------------------------

    @staticmethod
    def _consulter(actor: Actor) -> uuid.UUID:
        if actor.role is not Role.consulter:
            raise Forbidden("consulter_required")
        return actor.require_user_id()

    async def create_link_nonce(self, actor: Actor, link_token: str) -> LinkNonce:
        user_id = self._consulter(actor)
        if not LINK_TOKEN.fullmatch(link_token):
            raise ValidationFailed("invalid_link_token", field="link_token")
        nonce = secrets.token_urlsafe(32)  # unpredictable and unrelated to the account id (LINE's rule)
        now = self.clock.now()
        expires_at = now + timedelta(minutes=self.settings.line_link_nonce_minutes)
        async with self.sessions() as db:
            await SqlLineNonces(db).add(digest(nonce), user_id, now, expires_at)
            await db.commit()
        query = urlencode({"linkToken": link_token, "nonce": nonce})
        return LinkNonce(nonce=nonce, redirect_url=f"{ACCOUNT_LINK_URL}?{query}", expires_at=expires_at)

    async def link_status(self, actor: Actor) -> LinkStatus:
        user_id = self._consulter(actor)
        async with self.sessions() as db:
            person = await SqlLineUsers(db).by_user(user_id)
        if person is None:
            return LinkStatus(linked=False, linked_at=None, following=False)
        return LinkStatus(linked=True, linked_at=person.linked_at, following=person.unfollowed_at is None)

    async def unlink(self, actor: Actor) -> None:
        user_id = self._consulter(actor)
        async with self.sessions() as db:
            if await SqlLineUsers(db).unlink_user(user_id, self.clock.now()):
                log.info("line account unlinked", extra={"user_id": str(user_id)})
            await db.commit()

    # -- dead letters --------------------------------------------------------------------------------

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with self.sessions() as db:
            return [_dead_letter(r) for r in await SqlLineDeliveries(db).dead(limit)]

    async def replay(self, delivery_id: uuid.UUID) -> DeadLetter:
        async with self.sessions() as db:
            row = await SqlLineDeliveries(db).get(delivery_id)
            if row is None:
                raise NotFound("dead_letter_not_found")
            if row.status != DEAD:
                raise InvalidState("not_a_dead_letter")
            row.status = PENDING
            row.mode = "push"  # the reply token is long gone
            row.reply_token = None
            row.attempts = 0
            row.replays += 1
            row.failed_at = None
            row.locked_until = None
            row.next_attempt_at = self.clock.now()
            await db.commit()
            log.info("line dead letter replayed", extra={"delivery_id": str(row.id)})
            return _dead_letter(row)


# -- rich menu --------------------------------------------------------------------------------------

RICH_MENU_SIZES = {(2500, 1686), (2500, 843), (1200, 810), (1200, 405), (800, 540), (800, 270)}


def load_line_texts(path: Path = LINE_TEXTS_FILE) -> say.LineTexts:
    """The bot's texts in every declared language; LineTextsError when a declared language misses a text."""
    return say.LineTexts.from_raw(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_rich_menu(path: Path = RICH_MENU_FILE) -> dict[str, Any]:
    """Read and check the rich-menu data file (sizes and bounds as the Messaging API requires)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ValueError("rich menu: not a mapping")
    size = spec.get("size") or {}
    width, height = size.get("width"), size.get("height")
    if (width, height) not in RICH_MENU_SIZES:
        raise ValueError(f"rich menu: size {width}x{height} is not one LINE accepts")
    if not 1 <= len(str(spec.get("chat_bar_text", ""))) <= 14:
        raise ValueError("rich menu: chat_bar_text must be 1-14 characters")
    areas = spec.get("areas") or []
    if not 1 <= len(areas) <= 20:
        raise ValueError("rich menu: 1-20 areas")
    for n, area in enumerate(areas):
        b = area.get("bounds") or {}
        x, y, w, h = (int(b.get(k, -1)) for k in ("x", "y", "width", "height"))
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or y + h > height:
            raise ValueError(f"rich menu: area {n} lies outside the menu")
        action = area.get("action") or {}
        if action.get("type") not in ("postback", "uri", "message"):
            raise ValueError(f"rich menu: area {n} has an unsupported action")
        if (
            action.get("type") == "postback"
            and say.decode_postback(str(action.get("data", ""))).kind == "unknown"
        ):
            raise ValueError(f"rich menu: area {n} posts data the bot does not understand")
        if not area.get("label_ja") or not area.get("label_en"):
            raise ValueError(f"rich menu: area {n} needs label_ja and label_en")
    return spec


def rich_menu_request(spec: dict[str, Any], public_url: str) -> dict[str, Any]:
    """The Messaging API body: `{public_url}` in a URI is the homepage."""
    areas = []
    for area in spec["areas"]:
        action = {k: v for k, v in area["action"].items() if k != "display_text"}
        if "display_text" in area["action"]:
            action["displayText"] = area["action"]["display_text"]
        if action["type"] == "uri":
            action["uri"] = str(action["uri"]).replace("{public_url}", public_url.rstrip("/"))
        action.setdefault("label", str(area["label_ja"])[: say.LABEL_MAX])
        areas.append({"bounds": area["bounds"], "action": action})
    return {
        "size": spec["size"],
        "selected": bool(spec.get("selected", True)),
        "name": str(spec.get("name", "madoguchi"))[:300],
        "chatBarText": spec["chat_bar_text"],
        "areas": areas,
    }


def rich_menu_image(spec: dict[str, Any], font_path: str | None = None) -> bytes:
    """A plain PNG of the menu's size: one tile per area with its Japanese label, in the project's font (or the
    TrueType/OpenType font an operator passes)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = spec["size"]["width"], spec["size"]["height"]
    image = Image.new("RGB", (width, height), (246, 248, 250))
    draw = ImageDraw.Draw(image)
    font_file = str(font_path or japanese_font_path())

    def font_for(label: str, room: float) -> Any:
        size = max(16, height // 12)
        while True:
            font = ImageFont.truetype(font_file, size)
            if size <= 16 or draw.textlength(label, font=font) <= room:
                return font
            size -= 4

    palette = [(0, 120, 90), (20, 90, 160), (150, 90, 20), (120, 40, 120), (40, 110, 40), (160, 40, 60)]
    for n, area in enumerate(spec["areas"]):
        b = area["bounds"]
        box = (b["x"], b["y"], b["x"] + b["width"] - 1, b["y"] + b["height"] - 1)
        draw.rectangle(box, fill=palette[n % len(palette)], outline=(255, 255, 255), width=8)
        label = str(area["label_ja"])
        draw.text(
            (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2),
            label,
            fill=(255, 255, 255),
            font=font_for(label, b["width"] * 0.85),
            anchor="mm",
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > 1_000_000:
        raise ValueError("rich menu image is larger than LINE's 1 MB limit")
    return data


async def deploy_rich_menu(
    api: LineApi, spec: dict[str, Any], public_url: str, font_path: str | None = None
) -> str:
    """Create the menu, upload its image, make it the default for every user; returns the rich menu id."""
    rich_menu_id = await api.create_rich_menu(rich_menu_request(spec, public_url))
    await api.set_rich_menu_image(rich_menu_id, rich_menu_image(spec, font_path))
    await api.set_default_rich_menu(rich_menu_id)
    return rich_menu_id
