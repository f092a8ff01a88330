"""Cycles of a mandate: period, execution window and planned instant from (terms, cycle number).

Cycle 0 is the period containing start_date, cycle n the n-th period after it. Everything is a
pure function of the terms and the number; the "current" cycle at an instant is computed by
arithmetic, never by walking from cycle 0 (a DAILY mandate ten years old has 3,650 cycles).
Calendar rules are applied in the mandate's zone; instants are returned in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from billing.domain.calendar import (
    ONE_DAY,
    Period,
    iso_week_start,
    month_index,
    months_period,
    require_aware,
    shift_days,
)
from billing.domain.errors import InvalidField
from billing.domain.frequency import Frequency, RuleType
from billing.domain.interpretations import (
    MONTHS_PER_PERIOD,
    ONETIME_DEBITS,
    block_rule_day,
    first_block_month,
    fortnight_index,
    fortnight_period,
    fortnight_rule_day,
    mandate_date_of,
)
from billing.domain.mandate import Terms

# After the cycle at an instant, at most two more can lack a debit before one has it or the
# mandate ends (cycle 0 cut away by start_date, the last cut away by end_date).
_SEARCH_AHEAD = 3


@dataclass(frozen=True, slots=True)
class DebitCalendar:
    """The mandate's zone and the local time of day at which debits execute."""

    tz: ZoneInfo
    debit_time: time

    def __post_init__(self) -> None:
        if self.debit_time.tzinfo is not None:
            raise ValueError("debit_time is a local wall-clock time; give it without tzinfo")

    def instant(self, day: date, at: time | None = None) -> datetime:
        """`day` at `at` (default: the debit time) in the mandate zone, as an aware UTC instant.

        A wall time a DST change skips is moved forward by the gap (00:00 on a day that starts
        at 01:00 is 01:00), and a repeated one is its first occurrence, so the instant always
        falls on `day` and after the previous day's end.
        """
        wall = (self.debit_time if at is None else at).replace(fold=0)
        return datetime.combine(day, wall, tzinfo=self.tz).astimezone(UTC)

    def local_date(self, at: datetime) -> date:
        return mandate_date_of(require_aware(at), self.tz)


@dataclass(frozen=True, slots=True)
class Cycle:
    """One billing period and its debit: `window` (inclusive days, inside the mandate's dates),
    `planned_at` (the window's first day at the debit time, UTC) and `window_closes_at` (the
    midnight after the window's last day, UTC): a retry must be sent before it."""

    number: int
    period: Period
    window: Period
    planned_at: datetime
    window_closes_at: datetime


def window_closes_at(window: Period, cal: DebitCalendar) -> datetime:
    return cal.instant(window.last_day + ONE_DAY, time(0))


