"""The one translation of a visibility (domain/policy.py) into SQL. Every repository read that a person's
request makes filters through here, so what the caller may not see is simply not found. What belongs to a
consultation (messages, evidence, referrals, requests with their history and clocks) is filtered through its
consultation in the same SELECT, so such a read is safe by itself, not only because the use case read the
case first."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
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
    match visibility:
        case All():
            return true()
        case OwnedBy(user_id=user_id):
            return col(C.owner_id) == user_id
        case AssignedTo(staff_id=staff_id):
            return col(C.assignee_id) == staff_id
        case AssignedToOrUnassigned(staff_id=staff_id):
            return or_(col(C.assignee_id) == staff_id, col(C.assignee_id).is_(None))
        case InReview():
            return or_(
                col(C.id).in_(select(col(AnswerDraftRow.consultation_id)).where(_drafts_in_review())),
                col(C.id).in_(select(col(LetterRow.consultation_id)).where(_letters_in_review())),
            )
        case Nothing():
            return false()
    raise TypeError(visibility)


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
