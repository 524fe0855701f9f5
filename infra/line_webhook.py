"""The LINE webhook: the `X-Line-Signature` check over the exact bytes received, then each event reduced to what
the bot needs (free text becomes triage codes here, so the words are never stored) and stored in `line_inbox`,
unique on `webhookEventId`, before the webhook answers 200. The inbox worker (infra/line_inbox.py) answers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain import line as say
from domain.errors import Unauthenticated, Unavailable, ValidationFailed
from domain.line_linking import digest
from domain.ports import Clock
from domain.text import bad_character
from domain.triage import TriageRules
from infra.db.line import LineWebhookInbox
from infra.settings import Settings

if TYPE_CHECKING:
    from linebot.v3.webhook import SignatureValidator


def _text(value: object, limit: int) -> str | None:
    """A field of a LINE event, or None when it is not one line of storable text (a NUL cannot be stored)."""
    if not isinstance(value, str) or not value or bad_character(value) is not None:
        return None
    return value[:limit]


def _mapping(value: object) -> dict[str, Any]:
    """A nested object of a LINE event, or an empty one when it is anything else."""
    return value if isinstance(value, dict) else {}


class LineWebhook:
    def __init__(
        self,
        inbox: LineWebhookInbox,
        settings: Settings,
        *,
        triage: TriageRules,
        texts: say.LineTexts,
        clock: Clock,
    ) -> None:
        self.inbox = inbox
        self.settings = settings
        self.triage = triage
        self.texts = texts
        self.clock = clock
        secret = settings.line_channel_secret
        self._validator: SignatureValidator | None = None
        if secret and secret.get_secret_value():
            # Imported only with a channel configured (the SDK is slow to import; see infra/line_sdk.py).
            from linebot.v3.webhook import SignatureValidator

            self._validator = SignatureValidator(secret.get_secret_value())

    @property
    def configured(self) -> bool:
        return self._validator is not None

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
        return await self.inbox.add(rows)  # committed: only then does the route answer 200

    def _reduce(self, event: object, now: datetime) -> dict[str, Any] | None:
        """Keep what the bot needs to answer, nothing else: no profile, no message text, no locations."""
        if not isinstance(event, dict):
            return None
        event_id = _text(event.get("webhookEventId"), 64)
        if event_id is None:
            return None
        kind = _text(event.get("type"), 32) or "unknown"
        source = _mapping(event.get("source"))
        line_user_id = _text(source.get("userId"), 64) if source.get("type") == "user" else None
        stamp = event.get("timestamp")
        event_at = (
            datetime.fromtimestamp(stamp / 1000, UTC)
            if isinstance(stamp, int | float) and 0 < stamp < 10**14
            else now
        )
        context = _mapping(event.get("deliveryContext"))
        payload: dict[str, Any] = {"mode": "standby" if event.get("mode") == "standby" else "active"}
        if kind == "message":
            message = _mapping(event.get("message"))
            payload["message"] = _text(message.get("type"), 32) or "unknown"
            if payload["message"] == "text":
                payload.update(self._reduce_text(message.get("text")))
        elif kind == "postback":
            data = _mapping(event.get("postback")).get("data")
            payload["data"] = _text(data, say.POSTBACK_MAX) or ""
        elif kind == "accountLink":
            link = _mapping(event.get("link"))
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
