"""Request and response bodies for consultations, messages, evidence and reference lists."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, StrictInt
from pydantic.config import JsonDict

from api.schemas.common import Input, Moment, Output, Timestamp
from api.schemas.guidance import DeskOut
from api.schemas.text import Code, MultiLine, SingleLine
from domain.consultations import EvidenceGap, MessageKind, Priority, Status

ShortText = Annotated[str, SingleLine(min_length=1, max_length=200)]
LongText = Annotated[str, MultiLine(min_length=1, max_length=8000)]
Note = Annotated[str, MultiLine(max_length=4000)]

INTAKE_EXAMPLE: JsonDict = {
    "channel": "web",
    "relation": "self",
    "title": "SNSで実名と勤務先をさらされ、悪口を書かれています",
    "narrative": "2026年11月20日ごろから、X（旧Twitter）の匿名アカウントが私の実名と勤務先を挙げて「横領している」"
    "という事実無根の投稿を繰り返しています。削除してもらう方法と、投稿者を特定できるかを知りたいです。",
    "categories": ["RIGHTS.DEFAMATION", "RIGHTS.PRIVACY_ID"],
    "desired_outcomes": ["delete", "identify_poster"],
    "platforms": ["x"],
    "platform_other": None,
    "tried": "Xの報告フォームから通報しましたが、まだ削除されていません。",
    "victim_is_minor": False,
    "consent": {"terms_version": "2026-11", "terms": True, "sensitive_data": True},
}


class ConsentIn(Input):
    terms_version: Annotated[str, SingleLine(min_length=1, max_length=32)]
    terms: StrictBool = Field(description="Agrees to the terms of use")
    sensitive_data: StrictBool = Field(
        description="Agrees to the handling of sensitive personal data (要配慮個人情報)"
    )


class ConsultationCreate(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [INTAKE_EXAMPLE]})

    channel: Code = "web"
    relation: Code = Field(description="Who consults: self, family, school, agent, provider, other")
    title: ShortText
    narrative: LongText
    categories: list[Code] = Field(default_factory=list, max_length=10)
    desired_outcomes: list[Code] = Field(min_length=1, max_length=10)
    platforms: list[Code] = Field(default_factory=list, max_length=10)
    platform_other: ShortText | None = None
    tried: Note | None = None
    victim_is_minor: StrictBool | None = None
    consent: ConsentIn


class ConsultationUpdate(Input):
    """Consulters may change title, tried and platform_other; staff title, categories, priority and urgent.
    Status, owner and assignee never change through PATCH (see the action routes)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"categories": ["RIGHTS.DEFAMATION", "RIGHTS.PRIVACY_ID"], "priority": "high"},
                {"tried": "Xの報告フォームと、勤務先の弁護士にも相談しました。"},
            ]
        }
    )

    title: ShortText | None = None
    tried: Note | None = None
    platform_other: ShortText | None = None
    categories: list[Code] | None = Field(None, max_length=10)
    priority: Priority | None = None
    urgent: StrictBool | None = None


class AssignIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"assignee_id": "6e1a0c1c-31a4-4f0e-8d7c-0a2b3c4d5e6f"}]}
    )

    assignee_id: uuid.UUID


class UrgencyOut(Output):
    flag: str
    triggers: list[str]
    desks: list[str]


class ConsultationOut(Output):
    id: uuid.UUID
    status: Status
    channel: str
    relation: str
    title: str
    categories: list[str]
    desired_outcomes: list[str]
    platforms: list[str]
    platform_other: str | None
    victim_is_minor: bool | None
    priority: Priority
    urgent: bool
    urgency_flags: list[str]
    assignee_id: uuid.UUID | None = Field(
        description="The staff member who holds the case (null when unassigned); always null in a consulter's "
        "view, which never names staff"
    )
    created_at: Timestamp
    updated_at: Timestamp
    first_answer_due_at: Timestamp
    first_answered_at: Timestamp | None
    overdue: bool
    unread_answers: int = Field(0, description="Answers the consulter has not read yet (consulter lists)")
    version: int
    time_to_act_at: Timestamp | None = Field(
        None,
        description="Time to act: the earliest end of its evidence's access-log clocks (take the disclosure "
        "or preservation step before it); null when no evidence has a known posting time",
    )
    follows_id: uuid.UUID | None = Field(None, description="The earlier consultation this one follows")


class ConsultationDetail(ConsultationOut):
    narrative: str
    tried: str | None
    terms_version: str
    consented_at: Timestamp


class IntakeOut(ConsultationDetail):
    urgency: list[UrgencyOut] = Field(description="Why the consultation was flagged urgent, with the desks")
    urgency_desks: list[DeskOut]
    emergency_desks: list[DeskOut] = Field(description="Emergency contact desks, always shown at intake")


class TransitionOut(Output):
    from_status: Status | None
    to_status: Status
    at: Timestamp
    reason: str | None
    by_staff: bool


class MessageIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"body": "ご回答ありがとうございます。削除依頼の書式について、もう少し教えてください。"},
                {
                    "body": "削除依頼は、投稿ごとのURLを明記して、サイトの報告フォームから行ってください。",
                    "kind": "answer",
                },
            ]
        }
    )

    body: LongText
    kind: MessageKind | None = Field(
        None, description="Staff: answer or note (internal). Consulters omit it."
    )


class MessageOut(Output):
    id: uuid.UUID
    kind: MessageKind
    body: str
    created_at: Timestamp
    from_staff: bool
    urgency: list[UrgencyOut] = Field(
        default=[], description="On a consulter's reply that reveals danger: the urgency flags raised"
    )
    urgency_desks: list[DeskOut] = Field(default=[], description="Desks for those flags, most urgent first")
    emergency_desks: list[DeskOut] = Field(default=[], description="Emergency desks, shown with any flag")


