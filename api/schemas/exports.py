"""Response bodies of the person's export (issue 17 §3)."""

from __future__ import annotations

import uuid

from pydantic import ConfigDict, Field

from api.schemas.common import Output, Timestamp
from domain.exports import ExportState


class ExportOut(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5b0e8c7a-3f1d-4b6e-8a2c-9d4e1f7a6b30",
                    "status": "ready",
                    "requested_at": "2026-12-02T01:00:00Z",
                    "ready_at": "2026-12-02T01:00:30Z",
                    "expires_at": "2026-12-09T01:00:30Z",
                    "downloaded_at": None,
                    "size": 48213,
                }
            ]
        }
    )

    id: uuid.UUID
    status: ExportState = Field(
        description="pending (being prepared), ready (download it once before `expires_at`), downloaded, "
        "expired (not downloaded in time; deleted), failed (could not be prepared; ask again)"
    )
    requested_at: Timestamp
    ready_at: Timestamp | None = None
    expires_at: Timestamp | None = Field(None, description="After this the export is deleted")
    downloaded_at: Timestamp | None = None
    size: int | None = Field(None, description="Bytes of the ZIP, once ready")
