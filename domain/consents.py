"""The consent ledger (issue 17 §4): every consent a person gives or withdraws is one appended record, never
changed or removed. What a person has consented to *now* is read from the whole history, so the ledger also
says what they had consented to at any earlier time.

Purposes:
- `terms` and `sensitive_data`: given at intake, one record per consultation; they cannot be withdrawn here
  (the centre cannot handle a case without them: withdrawing a consultation, or erasure, is the way out).
- `desk_sharing`: given when the consulter consents to a referral, per referral and desk. A withdrawal names
  the referral (that referral only) or the desk (every referral to that desk consented before it).
- `line_notifications`: linking a LINE account is the opt-in; a withdrawal stops every push notice until the
  person grants it again.
- `research`: offered, never assumed: only an explicit grant counts.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.actors import Actor
from domain.errors import InvalidState, NotFound, ValidationFailed
from domain.policy import ensure_consulter
from domain.ports import Clock


class Purpose(enum.StrEnum):
    terms = "terms"
    sensitive_data = "sensitive_data"
    desk_sharing = "desk_sharing"
    line_notifications = "line_notifications"
    research = "research"


class ConsentAction(enum.StrEnum):
    granted = "granted"
    withdrawn = "withdrawn"


class Source(enum.StrEnum):
    intake = "intake"  # the intake form
    referral = "referral"  # consenting to a proposed referral
    me = "me"  # the person's own consent page


# Japanese first, English beside it: what the person's consent page shows.
LABELS: dict[Purpose, tuple[str, str]] = {
    Purpose.terms: ("利用規約への同意", "Terms of use"),
    Purpose.sensitive_data: ("要配慮個人情報の取扱いへの同意", "Handling of sensitive personal data"),
    Purpose.desk_sharing: ("紹介先の窓口への情報提供の同意", "Sharing with a referred desk"),
    Purpose.line_notifications: ("LINE でのお知らせの受け取り", "Notifications on LINE"),
    Purpose.research: ("統計・研究への利用の同意", "Use for statistics and research"),
}
ACTION_LABELS: dict[ConsentAction, tuple[str, str]] = {
    ConsentAction.granted: ("同意", "Given"),
    ConsentAction.withdrawn: ("撤回", "Withdrawn"),
}
WITHDRAWABLE = frozenset({Purpose.desk_sharing, Purpose.line_notifications, Purpose.research})
GRANTABLE_ON_PAGE = frozenset({Purpose.line_notifications, Purpose.research})


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    purpose: Purpose
    action: ConsentAction
    source: Source
    recorded_at: datetime
    terms_version: str | None = None
    consultation_id: uuid.UUID | None = None
    referral_id: uuid.UUID | None = None
    desk_code: str | None = None

    @property
    def label(self) -> tuple[str, str]:
        return LABELS[self.purpose]


class ConsentRepository(Protocol):
    """Append and read: there is deliberately no update and no delete."""

    async def add(self, *records: ConsentRecord) -> None:
        """Appends the records, in one write."""
        ...

    async def for_user(self, user_id: uuid.UUID) -> list[ConsentRecord]: ...

    async def lock(self, user_id: uuid.UUID) -> None:
        """Hold the person's ledger until the unit of work ends: a withdrawal and a use that checks the ledger
        (making a referral) take it before they read, so neither decides on a ledger the other is changing."""
        ...


# -- what the ledger allows (pure functions over one person's records, oldest first) ----------------------


def may_notify_by_line(records: Sequence[ConsentRecord]) -> bool:
    """Whether a LINE push notice may be queued for this person: the latest LINE record decides; with none,
    the link itself is the opt-in."""
    latest = [r for r in records if r.purpose is Purpose.line_notifications]
    return not latest or latest[-1].action is ConsentAction.granted


def may_share_with_desk(records: Sequence[ConsentRecord], referral_id: uuid.UUID, desk_code: str) -> bool:
    """Whether this referral's information may go to its desk: the consulter consented to this referral and
    withdrew neither that consent nor, afterwards, every sharing with the desk."""
    grants = [
        r
        for r in records
        if r.purpose is Purpose.desk_sharing
        and r.action is ConsentAction.granted
        and r.referral_id == referral_id
    ]
    if not grants:
        return False
    granted_at = grants[-1].recorded_at
    for r in records:
        if r.purpose is not Purpose.desk_sharing or r.action is not ConsentAction.withdrawn:
            continue
        if r.recorded_at < granted_at:
            continue
        if r.referral_id == referral_id or (r.referral_id is None and r.desk_code == desk_code):
            return False
    return True


def may_use_for_research(records: Sequence[ConsentRecord]) -> bool:
    latest = [r for r in records if r.purpose is Purpose.research]
    return bool(latest) and latest[-1].action is ConsentAction.granted


def is_active(record: ConsentRecord, records: Sequence[ConsentRecord]) -> bool:
    """Whether a grant still holds (a withdrawal record is never active)."""
    if record.action is not ConsentAction.granted:
        return False
    if record.purpose is Purpose.desk_sharing:
        assert record.referral_id is not None and record.desk_code is not None
        grants = [
            r
            for r in records
            if r.purpose is Purpose.desk_sharing
            and r.action is ConsentAction.granted
            and r.referral_id == record.referral_id
        ]
        return grants[-1].id == record.id and may_share_with_desk(
            records, record.referral_id, record.desk_code
        )
    if record.purpose in (Purpose.line_notifications, Purpose.research):
        same = [r for r in records if r.purpose is record.purpose]
        return same[-1].id == record.id
    return True  # terms and sensitive data hold for their consultation


def _record(
    user_id: uuid.UUID, purpose: Purpose, action: ConsentAction, source: Source, at: datetime, **kw: Any
) -> ConsentRecord:
    return ConsentRecord(uuid.uuid4(), user_id, purpose, action, source, at, **kw)


async def record_intake(
    uow: Any, user_id: uuid.UUID, consultation_id: uuid.UUID, terms_version: str, at: datetime
) -> None:
    """The two consents intake requires, recorded in the intake's own unit of work."""
    repo: ConsentRepository = uow.consents
    await repo.add(
        _record(
            user_id,
            Purpose.terms,
            ConsentAction.granted,
            Source.intake,
            at,
            terms_version=terms_version,
            consultation_id=consultation_id,
        ),
        _record(
            user_id,
            Purpose.sensitive_data,
            ConsentAction.granted,
            Source.intake,
            at,
            consultation_id=consultation_id,
        ),
    )


