"""Bodies for requests (削除依頼・開示請求 …), their clocks, clock facts and consultation links."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool
from pydantic.config import JsonDict

from api.schemas.common import Day, Input, Moment, Output, Timestamp
from api.schemas.consultations import ConsultationOut
from api.schemas.guidance import DeskOut
from api.schemas.text import Code, MultiLine, SingleLine
from domain.requests import Inquiry, RequestKind, RequestStatus

Short = Annotated[str, SingleLine(min_length=1, max_length=200)]
RefNo = Annotated[str, SingleLine(min_length=1, max_length=100)]
Note = Annotated[str, MultiLine(max_length=4000)]

REQUEST_EXAMPLE: JsonDict = {
    "kind": "platform_form",
    "target": {"platform": "x", "service": "x"},
    "evidence_ids": ["3f1c2b9e-6a4d-4e8b-9c1a-2d5e7f8a9b0c"],
    "channel": "Xのヘルプセンター(プライバシー・名誉毀損の報告フォーム)",
    "notes": "実名と勤務先を挙げた投稿2件について削除を求めます。",
}


class TargetIn(Input):
    """A platform service from GET /v1/platforms (`platform` and `service` codes), or a free host or provider
    name (`name`) for a site that is not in the reference data."""

    platform: Code | None = None
    service: Code | None = Field(None, description="The service code: designation is per service")
    name: Short | None = Field(None, description="A host or provider not in the reference data")


class RequestCreate(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [REQUEST_EXAMPLE]})

    kind: RequestKind
    target: TargetIn
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    channel: Short | None = Field(None, description="How it is sent: a form, post, e-mail, in person …")
    reference_number: RefNo | None = Field(None, description="The recipient's reference number (受付番号)")
    notes: Note | None = None
    received_at: Moment | None = Field(
        None, description="For a reply to an inquiry (意見照会): when the inquiry arrived"
    )
    inquiry: Inquiry | None = Field(None, description="For a reply to an inquiry: removal or disclosure")
    private_sexual_image: StrictBool = Field(
        False, description="The content is a private sexual image (私事性的画像): shorter removal periods"
    )
    letter_id: uuid.UUID | None = Field(
        None, description="A letter built for this request, when there is one"
    )


class RequestUpdate(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reference_number": "XR-2026-120345", "channel": "Xの報告フォーム"}]}
    )

    target: TargetIn | None = None
    evidence_ids: list[uuid.UUID] | None = Field(None, max_length=50)
    channel: Short | None = None
    reference_number: RefNo | None = None
    notes: Note | None = None
    received_at: Moment | None = None
    inquiry: Inquiry | None = None
    private_sexual_image: StrictBool | None = None
    letter_id: uuid.UUID | None = None
    sent_at: Moment | None = Field(None, description="Correct the date sent (only once sent)")


class StatusIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "sent", "at": "2026-12-02T10:30:00+09:00", "note": "フォームから送信しました"}
            ]
        }
    )

    status: RequestStatus
    at: Moment | None = Field(None, description="When it happened (default: now); never in the future")
    note: Note | None = None


class AdviceIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"note": "7日たっても回答がなければ、法務局への相談も検討しましょう。"}]
        }
    )

    note: Annotated[str, MultiLine(min_length=1, max_length=4000)]


class ReplyIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"evidence_id": "5b7d9f1a-2c4e-4a6b-8d0f-1a3c5e7a9b2d"}]}
    )

    evidence_id: uuid.UUID = Field(description="An evidence item of the same consultation holding the reply")


class TargetOut(Output):
    platform: str | None
    service: str | None
    name: str | None
    designated: bool = Field(description="The target service is a designated large platform service")


class ClockOut(Output):
    rule: str
    name_ja: str
    name_en: str
    subject: str = Field(description="request, evidence or consultation")
    subject_id: uuid.UUID
    starts_at: Timestamp
    due_at: Timestamp = Field(description="The end of the period (24:00 Japan time of its last day)")
    remind_at: Timestamp
    counting: str = Field(description="calendar or business days")
    basis: str = Field(description="statute, or practice (approximate)")
    approximate: bool
    variant: str | None
    settled: bool = Field(description="What the clock measures has happened (answered, replied, acted)")
    overdue: bool
    law_ja: str
    source: str
    checked: date


class EventOut(Output):
    from_status: RequestStatus | None
    to_status: RequestStatus
    at: Timestamp
    note: str | None
    by_staff: bool


class NextStepOut(Output):
    outcome: str
    title_ja: str
    title_en: str
    guidance_ja: str
    desks: list[DeskOut]


class RequestOut(Output):
    id: uuid.UUID
    consultation_id: uuid.UUID = Field(description="Its own consultation (an earlier one when carried over)")
    kind: RequestKind
    status: RequestStatus
    target: TargetOut
    evidence_ids: list[uuid.UUID]
    reply_evidence_ids: list[uuid.UUID]
    channel: str | None
    sent_at: Timestamp | None
    received_at: Timestamp | None
    inquiry: Inquiry | None
    private_sexual_image: bool
    reference_number: str | None
    notes: str | None
    advice: str | None
    advice_at: Timestamp | None
    letter_id: uuid.UUID | None
    allowed_statuses: list[RequestStatus] = Field(description="Where its status may move next")
    clocks: list[ClockOut]
    overdue: bool
    next_steps: list[NextStepOut] = Field(description="Where to turn when refused or unanswered")
    created_at: Timestamp
    updated_at: Timestamp
    version: int


class RequestDetail(RequestOut):
    history: list[EventOut]


class ClockFactsIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"offender_known_on": "2026-11-25", "damage_known_on": "2026-11-20"}]}
    )

    offender_known_on: Day | None = Field(None, description="The day the person learnt who the offender is")
    damage_known_on: Day | None = Field(None, description="The day the person learnt of the damage")


class ClockFactsOut(Output):
    offender_known_on: date | None
    damage_known_on: date | None


class OverdueOut(Output):
    clock: ClockOut
    consultation: ConsultationOut
    request: RequestOut | None


class LinkIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"earlier_id": "7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3a"}]}
    )

    earlier_id: uuid.UUID = Field(description="An earlier consultation of the same person, closed")


class SuggestionOut(Output):
    template: str = Field(description="The manual template's code")
    version: int = Field(description="Its current version (record it with the draft)")
    title_ja: str
    title_en: str
    sections: list[str]
    score: int = Field(description="How well it fits the case (categories and desired outcomes)")
    body: str = Field(description="The template filled from the case")
    values: dict[str, str] = Field(description="What each placeholder was filled with")
    unfilled: list[str] = Field(description="Placeholders the case could not fill (left as written)")
