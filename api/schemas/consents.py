"""Request and response bodies of the consent ledger (issue 17 §4)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Input, Output, Timestamp
from api.schemas.text import Code
from domain.consents import ConsentAction, Purpose, Source


class ConsentOut(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f4c1e-5d43-4c3e-9a55-1f0e7c2b9d10",
                    "purpose": "desk_sharing",
                    "purpose_label_ja": "紹介先の窓口への情報提供の同意",
                    "purpose_label_en": "Sharing with a referred desk",
                    "action": "granted",
                    "action_label_ja": "同意",
                    "action_label_en": "Given",
                    "source": "referral",
                    "recorded_at": "2026-12-02T01:00:00Z",
                    "in_force": True,
                    "terms_version": None,
                    "consultation_id": "3d2b7a61-2a0e-4bb5-8f6e-7f1c1f0b9a2e",
                    "referral_id": "9a0c8d3e-1b7f-4c55-a1e2-5c6d7e8f9a0b",
                    "desk_code": "houterasu",
                }
            ]
        }
    )

    id: uuid.UUID
    purpose: Purpose
    purpose_label_ja: str
    purpose_label_en: str
    action: ConsentAction
    action_label_ja: str
    action_label_en: str
    source: Source = Field(description="intake, referral (consenting to one) or me (the consent page)")
    recorded_at: Timestamp
    in_force: bool = Field(description="A grant not withdrawn since; a withdrawal record is never in force")
    terms_version: str | None = None
    consultation_id: uuid.UUID | None = None
    referral_id: uuid.UUID | None = None
    desk_code: str | None = None


class ConsentList(Output):
    items: list[ConsentOut] = Field(description="Newest first; the ledger is append-only")


class ConsentGrantIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"purpose": "research"}]})

    purpose: Literal["line_notifications", "research"]


class ConsentWithdrawalIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"purpose": "line_notifications"},
                {"purpose": "desk_sharing", "referral_id": "9a0c8d3e-1b7f-4c55-a1e2-5c6d7e8f9a0b"},
                {"purpose": "desk_sharing", "desk_code": "houterasu"},
            ]
        }
    )

    purpose: Literal["desk_sharing", "line_notifications", "research", "terms", "sensitive_data"]
    referral_id: uuid.UUID | None = Field(default=None, description="desk_sharing: this referral only")
    desk_code: Code | None = Field(
        default=None, description="desk_sharing: every referral to this desk consented to before now"
    )
