"""Business days in Japan: weekends and public holidays (the holiday list comes through a port)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol

JST = timezone(timedelta(hours=9), "JST")


class HolidayCalendar(Protocol):
    def is_holiday(self, day: date) -> bool: ...


def is_business_day(day: date, holidays: HolidayCalendar) -> bool:
    return day.weekday() < 5 and not holidays.is_holiday(day)


def add_business_days(start: date, days: int, holidays: HolidayCalendar) -> date:
    """The business day `days` business days after `start` (start itself does not count)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_business_day(current, holidays):
            remaining -= 1
    return current


def due_at(received: datetime, business_days: int, holidays: HolidayCalendar, *, closing: time) -> datetime:
    """End of the office day (Japan time) that is `business_days` business days after receipt."""
    day = add_business_days(received.astimezone(JST).date(), business_days, holidays)
    return datetime.combine(day, closing, tzinfo=JST)