async def record_referral_consent(
    uow: Any,
    user_id: uuid.UUID,
    consultation_id: uuid.UUID,
    referral_id: uuid.UUID,
    desk_code: str,
    at: datetime,
) -> None:
    repo: ConsentRepository = uow.consents
    await repo.add(
        _record(
            user_id,
            Purpose.desk_sharing,
            ConsentAction.granted,
            Source.referral,
            at,
            consultation_id=consultation_id,
            referral_id=referral_id,
            desk_code=desk_code,
        )
    )


async def ensure_may_share(uow: Any, owner_id: uuid.UUID, referral_id: uuid.UUID, desk_code: str) -> None:
    """Called before a referral is made: a withdrawn consent stops the sharing (409 consent_withdrawn). Under
    the ledger's lock: a withdrawal committed before this check is seen, and one that comes later waits for the
    referral's commit (so it is recorded after the sharing it could no longer stop)."""
    repo: ConsentRepository = uow.consents
    await repo.lock(owner_id)
    if not may_share_with_desk(await repo.for_user(owner_id), referral_id, desk_code):
        raise InvalidState("consent_withdrawn")


class ConsentService:
    def __init__(self, uow: Any, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    async def of_person(self, actor: Actor) -> list[tuple[ConsentRecord, bool]]:
        """The person's own records, newest first, each with whether it still holds."""
        user_id = actor.require_user_id()
        async with self.uow() as uow:
            records = await uow.consents.for_user(user_id)
        return [(r, is_active(r, records)) for r in reversed(records)]

    async def grant(self, actor: Actor, purpose: Purpose) -> ConsentRecord:
        ensure_consulter(actor)
        if purpose not in GRANTABLE_ON_PAGE:
            raise ValidationFailed("consent_not_grantable", field="purpose")
        user_id = actor.require_user_id()
        async with self.uow() as uow:
            await uow.consents.lock(user_id)  # two grants at once: the second sees the first, and refuses
            records = await uow.consents.for_user(user_id)
            same = [r for r in records if r.purpose is purpose]
            if same and same[-1].action is ConsentAction.granted:
                raise InvalidState("consent_already_given")
            record = _record(user_id, purpose, ConsentAction.granted, Source.me, self.clock.now())
            await uow.consents.add(record)
            await uow.commit()
        return record

    async def withdraw(
        self,
        actor: Actor,
        purpose: Purpose,
        *,
        referral_id: uuid.UUID | None = None,
        desk_code: str | None = None,
    ) -> ConsentRecord:
        """Appends a withdrawal. A desk-sharing withdrawal names one referral (or the desk) the person
        consented to; anything else of theirs, or anybody else's, is 404."""
        ensure_consulter(actor)
        if purpose not in WITHDRAWABLE:
            raise InvalidState("consent_not_withdrawable")
        if purpose is Purpose.desk_sharing:
            if (referral_id is None) == (desk_code is None):
                raise ValidationFailed("referral_or_desk_required", field="referral_id")
        elif referral_id is not None or desk_code is not None:
            raise ValidationFailed("referral_or_desk_not_allowed", field="referral_id")
        user_id = actor.require_user_id()
        now = self.clock.now()
        async with self.uow() as uow:
            await uow.consents.lock(user_id)  # see ensure_may_share: no referral is made after this commits
            records = await uow.consents.for_user(user_id)
            extra: dict[str, Any] = {}
            if purpose is Purpose.desk_sharing:
                grants = [
                    r
                    for r in records
                    if r.purpose is Purpose.desk_sharing
                    and r.action is ConsentAction.granted
                    and (r.referral_id == referral_id if referral_id else r.desk_code == desk_code)
                ]
                if not grants:
                    raise NotFound("consent_not_found")
                if not any(is_active(g, records) for g in grants):
                    raise InvalidState("consent_not_active")
                extra = {"referral_id": referral_id, "desk_code": desk_code or grants[-1].desk_code}
                if referral_id is not None:
                    extra["consultation_id"] = grants[-1].consultation_id
            elif purpose is Purpose.line_notifications and not may_notify_by_line(records):
                raise InvalidState("consent_not_active")
            elif purpose is Purpose.research and not may_use_for_research(records):
                raise InvalidState("consent_not_active")
            record = _record(user_id, purpose, ConsentAction.withdrawn, Source.me, now, **extra)
            await uow.consents.add(record)
            await uow.commit()
        return record
