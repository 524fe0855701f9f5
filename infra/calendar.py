"""Japanese public holidays (the `holidays` package) plus the year-end closure most Japanese offices keep."""

from __future__ import annotations

from datetime import date

import holidays


class JapaneseHolidays:
    def __init__(self) -> None:
        self._calendar = holidays.country_holidays("JP")

    def is_holiday(self, day: date) -> bool:
        year_end = (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)
        return year_end or day in self._calendar
