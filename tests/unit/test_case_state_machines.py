"""The consultation, answer/review and referral use cases against in-memory fakes of their ports
(tests/unit/fakes.py): every transition each state machine allows, the ones it refuses, and that a refused
step changes nothing. No database: the whole module runs in well under a second."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cache
from typing import Any

import pytest

from domain.actors import Actor, Client, Role
from domain.answers import AnswerService, DraftState
from domain.consultations import (
    Consultation,
    ConsultationPolicy,
    ConsultationService,
    Intake,
    MessageKind,
    Status,
)
from domain.errors import Forbidden, InvalidState, NotFound, PreconditionFailed, RateLimited, ValidationFailed
from domain.referrals import ReferralAction, ReferralService, ReferralState
from tests.clock import DEFAULT_INSTANT, PinnedClock
from tests.unit.fakes import FakeAnswers, FakeDesks, FakeManual, NoFiles, Store


@cache
def _reference() -> tuple[Any, Any, Any, Any]:
    """The reference data the service runs on in production (YAML, no database), loaded once per run."""
    from infra.calendar import JapaneseHolidays
    from infra.knowledge import load_knowledge
    from infra.quality_loader import load_review_rules
    from infra.triage_loader import load_triage_engine

    return load_knowledge(), load_triage_engine(), JapaneseHolidays(), load_review_rules()


class World:
    """The three services over one fake store, with people of each role."""

    def __init__(self) -> None:
        knowledge, triage, holidays, rules = _reference()
        self.clock = PinnedClock(DEFAULT_INSTANT)
        self.store = Store()
        self.desks = FakeDesks(knowledge.desks)
        self.consultations = ConsultationService(
            self.store, self.clock, knowledge, triage, holidays, ConsultationPolicy(), NoFiles(),
            self.desks,  # type: ignore[arg-type]  # the service takes the concrete DeskDirectory, not a port
        )  # fmt: skip
        self.answers = AnswerService(self.consultations, rules, FakeManual())
        self.referrals = ReferralService(self.consultations, self.desks)

    def person(self, role: Role) -> Actor:
        user_id = uuid.uuid4()
        if role.is_staff:
            self.store.state.staff[user_id] = role
        client = Client.staff if role.is_staff else Client.web
        return Actor(client=client, user_id=user_id, session_id=uuid.uuid4(), role=role, mfa=role.is_staff)

    async def open(self, owner: Actor, **overrides: Any) -> Consultation:
        fields: dict[str, Any] = {
            "channel": "web",
            "relation": "self",
            "title": "SNSで悪口を書かれています",
            "narrative": "匿名のアカウントに繰り返し悪口を投稿されています。削除してほしいです。",
            "categories": ["RIGHTS.INSULT"],
            "desired_outcomes": ["delete"],
            "platforms": ["x"],
            "terms_version": ConsultationPolicy().terms_version,
            "agreed_to_terms": True,
            "agreed_to_sensitive_data": True,
            "victim_is_minor": False,
        }
        fields.update(overrides)
        return (await self.consultations.open(owner, Intake(**fields))).consultation

    def stored(self, c: Consultation) -> Consultation:
        return self.store.state.consultations[c.id]


@pytest.fixture
def world() -> World:
    return World()


# -- consultations ---------------------------------------------------------------------------------


async def test_a_consultation_runs_submitted_in_progress_answered_closed_and_reopens(world: World) -> None:
    owner, consultant = world.person(Role.consulter), world.person(Role.consultant)
    c = await world.open(owner)
    assert (c.status, c.version) == (Status.submitted, 1)
    c = await world.consultations.assign(consultant, c.id, consultant.require_user_id(), expected_version=1)
    assert (c.status, c.assignee_id, c.version) == (Status.in_progress, consultant.user_id, 2)
    draft = await world.answers.create(consultant, c.id, "ご案内します。", ["evidence"], None, False)
    assert draft.needs_review is False
    await world.answers.publish(consultant, c.id, draft.id)
    assert world.stored(c).status is Status.answered
    closed = await world.consultations.close(consultant, c.id, expected_version=world.stored(c).version)
    assert closed.status is Status.closed and closed.closed_at is not None
    world.clock.advance(timedelta(days=29))
    reopened = await world.consultations.reopen(owner, c.id)
    assert reopened.status is Status.in_progress and reopened.closed_at is None
    _, history = await world.consultations.history(owner, c.id)
    assert [(t.from_status, t.to_status) for t in history] == [
        (None, Status.submitted),
        (Status.submitted, Status.in_progress),
        (Status.in_progress, Status.answered),
        (Status.answered, Status.closed),
        (Status.closed, Status.in_progress),
    ]
    kinds = [e.kind for e in world.store.state.outbox]
    assert kinds == ["mail.answer_published", "line.answer_published"]


async def test_refused_consultation_transitions_change_nothing(world: World) -> None:
    owner, consultant = world.person(Role.consulter), world.person(Role.consultant)
    c = await world.open(owner)
    with pytest.raises(InvalidState) as refused:
        await world.consultations.close(world.person(Role.supervisor), c.id, expected_version=1)
    assert refused.value.extra == {"from_status": "submitted", "to_status": "closed"}
    with pytest.raises(InvalidState):
        await world.consultations.reopen(owner, c.id)  # never closed
    with pytest.raises(PreconditionFailed):
        await world.consultations.assign(consultant, c.id, consultant.require_user_id(), expected_version=7)
    assert world.stored(c).version == 1 and world.stored(c).status is Status.submitted
    await world.consultations.withdraw(owner, c.id)
    for step in (
        world.consultations.withdraw(owner, c.id),
        world.consultations.assign(consultant, c.id, consultant.require_user_id(), expected_version=None),
        world.consultations.post_message(owner, c.id, "追記です", None),
    ):
        with pytest.raises(InvalidState):
            await step
    assert world.stored(c).status is Status.withdrawn
    assert [t.to_status for t in world.store.state.transitions] == [Status.submitted, Status.withdrawn]


async def test_the_reopen_window_ends(world: World) -> None:
    owner, supervisor = world.person(Role.consulter), world.person(Role.supervisor)
    c = await world.open(owner)
    await world.consultations.assign(supervisor, c.id, supervisor.require_user_id(), expected_version=1)
    draft = await world.answers.create(supervisor, c.id, "ご案内します。", [], None, False)
    await world.answers.publish(supervisor, c.id, draft.id)
    await world.consultations.close(supervisor, c.id, expected_version=None)
    world.clock.advance(ConsultationPolicy().reopen_window + timedelta(minutes=1))
    with pytest.raises(InvalidState) as refused:
        await world.consultations.reopen(owner, c.id)
    assert refused.value.code == "reopen_window_passed"
    assert world.stored(c).status is Status.closed


async def test_who_may_work_a_case(world: World) -> None:
    owner, other_owner = world.person(Role.consulter), world.person(Role.consulter)
    mine, theirs = world.person(Role.consultant), world.person(Role.consultant)
    c = await world.open(owner)
    with pytest.raises(NotFound):  # another consulter never learns the case exists
        await world.consultations.get(other_owner, c.id)
    with pytest.raises(Forbidden) as refused:
        await world.consultations.assign(mine, c.id, theirs.require_user_id(), expected_version=None)
    assert refused.value.code == "may_only_take_for_self"
    await world.consultations.assign(mine, c.id, mine.require_user_id(), expected_version=None)
    with pytest.raises(NotFound):  # assigned to someone else: out of the other consultant's sight
        await world.consultations.post_message(theirs, c.id, "メモ", MessageKind.note)
    with pytest.raises(ValidationFailed) as not_caseworker:
        await world.consultations.assign(
            world.person(Role.supervisor), c.id, world.person(Role.legal_advisor).require_user_id(),
            expected_version=None,
        )  # fmt: skip
    assert not_caseworker.value.code == "assignee_not_caseworker"
    with pytest.raises(ValidationFailed):  # answers go through drafts, never as a message
        await world.consultations.post_message(mine, c.id, "回答", MessageKind.answer)
    note = await world.consultations.post_message(mine, c.id, "内部メモ", MessageKind.note)
    assert [m.kind for m in await world.consultations.messages(owner, c.id)] == []
    assert [m.id for m in await world.consultations.messages(mine, c.id)] == [note.message.id]


async def test_a_followup_that_reveals_danger_makes_the_case_urgent_and_alerts_its_assignee(
    world: World,
) -> None:
    owner, consultant = world.person(Role.consulter), world.person(Role.consultant)
    c = await world.open(owner)
    assert c.urgent is False
    await world.consultations.assign(consultant, c.id, consultant.require_user_id(), expected_version=None)
    posted = await world.consultations.post_message(owner, c.id, "今から死にたいです。", None)
    assert posted.consultation.urgent is True and posted.urgency and posted.emergency_desks
    assert world.stored(c).urgent is True
    alerts = [e for e in world.store.state.outbox if e.kind == "mail.urgent_followup"]
    assert [a.payload["user_id"] for a in alerts] == [str(consultant.user_id)]


async def test_intake_is_bounded_per_hour_and_a_refused_intake_leaves_nothing(world: World) -> None:
    owner = world.person(Role.consulter)
    for _ in range(ConsultationPolicy().intake_per_hour):
        await world.open(owner)
    with pytest.raises(RateLimited):
        await world.open(owner)
    with pytest.raises(ValidationFailed) as unknown:
        await world.open(world.person(Role.consulter), categories=["NO.SUCH.CODE"])
    assert unknown.value.extra == {"field": "categories"}
    with pytest.raises(ValidationFailed) as no_consent:
        await world.open(world.person(Role.consulter), agreed_to_sensitive_data=False)
    assert no_consent.value.code == "consent_required"
    assert len(world.store.state.consultations) == ConsultationPolicy().intake_per_hour
    with pytest.raises(Forbidden):
        await world.open(world.person(Role.consultant))


# -- answers and review ----------------------------------------------------------------------------


async def _case_for_review(world: World) -> tuple[Consultation, Actor]:
    """A case whose answers the rules send to the legal advisor (the owner wants the poster identified)."""
    owner, consultant = world.person(Role.consulter), world.person(Role.consultant)
    c = await world.open(owner, categories=["RIGHTS.DEFAMATION"], desired_outcomes=["identify_poster"])
    await world.consultations.assign(consultant, c.id, consultant.require_user_id(), expected_version=None)
    return c, consultant


async def test_a_draft_that_needs_review_is_published_only_after_approval(world: World) -> None:
    c, consultant = await _case_for_review(world)
    advisor = world.person(Role.legal_advisor)
    draft = await world.answers.create(consultant, c.id, "開示請求の手順です。", ["evidence"], None, False)
    assert "disclosure" in draft.review_reasons
    with pytest.raises(InvalidState) as unreviewed:
        await world.answers.publish(consultant, c.id, draft.id)
    assert unreviewed.value.code == "review_required"
    await world.answers.submit(consultant, c.id, draft.id)
    assert [e.draft.id for e in await world.answers.queue(advisor)] == [draft.id]
    with pytest.raises(InvalidState):  # waiting for the advisor: not editable, not publishable
        await world.answers.revise(consultant, c.id, draft.id, "書き直し", [], None)
    with pytest.raises(ValidationFailed):  # a return without advice says nothing to the author
        await world.answers.decide(advisor, draft.id, False, " ")
    returned = await world.answers.decide(advisor, draft.id, False, "根拠条文を添えてください")
    assert returned.state is DraftState.returned
    revised = await world.answers.revise(consultant, c.id, draft.id, "第5条に基づく手順です。", [], None)
    assert (revised.state, revised.latest.number) == (DraftState.draft, 2)
    await world.answers.submit(consultant, c.id, draft.id)
    approved = await world.answers.decide(advisor, draft.id, True, None)
    assert [r.version_number for r in approved.reviews] == [1, 2]
    published = await world.answers.publish(consultant, c.id, draft.id)
    assert published.state is DraftState.published and published.message_id is not None
    assert world.stored(c).status is Status.answered
    thread = world.store.state.messages
    assert [(m.kind, m.body) for m in thread] == [(MessageKind.answer, "第5条に基づく手順です。")]
    with pytest.raises(InvalidState):  # published once
        await world.answers.publish(consultant, c.id, draft.id)
    with pytest.raises(NotFound):  # no longer waiting: the advisor cannot decide on it again
        await world.answers.decide(advisor, draft.id, True, None)


async def test_a_draft_id_from_another_consultation_is_refused(world: World) -> None:
    """The author may work both cases, yet a draft is reachable only through its own consultation."""
    owner, supervisor = world.person(Role.consulter), world.person(Role.supervisor)
    first, second = await world.open(owner), await world.open(owner)
    for c in (first, second):
        await world.consultations.assign(
            supervisor, c.id, supervisor.require_user_id(), expected_version=None
        )
    draft = await world.answers.create(supervisor, first.id, "一件目への回答", [], None, False)
    before = world.stored(second).version
    for step in (
        world.answers.get(supervisor, second.id, draft.id),
        world.answers.revise(supervisor, second.id, draft.id, "二件目に流用", [], None),
        world.answers.submit(supervisor, second.id, draft.id),
        world.answers.publish(supervisor, second.id, draft.id),
    ):
        with pytest.raises(NotFound) as refused:
            await step
        assert refused.value.code == "draft_not_found"
    assert world.store.state.messages == []  # nothing was published to either consulter
    assert world.stored(second).status is Status.in_progress and world.stored(second).version == before
    assert world.store.state.drafts[draft.id].state is DraftState.draft
    assert await world.answers.list_for(supervisor, second.id) == []


async def test_only_the_legal_advisor_reviews_and_only_a_worker_of_the_case_drafts(world: World) -> None:
    c, consultant = await _case_for_review(world)
    draft = await world.answers.create(consultant, c.id, "回答案", [], None, False)
    await world.answers.submit(consultant, c.id, draft.id)
    for role in (Role.consultant, Role.supervisor, Role.consulter, Role.admin):
        with pytest.raises(Forbidden):
            await world.answers.decide(world.person(role), draft.id, True, None)
    with pytest.raises(NotFound):  # another consultant: the assigned case is out of their sight
        await world.answers.create(world.person(Role.consultant), c.id, "横から", [], None, False)
    with pytest.raises(ValidationFailed):
        await world.answers.create(consultant, c.id, "回答", ["no-such-section"], None, False)
    assert world.store.state.drafts[draft.id].state is DraftState.awaiting_review


async def test_a_stale_draft_write_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, supervisor = world.person(Role.consulter), world.person(Role.supervisor)
    c = await world.open(owner)
    await world.consultations.assign(supervisor, c.id, supervisor.require_user_id(), expected_version=None)
    draft = await world.answers.create(supervisor, c.id, "回答案", [], None, False)
    read = FakeAnswers.get

    async def read_then_someone_else_saves(self: FakeAnswers, draft_id: uuid.UUID, visibility: Any) -> Any:
        found = await read(self, draft_id, visibility)
        self.s.drafts[draft_id].version += 1  # another request saved the draft after this one read it
        return found

    monkeypatch.setattr(FakeAnswers, "get", read_then_someone_else_saves)
    with pytest.raises(PreconditionFailed):
        await world.answers.submit(supervisor, c.id, draft.id)
    assert world.store.state.drafts[draft.id].state is DraftState.draft
    assert [e.action for e in world.store.state.audit if e.action.startswith("answer.")] == []


# -- referrals -------------------------------------------------------------------------------------


async def test_a_referral_runs_proposed_consented_made_closed(world: World) -> None:
    owner, consultant = world.person(Role.consulter), world.person(Role.consultant)
    c = await world.open(owner)
    await world.consultations.assign(consultant, c.id, consultant.require_user_id(), expected_version=None)
    referral, desk = await world.referrals.propose(consultant, c.id, "houterasu", "弁護士への相談を")
    assert (referral.state, desk.code) == (ReferralState.proposed, "houterasu")
    with pytest.raises(Forbidden):  # consent is the consulter's
        await world.referrals.act(consultant, c.id, referral.id, ReferralAction.consent)
    with pytest.raises(InvalidState):  # not made before consent
        await world.referrals.act(consultant, c.id, referral.id, ReferralAction.make)
    for who, action in (
        (owner, ReferralAction.consent),
        (consultant, ReferralAction.make),
        (consultant, ReferralAction.close),
    ):
        await world.referrals.act(who, c.id, referral.id, action)
    events = world.store.state.referral_events
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, ReferralState.proposed),
        (ReferralState.proposed, ReferralState.consented),
        (ReferralState.consented, ReferralState.made),
        (ReferralState.made, ReferralState.closed),
    ]
    assert [e.actor_id for e in events] == [consultant.user_id, owner.user_id, *[consultant.user_id] * 2]
    for action in ReferralAction:  # closed is final
        with pytest.raises((InvalidState, Forbidden)):
            await world.referrals.act(owner if action in ("consent", "decline") else consultant, c.id,
                                      referral.id, action)  # fmt: skip
    assert len(world.store.state.referral_events) == 4


async def test_a_referral_may_be_declined_or_withdrawn_and_stays_on_its_consultation(world: World) -> None:
    owner, supervisor = world.person(Role.consulter), world.person(Role.supervisor)
    c, other = await world.open(owner), await world.open(world.person(Role.consulter))
    declined, _ = await world.referrals.propose(supervisor, c.id, "houterasu", "理由")
    withdrawn, _ = await world.referrals.propose(supervisor, c.id, "houterasu", "理由")
    await world.referrals.act(owner, c.id, declined.id, ReferralAction.decline)
    await world.referrals.act(supervisor, c.id, withdrawn.id, ReferralAction.withdraw)
    with pytest.raises(InvalidState):
        await world.referrals.act(owner, c.id, declined.id, ReferralAction.consent)
    with pytest.raises(NotFound):  # a referral id under another consultation
        await world.referrals.act(supervisor, other.id, withdrawn.id, ReferralAction.make)
    with pytest.raises(ValidationFailed):
        await world.referrals.propose(supervisor, c.id, "no-such-desk", "理由")
    states = {r.id: r.state for r in world.store.state.referrals.values()}
    assert states == {declined.id: ReferralState.declined, withdrawn.id: ReferralState.withdrawn}
    await world.consultations.withdraw(owner, c.id)
    with pytest.raises(InvalidState):  # an ended consultation takes no new referral
        await world.referrals.propose(supervisor, c.id, "houterasu", "理由")
