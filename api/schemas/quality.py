"""Bodies for answer drafts and reviews, the manual, supervision, the council and the trail."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt

from api.schemas.common import Input, Moment, Output, Timestamp
from api.schemas.text import Code, MultiLine, SingleLine

Body = Annotated[str, MultiLine(min_length=1, max_length=20000)]


class DraftIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "body": "ご相談ありがとうございます。まずは投稿のURLと投稿日時がわかる画面を保存してください。"
                    "そのうえで、Xの「ポストを報告」から名誉毀損として削除を依頼できます。",
                    "manual_sections": ["evidence", "delete-yourself"],
                    "template": "delete-request-guide",
                    "request_review": False,
                }
            ]
        }
    )

    body: Body
    manual_sections: list[Code] = Field(default_factory=list, max_length=20)
    template: Code | None = None
    request_review: StrictBool = False


class DraftRevisionIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "body": "助言を踏まえて修正しました。開示請求には期限があるため、早めに弁護士へご相談ください。",
                    "manual_sections": ["disclosure"],
                }
            ]
        }
    )

    body: Body
    manual_sections: list[Code] = Field(default_factory=list, max_length=20)
    template: Code | None = None


class ReviewDecisionIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "advice": "開示命令の申立てには弁護士費用がかかる点と、法テラスの民事法律扶助を併記してください。"
                }
            ]
        }
    )

    advice: Annotated[str, MultiLine(max_length=5000)] | None = None


class ManualRefOut(Output):
    code: str
    version: int


class AnswerVersionOut(Output):
    number: int
    body: str
    author_id: uuid.UUID
    created_at: Timestamp
    manual_refs: list[ManualRefOut]
    template: ManualRefOut | None
    template_values: dict[str, str] = Field(
        default_factory=dict,
        description="What the case filled the template's placeholders with (platform, URL, desk, deadline)",
    )


class ReviewOut(Output):
    version_number: int
    reviewer_id: uuid.UUID
    decision: str
    advice: str | None
    created_at: Timestamp


class DraftOut(Output):
    id: uuid.UUID
    consultation_id: uuid.UUID
    state: str
    review_reasons: list[str]
    needs_review: bool
    created_at: Timestamp
    submitted_at: Timestamp | None
    published_at: Timestamp | None
    versions: list[AnswerVersionOut]
    reviews: list[ReviewOut]


class ReviewQueueEntry(Output):
    draft_id: uuid.UUID
    consultation_id: uuid.UUID
    review_reasons: list[str]
    waiting_seconds: int
    categories: list[str]
    urgent: bool


class ReviewCase(Output):
    draft: DraftOut
    consultation: dict[str, Any] = Field(
        description="The consultation under review (title, narrative, codes)"
    )


class ManualEntryOut(Output):
    code: str
    version: int
    title_ja: str
    title_en: str
    body_ja: str
    sections: list[str]
    created_at: Timestamp
    created_by: uuid.UUID | None
    note: str | None


class SectionRevisionIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "body_ja": "削除依頼の前に、必ず証拠を保存するよう案内する。……",
                    "note": "推進協議会の提案を採用",
                    "proposal_id": None,
                }
            ]
        }
    )

    body_ja: Body
    title_ja: Annotated[str, SingleLine(min_length=1, max_length=200)] | None = None
    note: Annotated[str, MultiLine(max_length=500)] | None = None
    proposal_id: uuid.UUID | None = None


class StaleUseOut(Output):
    consultation_id: uuid.UUID
    draft_id: uuid.UUID
    draft_state: str
    used_version: int
    current_version: int


class OverviewOut(Output):
    workload: list[dict[str, Any]]
    overdue_first_answers: int
    review: dict[str, int]
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_channel: dict[str, int]
    by_month: dict[str, int]


class SampleIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "period_from": "2026-10-01T00:00:00+09:00",
                    "period_to": "2026-11-01T00:00:00+09:00",
                    "size": 20,
                    "method": "stratified",
                }
            ]
        }
    )

    period_from: Moment
    period_to: Moment
    size: StrictInt = Field(ge=1, le=200)
    method: Literal["random", "stratified"] = "random"
    seed: StrictInt | None = Field(None, description="Makes the draw reproducible")


class SampleOut(Output):
    id: uuid.UUID
    period_from: Timestamp
    period_to: Timestamp
    method: str
    size: int
    created_at: Timestamp
    items: list[str] = Field(description="Pseudonyms of the sampled cases")


class AnonymisedCaseOut(Output):
    pseudonym: str
    month: str
    channel: str
    relation: str
    categories: list[str]
    desired_outcomes: list[str]
    platforms: list[str]
    victim_is_minor: bool | None
    urgency_flags: list[str]
    narrative: str
    tried: str | None
    timeline: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    referrals: list[dict[str, Any]]


Score = Annotated[StrictInt, Field(ge=1, le=5)]


class FindingIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accuracy": 4,
                    "timeliness": 3,
                    "tone": 5,
                    "referral_fit": 4,
                    "comment": "法的な説明は正確だが、初回回答まで営業日で5日かかっている。",
                }
            ]
        }
    )

    accuracy: Score
    timeliness: Score
    tone: Score
    referral_fit: Score
    comment: Annotated[str, MultiLine(max_length=5000)] | None = None


class FindingOut(Output):
    id: uuid.UUID
    pseudonym: str
    member_id: uuid.UUID
    accuracy: int
    timeliness: int
    tone: int
    referral_fit: int
    comment: str | None
    created_at: Timestamp


class ProposalIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "section_code": "evidence",
                    "proposed_body": "スマートフォンの場合は……",
                    "rationale": "スマートフォンでの保存手順の説明が不足している事例が複数あった。",
                }
            ]
        }
    )

    section_code: Code
    proposed_body: Body
    rationale: Annotated[str, MultiLine(min_length=1, max_length=5000)]


class ProposalOut(Output):
    id: uuid.UUID
    section_code: str
    based_on_version: int
    proposed_body: str
    rationale: str
    state: str
    created_at: Timestamp
    decided_at: Timestamp | None
    resulting_version: int | None


class CouncilStatisticsOut(Output):
    by_status: dict[str, int | None] = Field(description="Counts below 5 are null (suppressed)")
    by_category: dict[str, int | None]
    by_channel: dict[str, int | None]
    by_month: dict[str, int | None]


class AuditEventOut(Output):
    id: uuid.UUID
    at: Timestamp
    actor_id: uuid.UUID | None
    actor_role: str | None
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
