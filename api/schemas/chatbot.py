"""Request and response bodies of the homepage chatbot."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, model_validator

from api.schemas.common import Input, Output, Timestamp
from api.schemas.text import MultiLine, SingleLine
from infra.chatbot_loader import load_chatbot_flows

# The languages the chatbot's data declares: the contract lists them, and adding one is a data change.
CHATBOT_LANGUAGES: list[JsonValue] = [*load_chatbot_flows().languages, None]


class LinkOut(Output):
    title: str
    url: str = Field(description="https:// page, or tel: for a desk's phone number")


class BotMessageOut(Output):
    text: str
    links: list[LinkOut] = Field(default_factory=list)


class ChoiceOut(Output):
    id: str = Field(description="Send back as `choice_id`")
    label: str


class HandoffOut(Output):
    claim_token: str = Field(
        description="Single use, valid 24 hours: the signed-in consulter sends it to POST /v1/chatbot/drafts/claim "
        "to prefill the consultation form. Shown once; the transcript keeps only its expiry."
    )
    expires_at: Timestamp


class ChatTurnOut(Output):
    messages: list[BotMessageOut]
    choices: list[ChoiceOut]
    handoff: HandoffOut | None = None
    expires_at: Timestamp = Field(description="When the session ends unless another turn comes first")
    language: str = Field(
        "ja",
        description="The language of this turn (ISO 639-1); the session speaks it until a `lang:<code>` choice "
        "switches it",
        examples=["ja", "en"],
    )


class ChatSessionIn(Input):
    """Optional. Without a body (or without `language`) the session speaks the best language of the
    Accept-Language header that the chatbot supports, else Japanese."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"language": "en"}, {"language": "ja"}]})

    language: Annotated[str, SingleLine(min_length=2, max_length=8)] | None = Field(
        None,
        description="The session's language (ISO 639-1), one of `languages` of the answer: `ja` or `en`. "
        "Another value answers 422 `unsupported_language`.",
        examples=["en"],
        json_schema_extra={"enum": CHATBOT_LANGUAGES},
    )


class ChatSessionCreated(Output):
    session_id: uuid.UUID
    session_token: str = Field(
        description="Send as the X-Chatbot-Token header on every call about this session (never in a URL)."
    )
    expires_at: Timestamp
    turn: ChatTurnOut = Field(description="The greeting and the menu")
    languages: list[str] = Field(
        default_factory=lambda: ["ja"],
        description="The languages the chatbot speaks; the menu offers a `lang:<code>` choice for each other one",
    )


class TranscriptEntryOut(Output):
    role: Literal["bot", "user"]
    at: Timestamp
    text: str | None = Field(
        None, description="What the person chose; free text is never kept and shows as a placeholder"
    )
    messages: list[BotMessageOut] = Field(default_factory=list)
    choices: list[ChoiceOut] = Field(default_factory=list)
    handoff_expires_at: Timestamp | None = None


class ChatTranscriptOut(Output):
    session_id: uuid.UUID
    expires_at: Timestamp
    turns: list[TranscriptEntryOut]
    choices: list[ChoiceOut] = Field(description="The choices open now")
    language: str = Field("ja", description="The language the session speaks now")


class ChatMessageIn(Input):
    """Exactly one of `choice_id` (a choice offered by the last turn) or `text` (free text, not stored)."""

    model_config = ConfigDict(
        json_schema_extra={
            # Exactly one of the two, said in the schema so generated clients and validators know it.
            "oneOf": [
                {
                    "required": ["choice_id"],
                    "properties": {"choice_id": {"type": "string"}, "text": {"type": "null"}},
                },
                {
                    "required": ["text"],
                    "properties": {"text": {"type": "string"}, "choice_id": {"type": "null"}},
                },
            ],
            "examples": [
                {"choice_id": "flow:delete_post"},
                {"text": "SNSで悪口を書かれて困っています。削除してもらう方法を知りたいです。"},
            ],
        }
    )

    choice_id: Annotated[str, SingleLine(min_length=1, max_length=100)] | None = None
    text: Annotated[str, MultiLine(min_length=1, max_length=1000)] | None = Field(
        None,
        description="Free text for triage. Please leave out names, addresses and other personal data.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ChatMessageIn:
        if (self.choice_id is None) == (self.text is None):
            raise ValueError("send exactly one of choice_id and text")
        return self


class ClaimIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"claim_token": "mW3v0bq4b3o1yJ0nT8yq2cR5fK7hZ1xA9sD2gH4jL6p"}]}
    )

    claim_token: Annotated[str, SingleLine(min_length=1, max_length=256)]


class ChatDraftOut(Output):
    """Codes to prefill the consultation form; the person reviews them and submits POST /v1/consultations."""

    categories: list[str]
    desired_outcomes: list[str]
    platforms: list[str]
    channel: Literal["chatbot"] = "chatbot"
