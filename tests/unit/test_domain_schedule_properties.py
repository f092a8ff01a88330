"""Properties of the debit calendar over random terms, zones and debit times (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.calendar import ONE_DAY
from billing.domain.mandate import (
    RULE_VALUE_RANGES,
    AmountRule,
    Frequency,
    PaymentMethodType,
    RuleType,
    Terms,
)
from billing.domain.schedule import (
    Cycle,
    DebitCalendar,
    cycle,
    cycle_number_at,
    cycles_between,
    first_open_cycle,
    next_cycle,
    period_of,
)

PERIODIC = [f for f in Frequency if f.is_periodic]
# Kolkata is the default; the others bring DST gaps and overlaps, one at local midnight (Havana).
ZONES = ["Asia/Kolkata", "UTC", "Europe/London", "America/New_York", "America/Havana"]


@st.composite
def terms_st(draw: st.DrawFn) -> Terms:
    frequency = draw(st.sampled_from(PERIODIC))
    rule_type = rule_value = None
    if frequency.uses_rule:
        rule_type = draw(st.sampled_from(RuleType))
        low, high = RULE_VALUE_RANGES[frequency]
        rule_value = draw(st.integers(low, high))
    start = draw(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
    length = draw(st.none() | st.integers(1, 2500))
    return Terms(
        frequency=frequency,
        rule_type=rule_type,
        rule_value=rule_value,
        amount_rule=AmountRule.VARIABLE,
        max_amount=Decimal("100"),
        currency="INR",
        start_date=start,
        end_date=None if length is None else start + timedelta(days=length),
        payment_method_type=PaymentMethodType.UPI,
    )


calendars = st.builds(
    DebitCalendar,
    tz=st.sampled_from(ZONES).map(ZoneInfo),
    debit_time=st.times(),
)


def instant_near(terms: Terms, offset_days: int, seconds: int) -> datetime:
    base = datetime.combine(terms.start_date, time(0), tzinfo=UTC)
    return base + timedelta(days=offset_days, seconds=seconds)


@settings(max_examples=500, deadline=None)
@given(terms=terms_st(), cal=calendars, number=st.integers(0, 400))
def test_the_planned_instant_lies_in_its_window_and_the_mandate_dates(
    terms: Terms, cal: DebitCalendar, number: int
) -> None:
    found = cycle(terms, number, cal)
    if found is None:
        return
    assert found.planned_at.tzinfo is UTC
    assert found.window.first_day in found.period
    assert found.window.last_day in found.period
    assert terms.covers(found.window.first_day)
    assert terms.covers(found.window.last_day)
    assert cal.local_date(found.planned_at) == found.window.first_day
    assert found.planned_at < found.window_closes_at
    assert cal.local_date(found.window_closes_at) == found.window.last_day + ONE_DAY


@settings(max_examples=300, deadline=None)
@given(terms=terms_st(), cal=calendars, first=st.integers(0, 300))
def test_periods_are_contiguous_and_windows_never_overlap(
    terms: Terms, cal: DebitCalendar, first: int
) -> None:
    previous: Cycle | None = None
    for number in range(first, first + 8):
        period, following = period_of(terms, number), period_of(terms, number + 1)
        assert period is not None
        assert following is not None
        assert following.first_day == period.last_day + ONE_DAY  # none skipped
        found = cycle(terms, number, cal)
        if found is None:
            # only the first period (cut by start_date) or the ones past end_date lack a debit
            assert number == 0 or (
                terms.end_date is not None and cycle(terms, number + 1, cal) is None
            )
            continue
        if previous is not None:
            assert not previous.window.overlaps(found.window)
            assert previous.window_closes_at <= found.planned_at
        previous = found


@settings(max_examples=400, deadline=None)
@given(terms=terms_st(), number=st.integers(0, 400), pick=st.floats(0, 1))
def test_cycle_number_at_round_trips(terms: Terms, number: int, pick: float) -> None:
    period = period_of(terms, number)
    assert period is not None
    inside = period.first_day + timedelta(days=int(pick * (period.days - 1)))
    for day in (period.first_day, inside, period.last_day):
        assert cycle_number_at(terms, day) == number
    assert cycle_number_at(terms, terms.start_date) == 0


def brute_first_open(terms: Terms, at: datetime, cal: DebitCalendar) -> Cycle | None:
    horizon = cal.local_date(at) + timedelta(days=800)
    number = 0
    while True:
        period = period_of(terms, number)
        assert period is not None
        if period.first_day > horizon:
            return None
        found = cycle(terms, number, cal)
        if found is not None and found.window_closes_at > at:
            return found
        number += 1


@settings(max_examples=300, deadline=None)
@given(
    terms=terms_st(),
    cal=calendars,
    offset_days=st.integers(-40, 500),
    seconds=st.integers(0, 86_399),
)
def test_first_open_cycle_agrees_with_a_brute_force_scan(
    terms: Terms, cal: DebitCalendar, offset_days: int, seconds: int
) -> None:
    at = instant_near(terms, offset_days, seconds)
    assert first_open_cycle(terms, at, cal) == brute_first_open(terms, at, cal)


@settings(max_examples=200, deadline=None)
@given(
    terms=terms_st(),
    cal=calendars,
    offset_days=st.integers(-40, 400),
    span_days=st.integers(0, 120),
    seconds=st.integers(0, 86_399),
)
def test_cycles_between_agrees_with_a_brute_force_scan(
    terms: Terms, cal: DebitCalendar, offset_days: int, span_days: int, seconds: int
) -> None:
    start = instant_near(terms, offset_days, seconds)
    end = start + timedelta(days=span_days)
    last = cycle_number_at(terms, cal.local_date(end))
    candidates = (cycle(terms, n, cal) for n in range(0 if last is None else last + 2))
    expected = [c for c in candidates if c is not None and start <= c.planned_at < end]
    assert list(cycles_between(terms, start, end, cal)) == expected


@settings(max_examples=300, deadline=None)
@given(terms=terms_st(), cal=calendars, after=st.integers(-3, 300))
def test_next_cycle_is_the_next_number_with_a_debit(
    terms: Terms, cal: DebitCalendar, after: int
) -> None:
    scan = (cycle(terms, n, cal) for n in range(max(after + 1, 0), after + 6))
    expected = next((c for c in scan if c is not None), None)
    assert next_cycle(terms, after, cal) == expected
