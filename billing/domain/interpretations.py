"""Every choice we made where Juspay's documents are silent or ambiguous, in one place.

SPEC §3 marks some rules "(interpretation)"; the rest here are ours, made while building the domain.
Each is a named constant or a small function so that changing one is a one-line change here, with
the tests that pin it. Kept next to their tables instead, each marked "(interpretation)" there:

- `outcomes`: the soft/hard failure codes and keywords, AUTHORIZED read as pending, and the
  4xx answers read as "reconcile" (DUPLICATE_ORDER_ID, our credentials refused); SPEC §5 wants
  that classification in one module.
- `mandate.MANDATE_TRANSITIONS`: FAILURE (registration failed) is reached only from CREATED or
  PENDING; a repeated status is a no-op.
- `debit`: a debit never moves to its own state; an unreadable answer about a PENDING order
  leaves it PENDING.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from billing.domain.calendar import (
    Period,
    clamp_day,
    last_day_of_month,
    month_index,
    month_of_index,
)
from billing.domain.frequency import Frequency, RuleType

# --- FORTNIGHTLY (SPEC §3) -------------------------------------------------------------------

FORTNIGHT_FIRST_HALF_LAST_DAY = 15
"""(interpretation, SPEC §3) A fortnight is half a calendar month: days 1-15, then 16 to the end."""

FORTNIGHTLY_RULE_MAX = 16
"""(interpretation, SPEC §3) rule_value 1-16 is the day within the half (16: a long half's end)."""


def fortnight_index(day: date) -> int:
    """Half-months since year 0: two per month, the second starting on the 16th."""
    return month_index(day) * 2 + (day.day > FORTNIGHT_FIRST_HALF_LAST_DAY)


def fortnight_period(index: int) -> Period:
    year, month = month_of_index(index // 2)
    if index % 2 == 0:
        return Period(date(year, month, 1), date(year, month, FORTNIGHT_FIRST_HALF_LAST_DAY))
    return Period(
        date(year, month, FORTNIGHT_FIRST_HALF_LAST_DAY + 1), last_day_of_month(year, month)
    )


def fortnight_rule_day(half: Period, rule_value: int) -> date:
    """(interpretation, SPEC §3) Day `rule_value` of the half, clamped to the half's last day.

    First half: 16 -> the 15th. Second half: 1 -> the 16th, 16 -> the 31st, clamped to the month's
    end (30th, 28th/29th in February).
    """
    offset = min(rule_value, half.days) - 1
    return date.fromordinal(half.first_day.toordinal() + offset)


# --- BIMONTHLY, QUARTERLY, HALFYEARLY, YEARLY (SPEC §3) --------------------------------------

MONTHS_PER_PERIOD: Mapping[Frequency, int] = MappingProxyType(
    {
        Frequency.MONTHLY: 1,
        # (interpretation) BIMONTHLY is "every two months", not "twice a month" (SPEC §3 table).
        Frequency.BIMONTHLY: 2,
        Frequency.QUARTERLY: 3,
        Frequency.HALFYEARLY: 6,
        Frequency.YEARLY: 12,
    }
)


def first_block_month(start_date: date) -> int:
    """(interpretation, SPEC §3) Multi-month periods are counted from the month of `start_date`.

    A QUARTERLY mandate starting in February has the quarters Feb-Apr, May-Jul, ..., not calendar
    quarters. Returns a `calendar.month_index`.
    """
    return month_index(start_date)


def block_rule_day(period: Period, rule_value: int) -> date:
    """(SPEC §3) The rule day lies in the period's first month, clamped to that month's end."""
    first = period.first_day
    return clamp_day(first.year, first.month, rule_value)


# --- Terms as they arrive ---------------------------------------------------------------------


def default_rule(frequency: Frequency, start_date: date) -> tuple[RuleType | None, int | None]:
    """(interpretation) The rule of a mandate Juspay sent without rule_type / rule_value.

    Juspay's MANDATE_* webhook samples carry MONTHLY with no rule; we read that as "ON the start
    date's day": its ISO weekday for WEEKLY, its day within the half for FORTNIGHTLY, its day of
    the month for the monthly family. DAILY, ONETIME and ASPRESENTED take no rule. When Juspay
    sends only one of the two, the other is taken from here.
    """
    if not frequency.uses_rule:
        return None, None
    if frequency is Frequency.WEEKLY:
        return RuleType.ON, start_date.isoweekday()
    if frequency is Frequency.FORTNIGHTLY:
        half_first = fortnight_period(fortnight_index(start_date)).first_day
        return RuleType.ON, start_date.day - half_first.day + 1
    return RuleType.ON, start_date.day


REJECT_UNUSED_RULE = True
"""(interpretation) rule_type / rule_value given for DAILY, ONETIME or ASPRESENTED are refused
("not used for DAILY") on file import and the CLI, where they betray a wrong row. Terms read from
Juspay itself (`parse_terms(..., from_gateway=True)`) drop them instead: the gateway is the
authority on a mandate that exists (e.g. Razorpay-backed mandates get rule_type rewritten)."""

GATEWAY_DEFAULT_FREQUENCY = Frequency.ASPRESENTED
"""Juspay documents ASPRESENTED as the default frequency; applied only to terms read from Juspay.
A file row or CLI call without a frequency is refused instead (interpretation)."""


def end_date_acceptable(start_date: date, end_date: date) -> bool:
    """(interpretation) SPEC §2 "end_date after start_date": strictly after, a one-day mandate is
    refused."""
    return end_date > start_date


# --- Dates ------------------------------------------------------------------------------------

EPOCH_MIN_SECONDS = 946_684_800
"""(interpretation) Epoch seconds before 2000-01-01T00:00Z are refused as implausible: an 8-digit
"20270301" would otherwise be read silently as a date in 1970. Digit strings are epoch seconds,
never compact ISO dates, because that is how Juspay sends start_date / end_date."""


def mandate_date_of(instant: datetime, tz: ZoneInfo) -> date:
    """(interpretation) The mandate date of an instant is its calendar date in the mandate's zone.

    Juspay sends start_date / end_date as epoch seconds (UTC); 1639802535 is 2021-12-18 in Kolkata,
    and 20:00 UTC on day D is D+1 there. A naive date-time is read as local time already. The
    resulting end date is inclusive, like an ISO end date from a file.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        return instant.date()
    return instant.astimezone(tz).date()


def end_date_of_instant(instant: datetime, tz: ZoneInfo) -> date:
    """(interpretation) An end_date given as an instant ends on the last local day it fully covers.

    Juspay sends end_date as epoch seconds at 23:59:59 UTC (its sample 3093465599 is
    2068-01-10T23:59:59Z), which is 05:29:59 the next day in Kolkata; the mandate expires at that
    instant, so a debit planned later that day would hit an expired mandate. A day counts when
    its following midnight comes no later than one second after the instant: 23:59:59 local keeps
    its day, 05:29:59 local gives the day before. An end given as a date is inclusive as it is.
    """
    return mandate_date_of(instant + timedelta(seconds=1), tz) - timedelta(days=1)


# --- Presented debits -------------------------------------------------------------------------

ONETIME_DEBITS = 1
"""SPEC §3: a ONETIME mandate is presented once; its only debit is number 0."""
