"""Bodies of the LINE official account routes: webhook acknowledgement, account linking, dead letters."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import ConfigDict, Field

from api.schemas.common import Input, Output, Timestamp
from api.schemas.text import SingleLine


class WebhookAck(Output):
    model_config = ConfigDict(json_schema_extra={"examples": [{"stored": 1}]})

    stored: int = Field(description="Events stored by this delivery (a redelivered event counts 0)")


class LinkNonceIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"link_token": "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"}],
            "description": "マイページのLINE連携ページが、URLの linkToken をそのまま送ります。",
        }
    )

    link_token: Annotated[str, SingleLine(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")] = Field(
        description="The `linkToken` query parameter the LINE bot put in the link (issued by LINE)"
    )


class LinkNonceOut(Output):
    nonce: str = Field(description="Single use, valid for about ten minutes")
    redirect_url: str = Field(description="Send the browser here to finish linking on LINE")
    expires_at: Timestamp


class LinkStatusOut(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"linked": True, "linked_at": "2026-11-29T10:00:00Z", "following": True}]
        }
    )

    linked: bool
    linked_at: Timestamp | None
    following: bool = Field(description="False once the LINE user blocked the bot (no notices are sent)")


class DeadLetterOut(Output):
    id: uuid.UUID
    purpose: str = Field(description="What the message was for, e.g. `answer_published`, `event_postback`")
    status: str = Field(description="`dead`, or `pending` right after a replay")
    attempts: int
    replays: int
    last_error: str | None = Field(description="`http_500`, `http_429`, `network`, …")
    created_at: Timestamp
    failed_at: Timestamp | None
