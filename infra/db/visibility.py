"""The one translation of a visibility (domain/policy.py) into SQL. Every repository read that a person's
request makes filters through here, so what the caller may not see is simply not found. What belongs to a
consultation (messages, evidence, referrals, requests with their history and clocks) is filtered through its
consultation in the same SELECT, so such a read is safe by itself, not only because the use case read the
case first."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, exists, false, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import col

from domain.answers import DraftState
from domain.letters import LetterState
from domain.policy import All, AssignedTo, AssignedToOrUnassigned, InReview, Nothing, OwnedBy, Visibility
from infra.db.case_keys import shredded
from infra.db.tables import ConsultationRow
from infra.db.tables_letters import LetterRow
from infra.db.tables_quality import AnswerDraftRow

C = ConsultationRow
T = TypeVar("T")


# What waits for review is reached without its case's row (the advisor's queues), so a shredded case is
# left out here; the case reads leave it out with the case's key (infra/db/consultations.NOT_SHREDDED).
def _drafts_in_review() -> ColumnElement[bool]:
    return and_(
        col(AnswerDraftRow.state) == DraftState.awaiting_review.value,
        ~shredded(col(AnswerDraftRow.consultation_id)),
    )


def _letters_in_review() -> ColumnElement[bool]:
    return and_(
        col(LetterRow.state) == LetterState.awaiting_review.value, ~shredded(col(LetterRow.consultation_id))
    )


def consultations(visibility: Visibility) -> ColumnElement[bool]:
    """A WHERE clause on consultation rows."""
    return _consultations(type(visibility), viewer(visibility))


VIEWER = "viewer"


def consultations_of_kind(kind: type[Visibility]) -> ColumnElement[bool]:
    """The same WHERE clause for every visibility of one kind, the person it is for left as the required bound
    parameter `viewer`: for a statement built once and run with `viewer_parameter(visibility)`. Run without
    that parameter, such a statement fails; it never falls back to anyone's rows."""
    return _consultations(kind, bindparam(VIEWER, required=True))


def per_kind(build: Callable[[type[Visibility]], T]) -> Callable[[Visibility], T]:
    """A statement built once for each kind of visibility (`build(kind)`, its clause from
    `consultations_of_kind`) and returned for any visibility of that kind, to be run with
    `viewer_parameter(visibility)`: building a statement per request costs more CPU than running it."""
    built: dict[type[Visibility], T] = {}

    def of(visibility: Visibility) -> T:
        kind = type(visibility)
        if kind not in built:
            built[kind] = build(kind)
        return built[kind]

    return of


def viewer(visibility: Visibility) -> uuid.UUID | None:
    """The person a visibility is decided for, where its rule names one."""
    match visibility:
        case OwnedBy(user_id=user_id):
            return user_id
        case AssignedTo(staff_id=staff_id) | AssignedToOrUnassigned(staff_id=staff_id):
            return staff_id
    return None


def viewer_parameter(visibility: Visibility) -> dict[str, uuid.UUID]:
    person = viewer(visibility)
    return {} if person is None else {VIEWER: person}


def _consultations(
    kind: type[Visibility], person: uuid.UUID | BindParameter[Any] | None
) -> ColumnElement[bool]:
    """The one translation: `person` is the viewer's id, or a parameter that will carry it."""
    if kind is All:
        return true()
    if kind in (OwnedBy, AssignedTo, AssignedToOrUnassigned) and person is None:
        raise TypeError(f"{kind.__name__} names a person")
    if kind is OwnedBy:
        return col(C.owner_id) == person
    if kind is AssignedTo:
        return col(C.assignee_id) == person
    if kind is AssignedToOrUnassigned:
        return or_(col(C.assignee_id) == person, col(C.assignee_id).is_(None))
    if kind is InReview:
        return or_(
            col(C.id).in_(select(col(AnswerDraftRow.consultation_id)).where(_drafts_in_review())),
            col(C.id).in_(select(col(LetterRow.consultation_id)).where(_letters_in_review())),
        )
    if kind is Nothing:
        return false()
    raise TypeError(kind)


def through_consultation(visibility: Visibility, consultation_id: uuid.UUID) -> ColumnElement[bool]:
    """A WHERE clause on the rows of something that belongs to a consultation (its `consultation_id`
    column, as the table model declares it): visible with the consultation."""
    match visibility:
        case All():
            return true()
        case Nothing():
            return false()
    return col(consultation_id).in_(select(col(C.id)).where(consultations(visibility)))


def of_consultation(visibility: Visibility, consultation_id: uuid.UUID) -> ColumnElement[bool]:
    """A WHERE clause for a read of one consultation's own rows (its messages, evidence items, referrals):
    true when that consultation is visible. An EXISTS on the case's primary key, folded into the read's own
    SELECT (no statement more), and cheaper than `through_consultation`'s IN over every case the actor
    sees (for a consultant, every unassigned case)."""
    match visibility:
        case All():
            return true()
        case Nothing():
            return false()
    return exists(
        select(col(C.id)).where(col(C.id) == consultation_id, consultations(visibility)).correlate(None)
    )


_HOME = aliased(C)  # the consultation a carried-over row belongs to, beside the case it is read through


def through_case(visibility: Visibility, column: uuid.UUID, case_id: uuid.UUID) -> ColumnElement[bool]:
    """A WHERE clause on the rows of case `case_id` and of the earlier consultations of the same person it
    follows (requests and clocks carry over, domain/requests.py): visible when `case_id` is, whoever works
    the earlier case. `column` is the rows' `consultation_id`. A row of another person's case is never
    reached this way, whatever ids the caller names."""
    match visibility:
        case All():
            return true()
        case Nothing():
            return false()
    owner = (
        select(col(C.owner_id))
        .where(col(C.id) == case_id, consultations(visibility))
        .correlate(None)
        .scalar_subquery()
    )
    same_person = select(col(_HOME.id)).where(col(_HOME.owner_id) == owner).correlate(None)
    return col(column).in_(same_person)


def answer_drafts(visibility: Visibility) -> ColumnElement[bool]:
    if isinstance(visibility, InReview):
        return _drafts_in_review()
    return through_consultation(visibility, AnswerDraftRow.consultation_id)


def letters(visibility: Visibility) -> ColumnElement[bool]:
    if isinstance(visibility, InReview):
        return _letters_in_review()
    return through_consultation(visibility, LetterRow.consultation_id)


def everything_or_nothing(visibility: Visibility) -> ColumnElement[bool]:
    """For what has no owner or assignee (the audit trail): All or Nothing, anything else is a mistake."""
    match visibility:
        case All():
            return true()
        case Nothing():
            return false()
    raise TypeError(visibility)
