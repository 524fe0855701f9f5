"""The one translation of a visibility (domain/policy.py) into SQL. Every repository read that a person's
request makes filters through here, so what the caller may not see is simply not found."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, false, or_, select, true
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
