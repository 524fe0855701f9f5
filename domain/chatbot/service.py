"""The chatbot use cases: open a session, reply to a turn, read the transcript, claim a hand-off draft. Rate
limits, sessions and transcripts, the contact-desk chart, desk details and the hand-off go through ports."""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from domain.actors import Actor
from domain.chart import InvalidChartAnswer
from domain.chatbot.engine import Engine, Say, State, UnknownChoice
from domain.chatbot.model import FREE_TEXT_PLACEHOLDER, MAX_TEXT_CHARS, SESSION_NOT_FOUND, Draft, Flows
from domain.chatbot.ports import (
    ChartWalker,
    ChatbotTokens,
    ChatbotUnitOfWork,
    ChatbotUnitOfWorkFactory,
    ChatDraft,
    ChatSession,
    ChatTurn,
    DeskResolver,
)
from domain.errors import Conflict, InvalidState, NotFound, RateLimited, ValidationFailed
from domain.knowledge_model import Desk, Guide, Knowledge, Platform
from domain.languages import BASE
from domain.policy import ensure_consulter
from domain.ports import Clock, Throttle
from domain.text import nfkc
from domain.triage import TriageRules


@dataclass(frozen=True, slots=True)
class ChatbotPolicy:
    idle: timedelta = timedelta(minutes=30)  # sliding: each turn moves the expiry
    absolute: timedelta = timedelta(hours=4)  # …but never past this after the start
    claim_lifetime: timedelta = timedelta(hours=24)
    max_turns: int = 400  # user and bot turns together; bounds one transcript
    guide_url: str = "/guides/{slug}"  # the page of a guide on the public site


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class BotMessage:
    text: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class Handoff:
    claim_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TurnReply:
    messages: tuple[BotMessage, ...]
    choices: tuple[tuple[str, str], ...]
    expires_at: datetime
    handoff: Handoff | None = None
    lang: str = BASE  # the language of this turn (and of the session from now on)


@dataclass(frozen=True, slots=True)
class Opened:
    session_id: uuid.UUID
    token: str
    expires_at: datetime
    reply: TurnReply


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    role: str
    at: datetime
    text: str | None  # the user's choice label or the free-text placeholder
    messages: tuple[BotMessage, ...]
    choices: tuple[tuple[str, str], ...]
    handoff_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Transcript:
    session_id: uuid.UUID
    expires_at: datetime
    entries: tuple[TranscriptEntry, ...]
    choices: tuple[tuple[str, str], ...]
    lang: str = BASE


def _tel(phone: str) -> str | None:
    """A tel: link for numbers a phone can dial (#8103, 0570-003-110); None for anything else."""
    digits = phone.replace("-", "").replace(" ", "")
    if not re.fullmatch(r"#?[0-9]{3,15}", digits):
        return None
    return "tel:" + digits.replace("#", "%23")


def _message_payload(m: BotMessage) -> dict[str, Any]:
    return {"text": m.text, "links": [{"title": link.title, "url": link.url} for link in m.links]}


def _message_from(raw: Mapping[str, Any]) -> BotMessage:
    links = tuple(Link(str(x.get("title", "")), str(x.get("url", ""))) for x in raw.get("links") or ())
    return BotMessage(str(raw.get("text", "")), links)