def period_of(terms: Terms, number: int) -> Period | None:
    """The period of cycle `number`, whatever the window and end_date; None if not periodic."""
    if number < 0 or not terms.frequency.is_periodic:
        return None
    start = terms.start_date
    frequency = terms.frequency
    if frequency is Frequency.DAILY:
        day = shift_days(start, number)
        return None if day is None else Period(day, day)
    if frequency is Frequency.WEEKLY:
        monday = shift_days(iso_week_start(start), 7 * number)
        sunday = None if monday is None else shift_days(monday, 6)
        return None if monday is None or sunday is None else Period(monday, sunday)
    if frequency is Frequency.FORTNIGHTLY:
        half = fortnight_index(start) + number
        month = months_period(half // 2, 1)  # None out of range
        return None if month is None else fortnight_period(half)
    months = MONTHS_PER_PERIOD[frequency]
    return months_period(first_block_month(start) + number * months, months)


def cycle_number_at(terms: Terms, day: date) -> int | None:
    """The cycle whose period contains `day`; None before cycle 0 or for presented frequencies."""
    frequency = terms.frequency
    start = terms.start_date
    if not frequency.is_periodic:
        return None
    if frequency is Frequency.DAILY:
        number = (day - start).days
    elif frequency is Frequency.WEEKLY:
        number = (iso_week_start(day) - iso_week_start(start)).days // 7
    elif frequency is Frequency.FORTNIGHTLY:
        number = fortnight_index(day) - fortnight_index(start)
    else:
        number = (month_index(day) - first_block_month(start)) // MONTHS_PER_PERIOD[frequency]
    return number if number >= 0 else None


def cycle(terms: Terms, number: int, cal: DebitCalendar) -> Cycle | None:
    """Cycle `number`, or None when it has no debit: its window lies outside the mandate's dates,
    the number is negative, or the frequency is presented (ONETIME, ASPRESENTED)."""
    period = period_of(terms, number)
    if period is None:
        return None
    window = _rule_window(terms, period).cut(terms.start_date, terms.end_date)
    if window is None:
        return None
    return _make_cycle(number, period, window, cal)


def first_open_cycle(terms: Terms, at: datetime, cal: DebitCalendar) -> Cycle | None:
    """The lowest-numbered cycle with a debit whose window has not closed at `at`."""
    number = cycle_number_at(terms, cal.local_date(at))
    for candidate in _candidates(terms, 0 if number is None else number, cal=cal):
        if candidate.window_closes_at > at:
            return candidate
    return None


def next_cycle(terms: Terms, after_number: int, cal: DebitCalendar) -> Cycle | None:
    """The first cycle with a debit numbered above `after_number`; None past end_date."""
    return next(iter(_candidates(terms, max(after_number + 1, 0), cal=cal)), None)


def cycles_between(
    terms: Terms, start: datetime, end: datetime, cal: DebitCalendar
) -> Iterator[Cycle]:
    """Cycles whose planned instant lies in [start, end), in order."""
    require_aware(start)
    require_aware(end)
    number = cycle_number_at(terms, cal.local_date(start))
    number = 0 if number is None else number
    while True:
        period = period_of(terms, number)
        if period is None or _past_end(terms, period):
            return
        found = cycle(terms, number, cal)
        if found is not None:
            if found.planned_at >= end:
                return
            if found.planned_at >= start:
                yield found
        number += 1


def presented_cycle(terms: Terms, number: int, on: date, cal: DebitCalendar) -> Cycle:
    """A merchant-presented debit (ONETIME, ASPRESENTED) on day `on`: window and period are `on`."""
    if terms.frequency.is_periodic:
        raise InvalidField("frequency", f"{terms.frequency} debits follow the calendar")
    if number < 0:
        raise InvalidField("number", f"must not be negative, got {number}")
    if terms.frequency is Frequency.ONETIME and number >= ONETIME_DEBITS:
        raise InvalidField("number", "a ONETIME mandate is debited once")
    if not terms.covers(on):
        raise InvalidField("on", f"{on} is outside the mandate's dates")
    day = Period(on, on)
    return _make_cycle(number, day, day, cal)


def _make_cycle(number: int, period: Period, window: Period, cal: DebitCalendar) -> Cycle:
    return Cycle(
        number=number,
        period=period,
        window=window,
        planned_at=cal.instant(window.first_day),
        window_closes_at=window_closes_at(window, cal),
    )


def _rule_window(terms: Terms, period: Period) -> Period:
    if terms.frequency is Frequency.DAILY:
        return period
    rule_type, rule_value = terms.rule_type, terms.rule_value
    if rule_type is None or rule_value is None:  # Terms refuses this; narrows the types
        raise InvalidField("rule_type", f"required for {terms.frequency}")
    if terms.frequency is Frequency.WEEKLY:
        rule_day = period.first_day + (rule_value - 1) * ONE_DAY
    elif terms.frequency is Frequency.FORTNIGHTLY:
        rule_day = fortnight_rule_day(period, rule_value)
    else:
        rule_day = block_rule_day(period, rule_value)
    if rule_type is RuleType.ON:
        return Period(rule_day, rule_day)
    if rule_type is RuleType.BEFORE:
        return Period(period.first_day, rule_day)
    return Period(rule_day, period.last_day)


def _past_end(terms: Terms, period: Period) -> bool:
    return terms.end_date is not None and period.first_day > terms.end_date


def _candidates(terms: Terms, number: int, *, cal: DebitCalendar) -> Iterator[Cycle]:
    for candidate in range(number, number + _SEARCH_AHEAD):
        found = cycle(terms, candidate, cal)
        if found is not None:
            yield found
