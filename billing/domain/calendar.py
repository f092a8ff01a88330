"""Pure date arithmetic for the debit calendar: inclusive periods, months as integers, clamping.

Month-end clamping is always computed from the rule day, never from the previous result: a month
after 28 Feb (itself clamped from 31 Jan) must be 31 Mar, not 28 Mar. So nothing here "adds a
month to a date" without being told the day to aim for.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

ONE_DAY = timedelta(days=1)
# The last day whose successor still exists: a window must end before it so that the instant it
# closes (the next midnight) can be computed.
LAST_USABLE_DAY = date(9999, 12, 30)
_LAST_MONTH_INDEX = 9999 * 12 + 11


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first_day` to `last_day`, both inclusive."""

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(f"empty period: {self.first_day} > {self.last_day}")

    def __contains__(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def overlaps(self, other: Period) -> bool:
        return self.first_day <= other.last_day and other.first_day <= self.last_day

    def cut(self, first: date, last: date | None) -> Period | None:
        """The part of this period inside [first, last] (`last=None`: open-ended); None if empty."""
        lo = max(self.first_day, first)
        hi = self.last_day if last is None else min(self.last_day, last)
        return Period(lo, hi) if lo <= hi else None


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, days_in_month(year, month))


def clamp_day(year: int, month: int, day: int) -> date:
    """Day `day` of the month, or the month's last day when the month is shorter (31 -> 28 Feb)."""
    if day < 1:
        raise ValueError(f"day must be >= 1, got {day}")
    return date(year, month, min(day, days_in_month(year, month)))


def month_index(day: date) -> int:
    """Months since year 0, so that month arithmetic is integer arithmetic."""
    return day.year * 12 + day.month - 1


def month_of_index(index: int) -> tuple[int, int]:
    """(year, month) of a `month_index`."""
    year, month0 = divmod(index, 12)
    return year, month0 + 1


def add_months(day: date, months: int, *, anchor_day: int | None = None) -> date:
    """`day` moved by `months` months, on `anchor_day` (default `day.day`), clamped to month end.

    Pass the original rule day as `anchor_day` when chaining, or compute every step from the same
    origin: the result is clamped, so feeding it back in would drift.
    """
    year, month = month_of_index(month_index(day) + months)
    return clamp_day(year, month, day.day if anchor_day is None else anchor_day)


def months_period(first_month: int, months: int) -> Period | None:
    """`months` whole months from month index `first_month`; None outside the supported range."""
    last_month = first_month + months - 1
    if first_month < month_index(date.min) or last_month > _LAST_MONTH_INDEX:
        return None
    end = last_day_of_month(*month_of_index(last_month))
    return Period(date(*month_of_index(first_month), 1), end) if end <= LAST_USABLE_DAY else None


def iso_week_start(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def shift_days(day: date, days: int) -> date | None:
    """`day` plus `days` days, or None outside the supported range (year 1 to 9999-12-30)."""
    ordinal = day.toordinal() + days
    if ordinal < 1 or ordinal > LAST_USABLE_DAY.toordinal():
        return None
    return date.fromordinal(ordinal)


def require_aware(at: datetime) -> datetime:
    """`at` itself, or ValueError if naive: a naive instant in billing is a bug, never a default."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {at!r}")
    return at
