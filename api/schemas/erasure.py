"""Response bodies of a person's request to erase their account (issue 17 §3)."""

from __future__ import annotations

import uuid

from pydantic import Field

from api.schemas.common import Output, Timestamp
from domain.erasure import GRACE_DAYS, GRACE_REASON, KEPT


class ErasureOut(Output):
    id: uuid.UUID
    status: str = Field(description="pending (cancellable until due_at), cancelled or completed")
    requested_at: Timestamp
    due_at: Timestamp = Field(description="End of the grace period: from then on the request is carried out")
    grace_days: int = GRACE_DAYS
    grace_reason_ja: str = GRACE_REASON
    cancelled_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    kept_ja: list[str] = Field(
        default_factory=lambda: list(KEPT),
        description="What is kept after erasure and why (legal holds, consent and audit records, statistics)",
    )


class PendingErasureOut(Output):
    """No narrative content: the account's id and the dates only."""

    id: uuid.UUID
    user_id: uuid.UUID
    requested_at: Timestamp
    due_at: Timestamp
