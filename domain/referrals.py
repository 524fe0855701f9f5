"""Referrals: a consultant proposes another desk for a consultation; the consulter consents or declines;
staff record that the referral was made and close it. Every step is recorded."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.actors import Actor
from domain.consents import ensure_may_share, record_referral_consent
from domain.consultations import OPEN_STATUSES, ConsultationService, Cursor
from domain.desks import DeskDirectory
from domain.errors import InvalidState, NotFound, ValidationFailed
from domain.knowledge_model import Desk
from domain.policy import Visibility, ensure_consulter, ensure_may_work, referral_visibility
from domain.ports import ReferralUnitOfWork, UnitOfWorkFactory


class ReferralState(enum.StrEnum):
    proposed = "proposed"
    consented = "consented"
    made = "made"
    closed = "closed"
    declined = "declined"
    withdrawn = "withdrawn"


class ReferralAction(enum.StrEnum):
    consent = "consent"
    decline = "decline"
    make = "make"
    close = "close"
    withdraw = "withdraw"


# action → (who may take it, states it may start from, state it leads to)
TRANSITIONS: dict[ReferralAction, tuple[str, frozenset[ReferralState], ReferralState]] = {
    ReferralAction.consent: ("consulter", frozenset({ReferralState.proposed}), ReferralState.consented),
    ReferralAction.decline: ("consulter", frozenset({ReferralState.proposed}), ReferralState.declined),
    ReferralAction.make: ("staff", frozenset({ReferralState.consented}), ReferralState.made),
    ReferralAction.close: ("staff", frozenset({ReferralState.made}), ReferralState.closed),
    ReferralAction.withdraw: (
        "staff",
        frozenset({ReferralState.proposed, ReferralState.consented}),
        ReferralState.withdrawn,
    ),
}


@dataclass(slots=True)
class Referral:
    id: uuid.UUID
    consultation_id: uuid.UUID
    desk_code: str
    reason: str
    state: ReferralState
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReferralEvent:
    referral_id: uuid.UUID
    actor_id: uuid.UUID
    from_state: ReferralState | None
    to_state: ReferralState
    at: datetime


class ReferralRepository(Protocol):
    async def add(self, referral: Referral) -> None: ...

    async def get(
        self, consultation_id: uuid.UUID, referral_id: uuid.UUID, visibility: Visibility
    ) -> Referral | None:
        """None when the consultation is not visible (domain/policy.py referral_visibility)."""

    async def for_consultation(
        self,
        consultation_id: uuid.UUID,
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Referral]: ...

    async def set_state(self, referral: Referral, expected: ReferralState) -> bool: ...

    async def add_event(self, event: ReferralEvent) -> None: ...

    async def events(self, referral_id: uuid.UUID, visibility: Visibility) -> list[ReferralEvent]: ...


class ReferralService:
    def __init__(self, consultations: ConsultationService, desks: DeskDirectory) -> None:
        self.consultations = consultations
        self.desks = desks

    @property
    def uow(self) -> UnitOfWorkFactory[ReferralUnitOfWork]:
        return self.consultations.uow

    async def propose(
        self, actor: Actor, consultation_id: uuid.UUID, desk_code: str, reason: str
    ) -> tuple[Referral, Desk]:
        now = self.consultations.clock.now()
        desks = await self.desks.resolve([desk_code])
        if not desks:
            raise ValidationFailed("unknown_code", field="desk_code")
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            ensure_may_work(actor, c)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            referral = Referral(
                uuid.uuid4(),
                c.id,
                desk_code,
                reason,
                ReferralState.proposed,
                actor.require_user_id(),
                now,
                now,
            )
            await uow.referrals.add(referral)
            await uow.referrals.add_event(
                ReferralEvent(referral.id, referral.created_by, None, referral.state, now)
            )
            await uow.commit()
        return referral, desks[0]

    async def list_for(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[tuple[Referral, Desk | None]]:
        """Oldest first, `limit` after the cursor, each with its desk's current details."""
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            referrals = await uow.referrals.for_consultation(
                c.id, referral_visibility(actor), after=after, limit=limit
            )
        desks = {d.code: d for d in await self.desks.resolve([r.desk_code for r in referrals])}
        return [(r, desks.get(r.desk_code)) for r in referrals]

    async def act(
        self, actor: Actor, consultation_id: uuid.UUID, referral_id: uuid.UUID, action: ReferralAction
    ) -> tuple[Referral, Desk | None]:
        who, sources, target = TRANSITIONS[action]
        now = self.consultations.clock.now()
        async with self.uow() as uow:
            c = await self.consultations.load_visible(uow, actor, consultation_id)
            if who == "consulter":
                ensure_consulter(actor)
            else:
                ensure_may_work(actor, c)
            referral = await uow.referrals.get(c.id, referral_id, referral_visibility(actor))
            if referral is None:
                raise NotFound("referral_not_found")
            if referral.state not in sources:
                raise InvalidState(
                    "invalid_transition", from_status=referral.state.value, to_status=target.value
                )
            if action is ReferralAction.make:
                # Sharing with the desk needs the consulter's consent to this referral, not withdrawn since.
                await ensure_may_share(uow, c.owner_id, referral.id, referral.desk_code)
            previous = referral.state
            referral.state, referral.updated_at = target, now
            if not await uow.referrals.set_state(referral, previous):
                raise InvalidState("invalid_transition", from_status=previous.value, to_status=target.value)
            await uow.referrals.add_event(
                ReferralEvent(referral.id, actor.require_user_id(), previous, target, now)
            )
            if action is ReferralAction.consent:
                await record_referral_consent(uow, c.owner_id, c.id, referral.id, referral.desk_code, now)
            await uow.commit()
        desks = await self.desks.resolve([referral.desk_code])
        return referral, (desks[0] if desks else None)
