"""The LINE use cases against in-memory fakes: how an inbox event is routed and answered, account linking
(a staff account is refused at both ends), dead-letter replay, and the retry policy every work queue uses."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import line as say
from domain.actors import Actor, Client, Role
from domain.consents import ConsentAction, ConsentRecord, Purpose, Source
from domain.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from domain.guidance import GuidanceService
from domain.knowledge_model import Desk
from domain.line_conversation import LineConversation
from domain.line_dead_letters import LineDeadLetters
from domain.line_linking import ACCOUNT_LINK_URL, LineLinking, digest
from domain.line_ports import DeadLetter, LineEvent, LinePerson
from domain.models import User
from domain.work_queue import RetryPolicy
from infra.knowledge import load_knowledge
from infra.line import load_line_texts

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
TEXTS = load_line_texts()
JA = TEXTS.voice(None)
LINKS = say.Links(home="https://madoguchi.example.jp")
LOGIN_URL = "https://madoguchi.example.jp/line/link"


class FrozenClock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


# -- in-memory repositories (the Protocols of domain/line_ports.py) ---------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.events: dict[uuid.UUID, LineEvent] = {}
        self.processed: dict[uuid.UUID, datetime] = {}

    async def pending(self, event_id: uuid.UUID) -> LineEvent | None:
        return None if event_id in self.processed else self.events.get(event_id)

    async def done(self, event_id: uuid.UUID, now: datetime) -> None:
        self.processed[event_id] = now


class People:
    def __init__(self) -> None:
        self.by_line: dict[str, LinePerson] = {}

    def _set(self, line_user_id: str, **changes: Any) -> None:
        self.by_line[line_user_id] = dataclasses.replace(self.by_line[line_user_id], **changes)

    async def seen(self, line_user_id: str, now: datetime) -> LinePerson:
        return self.by_line.setdefault(line_user_id, LinePerson(line_user_id))

    async def by_user(self, user_id: uuid.UUID) -> LinePerson | None:
        return next((p for p in self.by_line.values() if p.user_id == user_id), None)

    async def follow(self, line_user_id: str, now: datetime) -> None:
        self._set(line_user_id, unfollowed_at=None)

    async def unfollow(self, line_user_id: str, now: datetime) -> None:
        self._set(line_user_id, unfollowed_at=now, user_id=None, linked_at=None)

    async def set_language(self, line_user_id: str, language: str, now: datetime) -> None:
        self._set(line_user_id, language=None if language == "ja" else language)

    async def bind(self, line_user_id: str, user_id: uuid.UUID, now: datetime) -> None:
        for other in [p for p in self.by_line.values() if p.user_id == user_id]:
            self._set(other.line_user_id, user_id=None, linked_at=None)
        self._set(line_user_id, user_id=user_id, linked_at=now)

    async def unlink_user(self, user_id: uuid.UUID, now: datetime) -> bool:
        person = await self.by_user(user_id)
        if person is None:
            return False
        self._set(person.line_user_id, user_id=None, linked_at=None)
        return True


class Nonces:
    def __init__(self) -> None:
        self.by_digest: dict[str, tuple[uuid.UUID, datetime]] = {}

    async def add(self, digest: str, user_id: uuid.UUID, now: datetime, expires_at: datetime) -> None:
        self.by_digest = {d: v for d, v in self.by_digest.items() if v[0] != user_id}
        self.by_digest[digest] = (user_id, expires_at)

    async def consume(self, digest: str, now: datetime) -> uuid.UUID | None:
        found = self.by_digest.pop(digest, None)
        return found[0] if found is not None and found[1] > now else None


@dataclasses.dataclass
class Queued:
    purpose: str
    line_user_id: str
    messages: list[say.Message]
    reply_token: str | None
    user_id: uuid.UUID | None
    letter: DeadLetter


class Deliveries:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Queued] = {}

    async def queue(
        self,
        *,
        purpose: str,
        line_user_id: str,
        messages: Sequence[say.Message],
        now: datetime,
        reply_token: str | None = None,
        event_at: datetime | None = None,
        user_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        row_id = uuid.uuid4()
        letter = DeadLetter(row_id, purpose, "pending", 0, 0, None, now, None)
        self.rows[row_id] = Queued(purpose, line_user_id, list(messages), reply_token, user_id, letter)
        return row_id

    def kill(self, row_id: uuid.UUID, attempts: int = 3) -> None:
        row = self.rows[row_id]
        row.letter = dataclasses.replace(
            row.letter, status="dead", attempts=attempts, last_error="http_503", failed_at=NOW
        )

    async def find(self, delivery_id: uuid.UUID) -> DeadLetter | None:
        row = self.rows.get(delivery_id)
        return row.letter if row else None

    async def dead(self, limit: int) -> list[DeadLetter]:
        return [r.letter for r in self.rows.values() if r.letter.status == "dead"][:limit]

    async def requeue(self, delivery_id: uuid.UUID, now: datetime) -> DeadLetter:
        row = self.rows[delivery_id]
        row.reply_token = None
        row.letter = dataclasses.replace(
            row.letter, status="pending", attempts=0, replays=row.letter.replays + 1, failed_at=None
        )
        return row.letter


class Accounts:
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, User] = {}

    def add(self, role: Role, *, active: bool = True) -> User:
        user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex}@example.jp", role=role, password_hash=None)
        user = dataclasses.replace(user, is_active=active)
        self.by_id[user.id] = user
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return self.by_id.get(user_id)


class Consents:
    """ConsentRepository: the ledger, appended and read."""

    def __init__(self) -> None:
        self.records: list[ConsentRecord] = []

    async def add(self, *records: ConsentRecord) -> None:
        self.records.extend(records)

    async def for_user(self, user_id: uuid.UUID) -> list[ConsentRecord]:
        return [r for r in self.records if r.user_id == user_id]

    async def lock(self, user_id: uuid.UUID) -> None:
        return None


class UnitOfWork:
    """Shared in-memory state; `commits` counts the use cases that committed."""

    def __init__(self) -> None:
        self.line_inbox = Inbox()
        self.line_users = People()
        self.line_nonces = Nonces()
        self.line_deliveries = Deliveries()
        self.users = Accounts()
        self.consents = Consents()
        self.commits = 0

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1


class LinkTokens:
    def __init__(self) -> None:
        self.issued: list[str] = []

    async def issue_link_token(self, line_user_id: str) -> str:
        self.issued.append(line_user_id)
        return "LinkToken0123456789"


class NoDesks:
    async def resolve(self, codes: Sequence[str]) -> list[Desk]:
        return []


@pytest.fixture
def uow() -> UnitOfWork:
    return UnitOfWork()


@pytest.fixture
def tokens() -> LinkTokens:
    return LinkTokens()


@pytest.fixture
def conversation(uow: UnitOfWork, tokens: LinkTokens) -> LineConversation:
    knowledge = load_knowledge()
    guidance = GuidanceService(knowledge, NoDesks(), None, None, FrozenClock())  # type: ignore[arg-type]
    return LineConversation(
        lambda: uow,
        FrozenClock(),
        texts=TEXTS,
        links=LINKS,
        login_url=LOGIN_URL,
        guidance=guidance,
        knowledge=knowledge,
        link_tokens=tokens,
    )


def event(uow: UnitOfWork, kind: str, user: str | None = "U1", **payload: Any) -> uuid.UUID:
    found = LineEvent(uuid.uuid4(), kind, user, {"mode": "active", **payload}, "reply-1", NOW)
    uow.line_inbox.events[found.id] = found
    return found.id


def sent(uow: UnitOfWork) -> list[Queued]:
    return list(uow.line_deliveries.rows.values())


def consulter(user: User | None = None) -> Actor:
    user_id = user.id if user else uuid.uuid4()
    return Actor(client=Client.web, user_id=user_id, session_id=uuid.uuid4(), role=Role.consulter)


def staff(role: Role) -> Actor:
    return Actor(client=Client.staff, user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=role)


# -- conversation routing ------------------------------------------------------------------------------


async def test_a_follow_is_greeted_by_reply_and_the_event_is_processed_once(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    event_id = event(uow, "follow")
    await conversation.process(event_id)
    [greeting] = sent(uow)
    assert greeting.messages == say.greeting(LINKS, JA)
    assert (greeting.purpose, greeting.line_user_id, greeting.reply_token) == (
        "event_follow",
        "U1",
        "reply-1",
    )
    assert uow.line_inbox.processed[event_id] == NOW and uow.commits == 1

    await conversation.process(event_id)  # redelivered to the worker: already processed, nothing said twice
    assert len(sent(uow)) == 1 and uow.commits == 1


async def test_someone_who_blocked_the_bot_is_never_answered(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    await conversation.process(event(uow, "unfollow"))
    assert uow.line_users.by_line["U1"].unfollowed_at == NOW
    await conversation.process(event(uow, "message", message="text", intent="menu"))
    assert sent(uow) == []


async def test_groups_and_standby_mode_get_no_answer(uow: UnitOfWork, conversation: LineConversation) -> None:
    group = event(uow, "message", user=None, message="text", intent="menu")
    standby = LineEvent(uuid.uuid4(), "follow", "U2", {"mode": "standby"}, None, NOW)
    uow.line_inbox.events[standby.id] = standby
    await conversation.process(group)
    await conversation.process(standby.id)
    assert sent(uow) == [] and set(uow.line_inbox.processed) == {group, standby.id}
    assert uow.line_users.by_line == {}


async def test_a_language_keyword_switches_the_conversation_for_good(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    await conversation.process(event(uow, "message", message="text", intent="language", lang="en"))
    assert uow.line_users.by_line["U1"].language == "en"
    [switched] = sent(uow)
    assert switched.messages == say.language_switched(LINKS, TEXTS.voice("en"))
    assert "English" in str(switched.messages[0]["text"])

    await conversation.process(event(uow, "postback", data="lang:xx"))  # not a declared language
    assert uow.line_users.by_line["U1"].language == "en"
    assert sent(uow)[-1].messages == say.menu(LINKS, TEXTS.voice("en"))


async def test_a_sticker_gets_the_unsupported_message(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    await conversation.process(event(uow, "message", message="sticker"))
    assert sent(uow)[0].messages == say.unsupported_message(LINKS, JA)


async def test_the_chart_postback_asks_the_first_question(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    await conversation.process(event(uow, "postback", data=say.encode_menu(say.MenuItem.chart)))
    chart = load_knowledge().chart
    start = chart.node(chart.start)
    assert start is not None
    assert sent(uow)[0].messages == say.chart_question(start, [], LINKS, JA)


async def test_answers_that_no_longer_fit_the_chart_start_it_again(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    await conversation.process(event(uow, "postback", data="chart:no_such_option"))
    assert "\n".join(str(m["text"]) for m in sent(uow)[0].messages).startswith(JA("chart_restart"))


# -- account linking -----------------------------------------------------------------------------------


async def test_the_link_button_issues_a_link_token_unless_already_linked(
    uow: UnitOfWork, conversation: LineConversation, tokens: LinkTokens
) -> None:
    await conversation.process(event(uow, "postback", data=say.encode_menu(say.MenuItem.link)))
    assert tokens.issued == ["U1"]
    assert sent(uow)[0].messages == say.link_prompt(LOGIN_URL + "?linkToken=LinkToken0123456789", JA)

    await uow.line_users.bind("U1", uuid.uuid4(), NOW)
    await conversation.process(event(uow, "postback", data=say.encode_menu(say.MenuItem.link)))
    assert tokens.issued == ["U1"]  # no second token
    assert sent(uow)[-1].messages == say.link_already(JA)


async def test_a_consulter_links_with_a_nonce_once(uow: UnitOfWork, conversation: LineConversation) -> None:
    account = uow.users.add(Role.consulter)
    linking = LineLinking(lambda: uow, FrozenClock(), nonce_minutes=10)
    made = await linking.create_nonce(consulter(account), "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY")
    assert made.redirect_url.startswith(
        ACCOUNT_LINK_URL + "?linkToken=NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY&nonce="
    )
    assert made.expires_at == NOW + timedelta(minutes=10)
    assert list(uow.line_nonces.by_digest) == [digest(made.nonce)]  # only the digest is kept

    linked = event(uow, "accountLink", ok=True, nonce_digest=digest(made.nonce))
    await conversation.process(linked)
    assert uow.line_users.by_line["U1"].user_id == account.id
    assert sent(uow)[-1].messages == say.link_done(JA)
    status = await linking.status(consulter(account))
    assert (status.linked, status.linked_at, status.following) == (True, NOW, True)

    await conversation.process(event(uow, "accountLink", user="U9", ok=True, nonce_digest=digest(made.nonce)))
    assert uow.line_users.by_line["U9"].user_id is None  # a nonce binds once
    assert sent(uow)[-1].messages == say.link_failed(JA)

    await linking.unlink(consulter(account))
    assert (await linking.status(consulter(account))).linked is False
    assert uow.line_users.by_line["U1"].user_id is None


@pytest.mark.parametrize("role", [Role.consultant, Role.supervisor, Role.admin])
async def test_a_staff_account_may_not_ask_for_a_link_nonce(uow: UnitOfWork, role: Role) -> None:
    linking = LineLinking(lambda: uow, FrozenClock(), nonce_minutes=10)
    for attempt in (
        linking.create_nonce(staff(role), "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"),
        linking.status(staff(role)),
        linking.unlink(staff(role)),
    ):
        with pytest.raises(Forbidden) as refused:
            await attempt
        assert refused.value.code == "role_not_allowed"
    assert uow.line_nonces.by_digest == {} and uow.commits == 0


async def test_a_nonce_of_an_account_that_became_staff_or_was_closed_links_nothing(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    promoted = uow.users.add(Role.consultant)
    closed = uow.users.add(Role.consulter, active=False)
    for account in (promoted, closed):
        await uow.line_nonces.add(digest(f"nonce-{account.id}"), account.id, NOW, NOW + timedelta(minutes=10))
        await conversation.process(
            event(uow, "accountLink", ok=True, nonce_digest=digest(f"nonce-{account.id}"))
        )
        assert sent(uow)[-1].messages == say.link_failed(JA)
    assert uow.line_users.by_line["U1"].user_id is None


async def test_an_expired_nonce_or_a_failed_link_links_nothing(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    account = uow.users.add(Role.consulter)
    await uow.line_nonces.add(
        digest("old"), account.id, NOW - timedelta(minutes=20), NOW - timedelta(minutes=10)
    )
    await conversation.process(event(uow, "accountLink", ok=True, nonce_digest=digest("old")))
    await uow.line_nonces.add(digest("new"), account.id, NOW, NOW + timedelta(minutes=10))
    await conversation.process(event(uow, "accountLink", ok=False, nonce_digest=digest("new")))
    assert [q.messages for q in sent(uow)] == [say.link_failed(JA)] * 2
    assert uow.line_users.by_line["U1"].user_id is None


async def test_a_link_token_that_is_not_one_is_refused(uow: UnitOfWork) -> None:
    linking = LineLinking(lambda: uow, FrozenClock(), nonce_minutes=10)
    with pytest.raises(ValidationFailed) as refused:
        await linking.create_nonce(consulter(), "a" * 32 + "&nonce=attacker")
    assert refused.value.code == "invalid_link_token" and uow.line_nonces.by_digest == {}


# -- notices -------------------------------------------------------------------------------------------


async def test_a_notice_goes_only_to_a_linked_following_active_consulter(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    def compose(v: say.Voice) -> list[say.Message]:
        return say.answer_published("https://madoguchi.example.jp/consultations/1", v)

    active, closed, blocked = (uow.users.add(Role.consulter, active=a) for a in (True, False, True))
    for n, account in enumerate((active, closed, blocked)):
        await uow.line_users.seen(f"U{n}", NOW)
        await uow.line_users.bind(f"U{n}", account.id, NOW)
    await uow.line_users.unfollow("U2", NOW)
    queued = [
        await conversation.notice(uow, a.id, "answer_published", compose) for a in (active, closed, blocked)
    ]
    assert queued[1:] == [None, None]
    [notice] = sent(uow)
    assert (notice.line_user_id, notice.user_id, notice.reply_token) == ("U0", active.id, None)
    assert notice.messages == compose(JA)


async def test_a_notice_is_not_queued_once_line_notifications_are_withdrawn(
    uow: UnitOfWork, conversation: LineConversation
) -> None:
    account = uow.users.add(Role.consulter)
    await uow.line_users.seen("U0", NOW)
    await uow.line_users.bind("U0", account.id, NOW)
    withdrawal = ConsentRecord(
        uuid.uuid4(), account.id, Purpose.line_notifications, ConsentAction.withdrawn, Source.me, NOW
    )
    await uow.consents.add(withdrawal)

    def compose(v: say.Voice) -> list[say.Message]:
        return say.answer_published("https://madoguchi.example.jp/consultations/1", v)

    assert await conversation.notice(uow, account.id, "answer_published", compose) is None
    assert sent(uow) == []


# -- dead letters ----------------------------------------------------------------------------------------


async def test_an_admin_replays_a_dead_letter_once_as_a_fresh_try(uow: UnitOfWork) -> None:
    dead_id = await uow.line_deliveries.queue(
        purpose="answer_published", line_user_id="U1", messages=[], now=NOW
    )
    pending_id = await uow.line_deliveries.queue(
        purpose="event_follow", line_user_id="U1", messages=[], now=NOW
    )
    uow.line_deliveries.kill(dead_id)
    desk = LineDeadLetters(lambda: uow, FrozenClock())
    admin = staff(Role.admin)
    assert [d.id for d in await desk.newest(admin)] == [dead_id]

    replayed = await desk.replay(admin, dead_id)
    assert (replayed.status, replayed.attempts, replayed.replays, replayed.failed_at) == (
        "pending",
        0,
        1,
        None,
    )
    assert uow.commits == 1 and await desk.newest(admin) == []

    with pytest.raises(InvalidState) as again:
        await desk.replay(admin, dead_id)  # pending now: not a dead letter any more
    assert again.value.code == "not_a_dead_letter"
    with pytest.raises(InvalidState):
        await desk.replay(admin, pending_id)
    with pytest.raises(NotFound) as missing:
        await desk.replay(admin, uuid.uuid4())
    assert missing.value.code == "dead_letter_not_found" and uow.commits == 1


@pytest.mark.parametrize("role", [Role.consulter, Role.consultant, Role.supervisor, Role.legal_advisor])
async def test_only_an_admin_sees_or_replays_dead_letters(uow: UnitOfWork, role: Role) -> None:
    dead_id = await uow.line_deliveries.queue(purpose="event_follow", line_user_id="U1", messages=[], now=NOW)
    uow.line_deliveries.kill(dead_id)
    desk = LineDeadLetters(lambda: uow, FrozenClock())
    for attempt in (desk.newest(staff(role)), desk.replay(staff(role), dead_id)):
        with pytest.raises(Forbidden):
            await attempt
    assert uow.line_deliveries.rows[dead_id].letter.status == "dead" and uow.commits == 0


# -- the retry policy of every work queue ------------------------------------------------------------------


def test_the_wait_doubles_up_to_the_cap_and_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=2.0, cap_seconds=10.0)
    waits = [policy.after_failure(n) for n in (1, 2, 3, 4)]
    assert waits == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8), None]
    assert RetryPolicy(max_attempts=50, base_seconds=2.0, cap_seconds=10.0).backoff(30) == timedelta(
        seconds=10
    )


def test_a_failure_no_retry_can_mend_is_given_up_at_once_and_retry_after_is_honoured() -> None:
    policy = RetryPolicy(max_attempts=6, base_seconds=2.0, cap_seconds=600.0)
    assert policy.after_failure(1, retryable=False) is None
    assert policy.after_failure(1, retry_after=30.0) == timedelta(seconds=30)
    assert policy.after_failure(1, retry_after=0.5) == timedelta(seconds=2)  # never sooner than the backoff
    assert policy.after_failure(1, retry_after=86400.0) == timedelta(hours=1)  # a server asking for a day