Hex64 = Annotated[str, SingleLine(min_length=64, max_length=64, pattern="^[0-9a-fA-F]{64}$")]
HASHES_EXAMPLE: JsonDict = {
    "sha256": "9f2c4d8e1b7a6c3f5e0d2a9b8c7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5",
    "pdq": "d8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22",
    "pdq_quality": 100,
    "width": 1170,
    "height": 2532,
}


class ImageHashesIn(Input):
    """Hashes of a picture computed on the person's device; the picture itself is not sent. infra/
    image_hashes.py is the reference implementation (PDQ via pdqhash, ThreatExchange's hex form)."""

    model_config = ConfigDict(json_schema_extra={"examples": [HASHES_EXAMPLE]})

    sha256: Hex64 = Field(description="SHA-256 of the image file's bytes, 64 hex digits")
    pdq: Hex64 = Field(description="PDQ perceptual hash, 256 bits as 64 hex digits")
    pdq_quality: StrictInt = Field(
        ge=0, le=100, description="PDQ's quality; below the configured minimum is refused"
    )
    width: StrictInt = Field(ge=1, le=100_000)
    height: StrictInt = Field(ge=1, le=100_000)


class ImageHashesOut(Output):
    sha256: str
    pdq: str
    pdq_quality: int
    width: int
    height: int


class EvidenceIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://x.com/example_account/status/1859000000000000000",
                    "platform": "x",
                    "posted_at": "2026-11-20T21:15:00+09:00",
                    "captured_at": "2026-11-21T09:30:00+09:00",
                    "poster_account": "@example_account",
                    "excerpt": "〇〇（実名）は会社の金を横領している",
                    "notes": "前後の投稿もスクリーンショットで保存しています。",
                    "context_captured": True,
                },
                {
                    "url": "https://example-uploader.jp/v/abc123",
                    "posted_at": "2026-11-28T23:40:00+09:00",
                    "notes": "元交際相手に撮られた写真が無断で投稿されています。画像は送らず、ハッシュだけ記録します。",
                    "image_hashes": HASHES_EXAMPLE,
                },
            ]
        }
    )

    url: Annotated[str, SingleLine(min_length=8, max_length=2048)] | None = None
    platform: Code | None = None
    posted_at: Moment | None = Field(None, description="Absolute posting time, with a time zone")
    captured_at: Moment | None = None
    poster_account: ShortText | None = None
    excerpt: Note | None = None
    notes: Note | None = None
    context_captured: StrictBool = False
    image_hashes: ImageHashesIn | None = Field(
        None, description="For intimate images: hashes computed on the device instead of the picture"
    )


class EvidenceCorrection(Input):
    """Only the fields sent change; send null to clear one. The file and image hashes are what was received and
    are not corrected here."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "posted_at": "2026-11-20T21:15:00+09:00",
                    "url": "https://x.com/example_account/status/1859000000000000001",
                }
            ]
        }
    )

    url: Annotated[str, SingleLine(min_length=8, max_length=2048)] | None = None
    platform: Code | None = None
    posted_at: Moment | None = Field(None, description="Absolute posting time, with a time zone")
    captured_at: Moment | None = None
    poster_account: ShortText | None = None
    excerpt: Note | None = None
    notes: Note | None = None
    context_captured: StrictBool | None = None


class EvidenceFileOut(Output):
    content_type: str
    size: int = Field(description="Size of the cleaned copy (what the download serves)")
    sha256: str | None = Field(
        description="SHA-256 of the original exactly as received; null for files kept before originals were"
    )
    copy_sha256: str = Field(description="SHA-256 of the cleaned copy (what the download serves)")
    original_kept: bool = Field(description="The sealed original is kept (no route serves it)")
    sealed: bool = Field(description="Uploaded through an upload slot: only the assigned consultant opens it")


class UploadSlotIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "ご本人が画像そのものを証拠として預けることを強く希望されたため"}]
        }
    )

    reason: Annotated[str, MultiLine(min_length=1, max_length=2000)]


class UploadSlotOut(Output):
    opened_by: uuid.UUID
    opened_at: Timestamp
    reason: str


class SimilarEvidenceOut(Output):
    evidence_id: uuid.UUID
    consultation_id: uuid.UUID
    distance: int = Field(description="Hamming distance between the two PDQ hashes (bits of 256)")
    created_at: Timestamp


class EvidenceOut(Output):
    id: uuid.UUID
    url: str | None
    platform: str | None
    posted_at: Timestamp | None
    captured_at: Timestamp | None
    poster_account: str | None
    excerpt: str | None
    notes: str | None
    context_captured: bool
    file: EvidenceFileOut | None
    image_hashes: ImageHashesOut | None
    upload_slot: UploadSlotOut | None = Field(description="Staff only: a supervisor's one-upload permission")
    created_at: Timestamp
    missing: list[EvidenceGap] = Field(description="What good evidence still lacks (domain §5)")
    time_to_act_at: Timestamp | None = Field(
        None,
        description="From the posting time: when the access logs are likely gone (mobile carriers keep them "
        "about 3 months); null when the posting time is unknown",
    )


class CategoryOut(Output):
    code: str
    label_ja: str
    label_en: str
    nature: str
    description_ja: str


class CategoryGroupOut(CategoryOut):
    children: list[CategoryOut]


class CodeItemOut(Output):
    code: str
    label_ja: str
    label_en: str


class PlatformBrief(Output):
    code: str
    name_ja: str
    name_en: str


class IntakeOptionsOut(Output):
    terms_version: str
    relations: list[CodeItemOut]
    desired_outcomes: list[CodeItemOut]
    channels: list[CodeItemOut]
    platforms: list[PlatformBrief]
