"""First-answer due times count Japanese business days: weekends, public holidays and the year-end closure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from domain.calendar import JST, add_business_days, due_at
from infra.calendar import JapaneseHolidays

CAL = JapaneseHolidays()


def test_weekends_are_skipped() -> None:
    assert add_business_days(date(2026, 11, 27), 1, CAL) == date(2026, 11, 30)  # Friday → Monday


def test_public_holidays_are_skipped() -> None:
    # 2026-05-01 (Fri) + 1: 5/2-5/6 are weekend and Golden Week holidays (憲法記念日, みどりの日, こどもの日, 振替休日).
    assert add_business_days(date(2026, 5, 1), 1, CAL) == date(2026, 5, 7)
    assert CAL.is_holiday(date(2026, 11, 23))  # 勤労感謝の日
    assert add_business_days(date(2026, 11, 20), 1, CAL) == date(2026, 11, 24)


def test_year_end_closure() -> None:
    assert add_business_days(date(2026, 12, 25), 3, CAL) == date(
        2027, 1, 5
    )  # 12/28, (closed to 1/3), 1/4, 1/5
    assert CAL.is_holiday(date(2026, 12, 30)) and CAL.is_holiday(date(2027, 1, 2))


def test_due_at_is_end_of_office_day_in_japan() -> None:
    # Received Saturday night UTC = Sunday morning in Japan; three business days later is Wednesday 17:00 JST.
    received = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert due_at(received, 3, CAL, closing=time(17)) == datetime(2026, 12, 2, 17, 0, tzinfo=JST)


# The instants the suite is also run at (`./dev test --clock …`): each with the first-answer due time a person
# is told at intake, worked out by hand from the calendar (3 business days, the day of receipt not counted,
# office closing 17:00 Japan time).
DUE_AT_ANY_HOUR = {
    "weekday 23:59 JST": ("2026-12-02T23:59:00+09:00", datetime(2026, 12, 7, 17, 0, tzinfo=JST)),
    "weekday 00:30 JST is still the previous day in UTC": (
        "2026-12-02T00:30:00+09:00",
        datetime(2026, 12, 7, 17, 0, tzinfo=JST),
    ),
    "Friday after 17:00": ("2026-12-04T17:30:00+09:00", datetime(2026, 12, 9, 17, 0, tzinfo=JST)),
    "the day before a public holiday (建国記念の日)": (
        "2027-02-10T16:59:00+09:00",
        datetime(2027, 2, 16, 17, 0, tzinfo=JST),
    ),
    "28 December, the last day before the year-end closure": (
        "2026-12-28T12:00:00+09:00",
        datetime(2027, 1, 6, 17, 0, tzinfo=JST),
    ),
    "31 March, the end of the fiscal year": (
        "2027-03-31T18:00:00+09:00",
        datetime(2027, 4, 5, 17, 0, tzinfo=JST),
    ),
    "a leap day": ("2028-02-29T09:00:00+09:00", datetime(2028, 3, 3, 17, 0, tzinfo=JST)),
}


@pytest.mark.parametrize("received, due", DUE_AT_ANY_HOUR.values(), ids=DUE_AT_ANY_HOUR.keys())
def test_due_time_at_any_hour(received: str, due: datetime) -> None:
    assert due_at(datetime.fromisoformat(received), 3, CAL, closing=time(17)) == due
