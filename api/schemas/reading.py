"""Reading the thread: a consulter says how far they have read (a GET never changes unread counts)."""

from __future__ import annotations

import uuid

from pydantic import ConfigDict, Field

from api.schemas.common import Input, Output


class MessagesReadIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"up_to": "0b3e7c1a-5d2f-4e8b-9a6c-1f2e3d4c5b6a"}]}
    )

    up_to: uuid.UUID = Field(
        description="The newest message the consulter has seen: it and every earlier answer count as read."
    )


class ReadStateOut(Output):
    model_config = ConfigDict(json_schema_extra={"examples": [{"unread_answers": 0}]})

    unread_answers: int = Field(ge=0, description="Answers in this thread still unread after the call")
