"""Every timestamp a response carries is sent in UTC with `Z` (api/schemas/common.py `Timestamp`), whatever
offset the value had; a response model that declares a plain `datetime` is refused when it is defined."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api.schemas.common import Output, Timestamp

JST = timezone(timedelta(hours=9))


class Stamped(Output):
    at: Timestamp
    maybe: Timestamp | None = None


def test_a_timestamp_goes_out_in_utc_whatever_its_offset() -> None:
    sent = Stamped(
        at=datetime(2026, 12, 4, 17, 30, tzinfo=JST), maybe=datetime(2026, 12, 5, 0, 0, tzinfo=JST)
    )
    assert sent.model_dump(mode="json") == {"at": "2026-12-04T08:30:00Z", "maybe": "2026-12-04T15:00:00Z"}
    assert Stamped(at=datetime(2026, 12, 4, 8, 30, tzinfo=JST)).model_dump(mode="json")["maybe"] is None


def test_a_response_model_with_a_plain_datetime_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="Plain.at"):

        class Plain(Output):
            at: datetime

    with pytest.raises(TypeError, match="Optional.at"):

        class Optional(Output):
            at: datetime | None = None
