"""Retention and legal holds (issue 17 §2)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import ConfigDict, Field

from api.schemas.common import Input, Output, Timestamp
from api.schemas.text import MultiLine


class LegalHoldIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "名誉毀損訴訟の証拠保全(弁護士からの依頼、2026年12月)"}]}
    )

    reason: Annotated[str, MultiLine(min_length=1, max_length=500)]


class LegalHoldOut(Output):
    consultation_id: uuid.UUID
    reason: str
    placed_by: uuid.UUID
    placed_at: Timestamp


class RetentionRuleOut(Output):
    status: str = Field(description="The final status the rule applies to (closed, withdrawn)")
    keep_days: int = Field(description="Days kept after the case closed or was withdrawn, then shredded")
    basis_ja: str
    source: str
    checked: date


class RetentionReportOut(Output):
    rules: list[RetentionRuleOut]
    due: int = Field(description="Ended cases past their period that the next pass would shred (at most 200)")
    held: int = Field(description="Ended cases past their period that a legal hold keeps")
    consultation_ids: list[uuid.UUID] = Field(description="The cases the next pass would shred")