class ChatbotService:
    def __init__(
        self,
        uow: ChatbotUnitOfWorkFactory,
        flows: Flows,
        knowledge: Knowledge,
        guidance: ChartWalker,
        desks: DeskResolver,
        triage: TriageRules,
        tokens: ChatbotTokens,
        clock: Clock,
        session_throttle: Throttle,
        turn_throttle: Throttle,
        policy: ChatbotPolicy = ChatbotPolicy(),
    ) -> None:
        self.uow = uow
        self.flows = flows
        self.engine = Engine(flows)
        self.knowledge = knowledge
        self.guidance = guidance
        self.desks = desks
        self.triage = triage
        self.tokens = tokens
        self.clock = clock
        self.session_throttle = session_throttle
        self.turn_throttle = turn_throttle
        self.policy = policy

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    async def _throttle(throttle: Throttle, prefix: str, address: str | None, now: datetime) -> None:
        # Anonymous and public: the client address is the only handle (as for triage).
        if address:
            wait = await throttle.attempt([f"{prefix}:{address}"], now=now)
            if wait:
                raise RateLimited(wait, "too_many_requests")

    def _expiry(self, created_at: datetime, now: datetime) -> datetime:
        return min(now + self.policy.idle, created_at + self.policy.absolute)

    async def _live(
        self, uow: ChatbotUnitOfWork, session_id: str, token: str | None, now: datetime
    ) -> ChatSession:
        """The session if the token is its own and it has not expired. Every failure is the same 404, so a
        token never learns anything about another session, not even that it exists."""
        try:
            sid = uuid.UUID(session_id)
        except (ValueError, TypeError, AttributeError):
            raise NotFound(SESSION_NOT_FOUND) from None
        expected = self.tokens.digest(token) if token and len(token) <= 256 else ""
        found: ChatSession | None = await uow.chatbot.get_session(sid)
        if (
            found is None
            or not expected
            or not hmac.compare_digest(found.token_digest, expected)
            or found.expires_at <= now
        ):
            raise NotFound(SESSION_NOT_FOUND)
        return found

    async def _render(self, says: Sequence[Say], lang: str = BASE) -> tuple[BotMessage, ...]:
        codes = [c for s in says for c in s.desks]
        by_code = {d.code: d for d in await self.desks.resolve(codes)}
        out: list[BotMessage] = []
        for say in says:
            if say.text:
                out.append(BotMessage(say.text))
            for code in dict.fromkeys(say.desks):
                desk = by_code.get(code)
                if desk is not None:
                    out.append(self._desk_message(desk, lang))
            for code in say.platforms:
                platform = self.knowledge.platform(code)
                if platform is not None and platform.report_routes:
                    out.append(self._platform_message(platform, lang))
            guides = [g for g in (self.knowledge.guide(s) for s in dict.fromkeys(say.guides)) if g]
            if guides:
                out.append(
                    BotMessage(
                        self.flows.text("guides_intro", lang),
                        tuple(self._guide_link(g, lang) for g in guides),
                    )
                )
        return tuple(out)

    def _desk_message(self, desk: Desk, lang: str = BASE) -> BotMessage:
        t = self.flows.text
        # Desks have their name and what they handle in Japanese and English; further languages fall back
        # to English, which a foreign resident is likelier to read than Japanese.
        name = desk.name_ja if lang == BASE else desk.name_en or desk.name_ja
        handles = desk.handles_ja if lang == BASE else desk.handles_en or desk.handles_ja
        lines = [t("desk_name", lang).format(name=name), handles]
        if desk.phone:
            lines.append(t("desk_phone", lang).format(phone=desk.phone))
        if desk.hours_ja:
            lines.append(t("desk_hours", lang).format(hours=desk.hours_ja))
        links = []
        if desk.url:
            links.append(Link(name, desk.url))
        tel = _tel(desk.phone) if desk.phone else None
        if tel:
            links.append(Link(t("desk_call", lang).format(phone=desk.phone), tel))
        return BotMessage("\n".join(x for x in lines if x), tuple(links))

    def _platform_message(self, platform: Platform, lang: str = BASE) -> BotMessage:
        t = self.flows.text
        sep = t("list_separator", lang)

        def named(x: Any) -> str:
            return str(x.name_ja if lang == BASE else x.name_en or x.name_ja)

        names = sep.join(r.name_ja for r in platform.report_routes)
        links = tuple(Link(r.name_ja, r.url) for r in platform.report_routes if r.url)
        lines = [t("platform_desk", lang).format(name=named(platform)), names]
        # Designation under the 2025 platform act is per service: say which ones owe the 7-day answer.
        designated = platform.designated_services()
        others = [s for s in platform.services if not s.designated]
        if designated:
            lines.append(t("platform_designated", lang).format(services=sep.join(map(named, designated))))
        if designated and others:
            lines.append(t("platform_not_designated", lang).format(services=sep.join(map(named, others))))
        return BotMessage("\n".join(lines), links)

    def _guide_link(self, guide: Guide, lang: str = BASE) -> Link:
        return Link(
            guide.text("title", lang) or guide.title_ja, self.policy.guide_url.format(slug=guide.slug)
        )

    @staticmethod
    def _bot_payload(reply: TurnReply) -> dict[str, Any]:
        return {
            "messages": [_message_payload(m) for m in reply.messages],
            "choices": [{"id": cid, "label": label} for cid, label in reply.choices],
            # The claim token itself is shown once and never stored; the transcript keeps its expiry.
            "handoff": {"expires_at": reply.handoff.expires_at.isoformat()} if reply.handoff else None,
        }

    # -- use cases ---------------------------------------------------------------------------------

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the chatbot speaks (chatbot.yaml `languages`), Japanese first."""
        return self.flows.languages

    async def open(self, *, address: str | None, lang: str = BASE) -> Opened:
        """`lang` must be one of `languages` (the API layer chooses it from the request)."""
        if not self.flows.speaks(lang):
            raise ValidationFailed("unsupported_language", field="language")
        now = self.clock.now()
        await self._throttle(self.session_throttle, "chatbot_session", address, now)
        plan = self.engine.greeting(lang)
        token = self.tokens.new_opaque()
        session = ChatSession(
            id=uuid.uuid4(),
            token_digest=self.tokens.digest(token),
            state=plan.state.to_dict(),
            flows_version=self.flows.version,
            created_at=now,
            last_seen_at=now,
            expires_at=self._expiry(now, now),
            turns=1,
        )
        reply = TurnReply(await self._render(plan.says, lang), plan.choices, session.expires_at, lang=lang)
        turn = ChatTurn(uuid.uuid4(), session.id, 0, "bot", self._bot_payload(reply), now)
        async with self.uow() as uow:
            await uow.chatbot.add_session(session)
            await uow.chatbot.add_turns([turn])
            await uow.commit()
        return Opened(session.id, token, session.expires_at, reply)

    async def reply(
        self,
        session_id: str,
        token: str | None,
        *,
        choice_id: str | None = None,
        text: str | None = None,
        address: str | None,
    ) -> TurnReply:
        if (choice_id is None) == (text is None):
            raise ValidationFailed("choice_or_text_required", field="body")
        now = self.clock.now()
        await self._throttle(self.turn_throttle, "chatbot_turn", address, now)
        async with self.uow() as uow:
            session = await self._live(uow, session_id, token, now)
            if session.turns + 2 > self.policy.max_turns:
                raise InvalidState("chatbot_session_full")
            state = State.from_dict(session.state)
            if text is not None:
                if not text.strip() or len(text) > MAX_TEXT_CHARS:
                    raise ValidationFailed("invalid_text", field="text")
                plan = self.engine.free_text(state, self.triage.triage(text))
                user = {"text": FREE_TEXT_PLACEHOLDER, "free_text": True}
            else:
                cid = nfkc(choice_id or "")
                label = state.label_of(cid)
                plan = self.engine.choose(state, cid)
                user = {"choice_id": cid, "text": label}
            if plan.action == "chart":
                try:
                    walked = await self.guidance.walk_chart(list(plan.state.chart or ()))
                except InvalidChartAnswer:
                    raise UnknownChoice() from None
                plan = self.engine.chart_step(plan, walked.step)
            handoff = None
            if plan.action == "handoff":
                handoff = await self._handoff(uow, session, plan.state.draft, now)
                plan = self.engine.handoff_done(plan)
            expires_at = self._expiry(session.created_at, now)
            lang = self.engine.language(plan.state)
            reply = TurnReply(await self._render(plan.says, lang), plan.choices, expires_at, handoff, lang)
            version = session.version
            session.state = plan.state.to_dict()
            session.last_seen_at = now
            session.expires_at = expires_at
            seq = session.turns
            session.turns += 2
            session.version += 1
            if not await uow.chatbot.save_session(session, expected_version=version):
                raise Conflict("chatbot_turn_in_progress")
            await uow.chatbot.add_turns(
                [
                    ChatTurn(uuid.uuid4(), session.id, seq, "user", user, now),
                    ChatTurn(uuid.uuid4(), session.id, seq + 1, "bot", self._bot_payload(reply), now),
                ]
            )
            await uow.commit()
        return reply

    async def _handoff(
        self, uow: ChatbotUnitOfWork, session: ChatSession, draft: Draft, now: datetime
    ) -> Handoff:
        if not draft.desired_outcomes:
            # The intake needs at least one desired outcome; "advice first" is what a person who has only
            # asked to talk to someone wants.
            draft = replace(draft, desired_outcomes=self.flows.handoff_default_outcomes)
        claim = self.tokens.new_opaque()
        expires_at = now + self.policy.claim_lifetime
        await uow.chatbot.add_draft(
            ChatDraft(uuid.uuid4(), session.id, self.tokens.digest(claim), draft, now, expires_at)
        )
        return Handoff(claim, expires_at)

    async def transcript(self, session_id: str, token: str | None, *, address: str | None) -> Transcript:
        now = self.clock.now()
        await self._throttle(self.turn_throttle, "chatbot_turn", address, now)
        async with self.uow() as uow:
            session = await self._live(uow, session_id, token, now)
            turns = await uow.chatbot.turns(session.id)
        entries = []
        for t in turns:
            p = t.payload or {}
            handoff = p.get("handoff") or {}
            entries.append(
                TranscriptEntry(
                    role=t.role,
                    at=t.created_at,
                    text=p.get("text") if t.role == "user" else None,
                    messages=tuple(_message_from(m) for m in p.get("messages") or ()),
                    choices=tuple((str(c["id"]), str(c["label"])) for c in p.get("choices") or ()),
                    handoff_expires_at=datetime.fromisoformat(handoff["expires_at"]) if handoff else None,
                )
            )
        state = State.from_dict(session.state)
        return Transcript(
            session.id, session.expires_at, tuple(entries), state.offered, self.engine.language(state)
        )

    async def claim(self, actor: Actor, claim_token: str) -> Draft:
        """A signed-in consulter takes over the draft of a hand-off, once. Nothing is submitted for them."""
        ensure_consulter(actor)
        user_id = actor.require_user_id()
        if not claim_token or len(claim_token) > 256:
            raise ValidationFailed("invalid_or_expired_token", field="claim_token")
        now = self.clock.now()
        async with self.uow() as uow:
            found = await uow.chatbot.claim_draft(self.tokens.digest(claim_token), user_id, now=now)
            if found is None:
                raise ValidationFailed("invalid_or_expired_token", field="claim_token")
            await uow.commit()
        return found.draft
