"""The LINE conversation as use cases: what the bot answers to each event of the inbox, and the notices it
queues for linked consulters. What the messages say is domain/line.py; sending them is infra's work.

Every answer is queued as a delivery in the same unit of work that marks the event processed, so an event is
answered once or, if anything fails, not at all (and tried again).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from domain import line as say
from domain.chart import InvalidChartAnswer
from domain.consents import may_notify_by_line
from domain.guidance import GuidanceService
from domain.knowledge_model import Desk, Knowledge
from domain.line_linking import LineLinking
from domain.line_ports import (
    LineEvent,
    LinePerson,
    LineRepositories,
    LineUnitOfWorkFactory,
    LinkTokens,
)
from domain.ports import Clock

Messages = list[say.Message]


class LineConversation:
    def __init__(
        self,
        uow: LineUnitOfWorkFactory,
        clock: Clock,
        *,
        texts: say.LineTexts,
        links: say.Links,
        login_url: str,
        guidance: GuidanceService,
        knowledge: Knowledge,
        link_tokens: LinkTokens,
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.texts = texts
        self.links = links
        self.login_url = login_url
        self.guidance = guidance
        self.knowledge = knowledge
        self.link_tokens = link_tokens

    async def process(self, event_id: uuid.UUID) -> None:
        """Answer one inbox event and mark it processed, in one transaction. Raises on any failure (nothing is
        kept; the inbox worker counts the attempt and tries again later)."""
        async with self.uow() as uow:
            event = await uow.line_inbox.pending(event_id)
            if event is None:
                return
            await self.answer(uow, event, self.clock.now())
            await uow.line_inbox.done(event_id, self.clock.now())
            await uow.commit()

    async def answer(self, repos: LineRepositories, event: LineEvent, now: datetime) -> uuid.UUID | None:
        """Route one event: update what we know of the person and queue the answer, if there is one.
        Returns the delivery queued."""
        payload = event.payload
        if event.line_user_id is None or payload.get("mode") == "standby":
            return None  # groups, rooms and standby mode: nothing to say
        users = repos.line_users
        person = await users.seen(event.line_user_id, now)
        v = self.texts.voice(person.language)
        messages: Messages = []
        following = person.following
        if event.kind == "follow":
            await users.follow(person.line_user_id, now)
            following = True
            messages = say.greeting(self.links, v)
        elif event.kind == "unfollow":
            await users.unfollow(person.line_user_id, now)
            following = False
        elif event.kind == "message":
            if payload.get("message") != "text":
                messages = say.unsupported_message(self.links, v)
            elif payload.get("intent") == "menu":
                messages = say.menu(self.links, v)
            elif payload.get("intent") == "language":
                messages = await self._switch(repos, person, str(payload.get("lang")), now)
            else:
                messages = await self._triage_reply(payload, v)
        elif event.kind == "postback":
            data = str(payload.get("data", ""))
            action = say.decode_postback(data)
            if action.kind == "language" and action.lang is not None:
                messages = await self._switch(repos, person, action.lang, now)
            else:
                messages = await self._postback(person, action, v)
        elif event.kind == "accountLink":
            linked = await LineLinking.complete(repos, person, payload, now)
            messages = say.link_done(v) if linked else say.link_failed(v)
        if not messages or not following:
            return None  # never message someone who blocked the bot
        return await repos.line_deliveries.queue(
            purpose=f"event_{event.kind}"[:32],
            line_user_id=person.line_user_id,
            messages=messages[: say.MESSAGES_MAX],
            now=now,
            reply_token=event.reply_token,
            event_at=event.event_at,
        )

    async def _switch(
        self, repos: LineRepositories, person: LinePerson, lang: str, now: datetime
    ) -> Messages:
        """Speak `lang` with this person from now on (a language the texts do not declare: the menu, unchanged)."""
        if not self.texts.speaks(lang):
            return say.menu(self.links, self.texts.voice(person.language))
        await repos.line_users.set_language(person.line_user_id, lang, now)
        return say.language_switched(self.links, self.texts.voice(lang))

    async def _triage_reply(self, payload: Any, v: say.Voice) -> Messages:
        labels = {c.code: c.label_en if v.english_names else c.label_ja for c in self.knowledge.categories}
        desks: tuple[Desk, ...] = tuple(
            await self.guidance.desks.resolve(list(payload.get("desks", []))[:10])
        )
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

    async def _postback(self, person: LinePerson, action: say.Postback, v: say.Voice) -> Messages:
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
            if person.user_id is not None:
                return say.link_already(v)
            token = await self.link_tokens.issue_link_token(person.line_user_id)
            separator = "&" if "?" in self.login_url else "?"
            return say.link_prompt(self.login_url + separator + urlencode({"linkToken": token}), v)
        return say.menu(self.links, v)

    async def _walk(self, answers: Sequence[str], v: say.Voice) -> Messages:
        try:
            result = await self.guidance.walk_chart(list(answers))
        except InvalidChartAnswer:
            start = self.knowledge.chart.node(self.knowledge.chart.start)
            assert start is not None
            return say.chart_restart(start, self.links, v)
        if result.step.done:
            return say.chart_outcome(result.step.node, result.desks, result.guides, self.links, v)
        return say.chart_question(result.step.node, result.step.answers, self.links, v)

    async def notice(
        self,
        repos: LineRepositories,
        user_id: uuid.UUID,
        purpose: str,
        compose: Callable[[say.Voice], Messages],
    ) -> uuid.UUID | None:
        """Queue a push to a linked, following, active consulter who has not withdrawn LINE notifications, in
        the language they chose on LINE (inside the outbox row's transaction); None when there is nobody to
        tell. `notice_still_wanted` decides again when the push is sent."""
        person = await repos.line_users.by_user(user_id)
        if person is None or not person.following:
            return None
        account = await repos.users.get(user_id)
        if account is None or not account.is_active:
            return None
        if not await notice_still_wanted(repos, user_id):
            return None  # LINE notices withdrawn on the consent page (issue 17 §4)
        return await repos.line_deliveries.queue(
            purpose=purpose,
            line_user_id=person.line_user_id,
            user_id=user_id,
            messages=compose(self.texts.voice(person.language)),
            now=self.clock.now(),
        )


async def notice_still_wanted(repos: LineRepositories, user_id: uuid.UUID) -> bool:
    """Whether a notice for this account may go out now (asked when it is queued and again when it is sent, so
    a push queued before a withdrawal of LINE notifications is not sent after it)."""
    return may_notify_by_line(await repos.consents.for_user(user_id))
