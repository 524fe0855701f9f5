"""Bodies of the letters a person builds from their evidence (issue 15 §3)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from api.schemas.common import Input, Output, Timestamp
from api.schemas.text import Code, MultiLine, SingleLine

LetterKindCode = Literal[
    "removal_defamation_privacy",
    "removal_copyright",
    "removal_trademark",
    "removal_intimate_image",
    "disclosure",
]
Choice = Annotated[str, SingleLine(min_length=1, max_length=200)]
GuidedText = Annotated[str, MultiLine(max_length=5000)]

LETTER_EXAMPLE: JsonDict = {
    "kind": "removal_defamation_privacy",
    "recipient": "株式会社ホスティング例",
    "evidence_ids": ["5b0c1f9e-6d0a-4c55-9a57-3f8f2f0e9c11"],
    "choices": {"right": ["名誉権", "プライバシー権"]},
    "texts": {
        "reason": "投稿には私の氏名と勤務先が書かれており、「横領している」という事実無根の内容で、"
        "職場で噂になり困っています。"
    },
    "sender": {"name": "山田 花子", "address": None, "contact": "hanako@example.jp"},
}


class SenderIn(Input):
    """Only what the person chooses to give; every part may be left out (a lawyer's address instead, or
    nothing beyond what the form requires)."""

    name: Annotated[str, SingleLine(max_length=200)] | None = None
    address: Annotated[str, SingleLine(max_length=300)] | None = None
    contact: Annotated[str, SingleLine(max_length=200)] | None = None


class LetterRevisionIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{k: v for k, v in LETTER_EXAMPLE.items() if k != "kind"}]}
    )

    recipient: Annotated[str, SingleLine(max_length=200)] = Field(
        description="The provider or site administrator the letter is addressed to (〇〇 御中)"
    )
    evidence_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=50, description="Evidence items of this consultation"
    )
    choices: dict[Code, list[Choice]] = Field(
        default_factory=dict, max_length=20, description="Choice fields by code: the options chosen"
    )
    texts: dict[Code, GuidedText] = Field(
        default_factory=dict, max_length=20, description="The guided and free text fields by code, as written"
    )
    sender: SenderIn = Field(default_factory=SenderIn)


class LetterIn(LetterRevisionIn):
    model_config = ConfigDict(json_schema_extra={"examples": [LETTER_EXAMPLE]})

    kind: LetterKindCode


class FormFieldOut(Output):
    code: str
    kind: str = Field(description="evidence (filled from the evidence) | choice | guided | text")
    label_ja: str
    help_ja: str
    required: bool
    max_length: int | None
    choices: list[str]


class LetterFormOut(Output):
    kind: str
    title_ja: str
    subtitle_ja: str
    title_en: str
    source_url: str
    form_url: str
    checked: date
    fields: list[FormFieldOut]


class LetterItemOut(Output):
    evidence_id: uuid.UUID
    url: str | None
    posted_at: Timestamp | None
    posted_at_jst: str | None = Field(description="The posting time as the letter prints it (JST)")
    excerpt: str | None
    platform: str | None


class SenderOut(Output):
    name: str | None
    address: str | None
    contact: str | None


class LetterVersionOut(Output):
    number: int
    author_id: uuid.UUID = Field(description="The person who wrote this version: always the consulter")
    created_at: Timestamp
    recipient: str
    items: list[LetterItemOut]
    choices: dict[str, list[str]]
    texts: dict[str, str]
    sender: SenderOut


class LetterReviewOut(Output):
    version_number: int
    reviewer_id: uuid.UUID | None = Field(
        description="The staff member who decided; null in a consulter's view (`reviewer_role` says which role)"
    )
    reviewer_role: str
    decision: str
    advice: str | None
    created_at: Timestamp


class LetterNoticeOut(Output):
    forwarding_ja: str = Field(description="What the recipient may forward to the poster")
    address_ja: str = Field(description="How to keep one's address private")


class LetterOut(Output):
    id: uuid.UUID
    consultation_id: uuid.UUID
    kind: str
    title_ja: str
    state: str = Field(description="draft | awaiting_review | returned | approved | final")
    review_reasons: list[str]
    needs_advisor: bool = Field(description="Final only after the legal advisor approves the latest version")
    missing_fields: list[str] = Field(description="Required fields still empty: they block finalising")
    notice: LetterNoticeOut
    created_at: Timestamp
    updated_at: Timestamp
    submitted_at: Timestamp | None
    finalised_at: Timestamp | None
    version: int
    versions: list[LetterVersionOut]
    reviews: list[LetterReviewOut]


class FormTextOut(Output):
    code: str
    label_ja: str
    text: str = Field(description="The whole text for this field: never cut")
    length: int
    max_length: int
    limit: str = Field(description="service: the service's own limit; centre: the centre's conservative cap")
    fits: bool
    over_by: int = Field(
        description="Characters over the limit (0 when it fits): shorten this field yourself"
    )


class LetterFormTextOut(Output):
    letter_id: uuid.UUID
    service: str
    form_name_ja: str
    url: str
    source_url: str
    checked: date
    fits: bool
    fields: list[FormTextOut]
    notice: LetterNoticeOut


class LetterDecisionIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision": "returned",
                    "advice": "「権利が明らかに侵害されたとする理由」に、書かれた内容が事実でないことを具体的に書いてください。",
                }
            ]
        }
    )

    decision: Literal["approved", "returned"]
    advice: Annotated[str, MultiLine(max_length=5000)] | None = None


class LetterQueueEntry(Output):
    letter: LetterOut
    waiting_since: Timestamp
