"""The debit calendar by table: every frequency x rule_type, month ends, cuts, first and last."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.domain.calendar import Period, add_months, clamp_day, iso_week_start
from billing.domain.errors import InvalidField
from billing.domain.mandate import AmountRule, Frequency, PaymentMethodType, RuleType, Terms
from billing.domain.schedule import (
    Cycle,
    DebitCalendar,
    cycle,
    cycle_number_at,
    cycles_between,
    first_open_cycle,
    next_cycle,
    period_of,
    presented_cycle,
)

KOLKATA = ZoneInfo("Asia/Kolkata")
CAL = DebitCalendar(KOLKATA, time(10, 0))


def d(text: str) -> date:
    return date.fromisoformat(text)


def make_terms(
    frequency: str,
    rule_type: str | None = None,
    rule_value: int | None = None,
    *,
    start: str = "2027-01-01",
    end: str | None = None,
) -> Terms:
    return Terms(
        frequency=Frequency(frequency),
        rule_type=RuleType(rule_type) if rule_type else None,
        rule_value=rule_value,
        amount_rule=AmountRule.VARIABLE,
        max_amount=Decimal("399"),
        currency="INR",
        start_date=d(start),
        end_date=d(end) if end else None,
        payment_method_type=PaymentMethodType.UPI,
    )


def must(found: Cycle | None) -> Cycle:
    assert found is not None
    return found


# "FREQUENCY [RULE_TYPE RULE_VALUE]", start_date, cycle number, period, window (None: no debit)
TABLE: list[tuple[str, str, int, str, str | None]] = [
    # DAILY: the day itself
    ("DAILY", "2027-03-01", 0, "2027-03-01 2027-03-01", "2027-03-01"),
    ("DAILY", "2027-03-01", 31, "2027-04-01 2027-04-01", "2027-04-01"),
    ("DAILY", "2028-02-28", 1, "2028-02-29 2028-02-29", "2028-02-29"),
    # WEEKLY: ISO weeks, 1 = Monday; 2027-03-03 is a Wednesday
    ("WEEKLY ON 1", "2027-03-03", 1, "2027-03-08 2027-03-14", "2027-03-08"),
    ("WEEKLY ON 7", "2027-03-03", 0, "2027-03-01 2027-03-07", "2027-03-07"),
    ("WEEKLY ON 3", "2027-03-03", 0, "2027-03-01 2027-03-07", "2027-03-03"),
    ("WEEKLY BEFORE 3", "2027-03-03", 0, "2027-03-01 2027-03-07", "2027-03-03"),
    ("WEEKLY BEFORE 5", "2027-03-03", 2, "2027-03-15 2027-03-21", "2027-03-15 2027-03-19"),
    ("WEEKLY AFTER 5", "2027-03-03", 0, "2027-03-01 2027-03-07", "2027-03-05 2027-03-07"),
    ("WEEKLY AFTER 1", "2027-12-29", 1, "2028-01-03 2028-01-09", "2028-01-03 2028-01-09"),
    # FORTNIGHTLY: halves 1-15 and 16-end; rule = day within the half, clamped
    ("FORTNIGHTLY ON 16", "2027-02-01", 0, "2027-02-01 2027-02-15", "2027-02-15"),
    ("FORTNIGHTLY ON 16", "2027-02-01", 1, "2027-02-16 2027-02-28", "2027-02-28"),
    ("FORTNIGHTLY ON 16", "2028-02-01", 1, "2028-02-16 2028-02-29", "2028-02-29"),
    ("FORTNIGHTLY ON 16", "2027-02-01", 3, "2027-03-16 2027-03-31", "2027-03-31"),
    ("FORTNIGHTLY ON 16", "2027-02-01", 5, "2027-04-16 2027-04-30", "2027-04-30"),
    ("FORTNIGHTLY ON 15", "2027-04-01", 1, "2027-04-16 2027-04-30", "2027-04-30"),
    ("FORTNIGHTLY ON 1", "2027-02-01", 1, "2027-02-16 2027-02-28", "2027-02-16"),
    ("FORTNIGHTLY ON 1", "2027-02-20", 0, "2027-02-16 2027-02-28", None),
    ("FORTNIGHTLY BEFORE 5", "2027-02-01", 1, "2027-02-16 2027-02-28", "2027-02-16 2027-02-20"),
    ("FORTNIGHTLY AFTER 14", "2027-02-01", 1, "2027-02-16 2027-02-28", "2027-02-28"),
    ("FORTNIGHTLY AFTER 10", "2027-02-01", 0, "2027-02-01 2027-02-15", "2027-02-10 2027-02-15"),
    # MONTHLY: 31 -> 28 Feb -> 31 Mar (anchored, no drift); leap year 2028
    ("MONTHLY ON 31", "2027-01-01", 0, "2027-01-01 2027-01-31", "2027-01-31"),
    ("MONTHLY ON 31", "2027-01-01", 1, "2027-02-01 2027-02-28", "2027-02-28"),
    ("MONTHLY ON 31", "2027-01-01", 2, "2027-03-01 2027-03-31", "2027-03-31"),
    ("MONTHLY ON 31", "2027-01-01", 3, "2027-04-01 2027-04-30", "2027-04-30"),
    ("MONTHLY ON 31", "2028-01-01", 1, "2028-02-01 2028-02-29", "2028-02-29"),
    ("MONTHLY ON 31", "2028-01-01", 2, "2028-03-01 2028-03-31", "2028-03-31"),
    ("MONTHLY ON 30", "2027-12-15", 2, "2028-02-01 2028-02-29", "2028-02-29"),
    ("MONTHLY BEFORE 31", "2027-01-01", 1, "2027-02-01 2027-02-28", "2027-02-01 2027-02-28"),
    ("MONTHLY BEFORE 5", "2027-01-01", 0, "2027-01-01 2027-01-31", "2027-01-01 2027-01-05"),
    ("MONTHLY BEFORE 5", "2027-01-03", 0, "2027-01-01 2027-01-31", "2027-01-03 2027-01-05"),
    ("MONTHLY AFTER 31", "2027-01-01", 1, "2027-02-01 2027-02-28", "2027-02-28"),
    ("MONTHLY AFTER 10", "2027-01-01", 1, "2027-02-01 2027-02-28", "2027-02-10 2027-02-28"),
    ("MONTHLY AFTER 10", "2027-01-20", 0, "2027-01-01 2027-01-31", "2027-01-20 2027-01-31"),
    ("MONTHLY ON 15", "2027-01-20", 0, "2027-01-01 2027-01-31", None),
    # BIMONTHLY (every 2 months), counted from start_date's month
    ("BIMONTHLY ON 30", "2027-11-15", 0, "2027-11-01 2027-12-31", "2027-11-30"),
    ("BIMONTHLY ON 30", "2027-11-15", 1, "2028-01-01 2028-02-29", "2028-01-30"),
    ("BIMONTHLY ON 31", "2027-12-15", 0, "2027-12-01 2028-01-31", "2027-12-31"),
    ("BIMONTHLY BEFORE 31", "2028-02-01", 0, "2028-02-01 2028-03-31", "2028-02-01 2028-02-29"),
    ("BIMONTHLY AFTER 20", "2027-01-01", 1, "2027-03-01 2027-04-30", "2027-03-20 2027-04-30"),
    # QUARTERLY from the start month (Feb-Apr, May-Jul, ...), not calendar quarters
    ("QUARTERLY ON 31", "2027-02-10", 0, "2027-02-01 2027-04-30", "2027-02-28"),
    ("QUARTERLY ON 31", "2027-02-10", 1, "2027-05-01 2027-07-31", "2027-05-31"),
    ("QUARTERLY ON 31", "2027-02-10", 2, "2027-08-01 2027-10-31", "2027-08-31"),
    ("QUARTERLY ON 31", "2027-02-10", 3, "2027-11-01 2028-01-31", "2027-11-30"),
    ("QUARTERLY ON 31", "2027-02-10", 4, "2028-02-01 2028-04-30", "2028-02-29"),
    ("QUARTERLY ON 5", "2027-02-10", 0, "2027-02-01 2027-04-30", None),
    ("QUARTERLY BEFORE 5", "2027-02-10", 1, "2027-05-01 2027-07-31", "2027-05-01 2027-05-05"),
    ("QUARTERLY AFTER 5", "2027-02-10", 0, "2027-02-01 2027-04-30", "2027-02-10 2027-04-30"),
    # HALFYEARLY and YEARLY
    ("HALFYEARLY BEFORE 31", "2027-08-01", 0, "2027-08-01 2028-01-31", "2027-08-01 2027-08-31"),
    ("HALFYEARLY BEFORE 31", "2027-08-01", 1, "2028-02-01 2028-07-31", "2028-02-01 2028-02-29"),
    ("HALFYEARLY ON 31", "2027-08-01", 1, "2028-02-01 2028-07-31", "2028-02-29"),
    ("HALFYEARLY AFTER 28", "2027-08-01", 1, "2028-02-01 2028-07-31", "2028-02-28 2028-07-31"),
    ("YEARLY ON 29", "2028-02-29", 0, "2028-02-01 2029-01-31", "2028-02-29"),
    ("YEARLY ON 29", "2028-02-29", 1, "2029-02-01 2030-01-31", "2029-02-28"),
    ("YEARLY ON 29", "2028-02-29", 4, "2032-02-01 2033-01-31", "2032-02-29"),
    ("YEARLY BEFORE 10", "2027-06-01", 2, "2029-06-01 2030-05-31", "2029-06-01 2029-06-10"),
    ("YEARLY AFTER 10", "2027-06-01", 2, "2029-06-01 2030-05-31", "2029-06-10 2030-05-31"),
]


def span(text: str) -> Period:
    first, _, last = text.partition(" ")
    return Period(d(first), d(last or first))


@pytest.mark.parametrize(("spec", "start", "number", "period", "window"), TABLE)
def test_the_calendar_table(
    spec: str, start: str, number: int, period: str, window: str | None
) -> None:
    frequency, *rule = spec.split()
    if rule:
        terms = make_terms(frequency, rule[0], int(rule[1]), start=start)
    else:
        terms = make_terms(frequency, start=start)
    assert period_of(terms, number) == span(period)
    found = cycle(terms, number, CAL)
    if window is None:
        assert found is None
        return
    found = must(found)
    assert found.number == number
    assert found.period == span(period)
    assert found.window == span(window)
    assert cycle_number_at(terms, found.window.first_day) == number


def test_every_frequency_and_rule_type_is_in_the_table() -> None:
    covered = {tuple(row[0].split()[:2]) for row in TABLE}
    for frequency in Frequency:
        if not frequency.is_periodic:
            continue
        kinds = [()] if frequency is Frequency.DAILY else [(r.value,) for r in RuleType]
        for kind in kinds:
            assert (frequency.value, *kind) in covered


def test_planned_instant_is_the_window_first_day_at_the_debit_time_in_utc() -> None:
    found = must(cycle(make_terms("MONTHLY", "AFTER", 10), 1, CAL))
    assert found.planned_at == datetime(2027, 2, 10, 4, 30, tzinfo=UTC)  # 10:00 IST
    assert found.planned_at.tzinfo is UTC
    # the window ends with 28 Feb: it closes at midnight IST, 18:30 UTC the day before
    assert found.window_closes_at == datetime(2027, 2, 28, 18, 30, tzinfo=UTC)


def test_the_debit_time_comes_from_the_calendar() -> None:
    late = DebitCalendar(KOLKATA, time(23, 30))
    found = must(cycle(make_terms("DAILY", start="2027-03-01"), 0, late))
    assert found.planned_at == datetime(2027, 3, 1, 18, 0, tzinfo=UTC)
    assert found.planned_at < found.window_closes_at == datetime(2027, 3, 1, 18, 30, tzinfo=UTC)


def test_a_dst_zone_keeps_the_local_debit_time() -> None:
    london = DebitCalendar(ZoneInfo("Europe/London"), time(10, 0))
    terms = make_terms("MONTHLY", "ON", 15, start="2027-01-01")
    assert must(cycle(terms, 0, london)).planned_at == datetime(2027, 1, 15, 10, tzinfo=UTC)
    assert must(cycle(terms, 6, london)).planned_at == datetime(2027, 7, 15, 9, tzinfo=UTC)


# --- cuts, first and last cycles --------------------------------------------------------------


def test_windows_are_cut_by_the_end_date() -> None:
    terms = make_terms("MONTHLY", "AFTER", 10, start="2027-01-01", end="2027-03-20")
    assert must(cycle(terms, 2, CAL)).window == Period(d("2027-03-10"), d("2027-03-20"))
    assert cycle(terms, 3, CAL) is None  # the period lies past end_date


def test_a_window_wholly_after_the_end_date_has_no_debit() -> None:
    terms = make_terms("MONTHLY", "ON", 25, start="2027-01-01", end="2027-03-20")
    assert must(cycle(terms, 1, CAL)).window.first_day == d("2027-02-25")
    assert cycle(terms, 2, CAL) is None
    assert next_cycle(terms, 1, CAL) is None


def test_first_and_last_cycle_of_a_mandate() -> None:
    terms = make_terms("MONTHLY", "ON", 15, start="2027-01-20", end="2027-06-10")
    before_start = datetime(2027, 1, 1, tzinfo=UTC)
    first = must(first_open_cycle(terms, before_start, CAL))
    assert (first.number, first.window.first_day) == (1, d("2027-02-15"))
    assert next_cycle(terms, -1, CAL) == first
    everything = datetime(2030, 1, 1, tzinfo=UTC)
    numbers = [c.number for c in cycles_between(terms, before_start, everything, CAL)]
    assert numbers == [1, 2, 3, 4]
    assert must(next_cycle(terms, 3, CAL)).window.first_day == d("2027-05-15")
    assert next_cycle(terms, 4, CAL) is None
    assert first_open_cycle(terms, datetime(2027, 5, 16, tzinfo=UTC), CAL) is None


def test_the_last_cycle_keeps_a_window_that_starts_on_the_end_date() -> None:
    terms = make_terms("WEEKLY", "BEFORE", 7, start="2027-03-01", end="2027-03-15")
    last = must(cycle(terms, 2, CAL))
    assert last.window == Period(d("2027-03-15"), d("2027-03-15"))
    assert cycle(terms, 3, CAL) is None


def test_negative_numbers_have_no_cycle() -> None:
    terms = make_terms("MONTHLY", "ON", 1)
    assert cycle(terms, -1, CAL) is None
    assert period_of(terms, -1) is None
    assert cycle_number_at(terms, d("2026-12-31")) is None


# --- the cycle at an instant ------------------------------------------------------------------


def test_first_open_cycle_switches_at_local_midnight() -> None:
    terms = make_terms("MONTHLY", "ON", 31, start="2027-01-01")
    # 28 Feb 23:59 IST is 18:29 UTC: the Feb window is still open
    assert must(first_open_cycle(terms, datetime(2027, 2, 28, 18, 29, tzinfo=UTC), CAL)).number == 1
    assert must(first_open_cycle(terms, datetime(2027, 2, 28, 18, 30, tzinfo=UTC), CAL)).number == 2


def test_a_utc_evening_is_the_next_day_in_kolkata() -> None:
    terms = make_terms("DAILY", start="2027-03-01")
    at = datetime(2027, 3, 10, 20, 0, tzinfo=UTC)  # 11 Mar 01:30 IST
    found = must(first_open_cycle(terms, at, CAL))
    assert found.window.first_day == d("2027-03-11")
    assert cycle_number_at(terms, CAL.local_date(at)) == 10


def test_first_open_cycle_of_a_daily_mandate_ten_years_old_is_computed_not_walked() -> None:
    terms = make_terms("DAILY", start="2017-01-01")
    at = datetime(2027, 1, 1, 12, tzinfo=UTC)
    found = must(first_open_cycle(terms, at, CAL))
    assert found.window.first_day == d("2027-01-01")
    assert found.number == (d("2027-01-01") - d("2017-01-01")).days


def test_first_open_cycle_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        first_open_cycle(make_terms("DAILY"), datetime(2027, 1, 1), CAL)


def test_cycles_between_is_half_open() -> None:
    terms = make_terms("DAILY", start="2027-03-01")
    start = datetime(2027, 3, 2, 4, 30, tzinfo=UTC)  # cycle 1 planned exactly here
    end = datetime(2027, 3, 4, 4, 30, tzinfo=UTC)  # cycle 3 planned exactly here
    assert [c.number for c in cycles_between(terms, start, end, CAL)] == [1, 2]


# --- presented debits: ONETIME and ASPRESENTED ------------------------------------------------


def test_presented_frequencies_have_no_calendar_cycles() -> None:
    for frequency in ("ONETIME", "ASPRESENTED"):
        terms = make_terms(frequency, end="2027-12-31")
        assert cycle(terms, 0, CAL) is None
        assert cycle_number_at(terms, d("2027-02-01")) is None
        assert first_open_cycle(terms, datetime(2027, 2, 1, tzinfo=UTC), CAL) is None
        year = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
        assert list(cycles_between(terms, *year, CAL)) == []


def test_a_presented_debit_is_planned_on_its_day() -> None:
    terms = make_terms("ASPRESENTED", end="2027-12-31")
    found = presented_cycle(terms, 7, d("2027-06-01"), CAL)
    assert found.number == 7
    assert found.window == found.period == Period(d("2027-06-01"), d("2027-06-01"))
    assert found.planned_at == datetime(2027, 6, 1, 4, 30, tzinfo=UTC)
    assert found.window_closes_at == datetime(2027, 6, 1, 18, 30, tzinfo=UTC)


@pytest.mark.parametrize("on", ["2026-12-31", "2028-01-01"])
def test_a_presented_debit_outside_the_mandate_dates_is_refused(on: str) -> None:
    terms = make_terms("ASPRESENTED", end="2027-12-31")
    with pytest.raises(InvalidField) as caught:
        presented_cycle(terms, 0, d(on), CAL)
    assert caught.value.field == "on"


def test_onetime_is_presented_once() -> None:
    terms = make_terms("ONETIME", end="2027-12-31")
    assert presented_cycle(terms, 0, d("2027-01-01"), CAL).number == 0
    with pytest.raises(InvalidField) as caught:
        presented_cycle(terms, 1, d("2027-01-02"), CAL)
    assert caught.value.field == "number"


def test_a_periodic_mandate_cannot_be_presented() -> None:
    with pytest.raises(InvalidField) as caught:
        presented_cycle(make_terms("MONTHLY", "ON", 1), 0, d("2027-01-01"), CAL)
    assert caught.value.field == "frequency"


def test_the_debit_calendar_refuses_an_aware_time() -> None:
    with pytest.raises(ValueError, match="without tzinfo"):
        DebitCalendar(KOLKATA, time(10, tzinfo=UTC))


# --- calendar helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "day", "expected"),
    [
        (2027, 2, 31, "2027-02-28"),
        (2028, 2, 31, "2028-02-29"),
        (2027, 4, 31, "2027-04-30"),
        (2027, 3, 31, "2027-03-31"),
        (2027, 3, 1, "2027-03-01"),
    ],
)
def test_clamp_day(year: int, month: int, day: int, expected: str) -> None:
    assert clamp_day(year, month, day) == d(expected)


def test_add_months_anchored_to_the_rule_day_never_drifts() -> None:
    origin = d("2027-01-31")
    assert [add_months(origin, n) for n in range(4)] == [
        d("2027-01-31"),
        d("2027-02-28"),
        d("2027-03-31"),
        d("2027-04-30"),
    ]
    assert add_months(d("2027-02-28"), 1, anchor_day=31) == d("2027-03-31")
    assert add_months(d("2027-01-15"), -1) == d("2026-12-15")


def test_iso_week_starts_on_monday() -> None:
    assert iso_week_start(d("2027-03-07")) == d("2027-03-01")  # a Sunday
    assert iso_week_start(d("2027-03-01")) == d("2027-03-01")


def test_period_cut_and_overlap() -> None:
    p = Period(d("2027-01-01"), d("2027-01-31"))
    assert p.cut(d("2027-01-10"), None) == Period(d("2027-01-10"), d("2027-01-31"))
    assert p.cut(d("2027-02-01"), None) is None
    assert p.cut(d("2026-01-01"), d("2027-01-05")) == Period(d("2027-01-01"), d("2027-01-05"))
    assert p.days == 31
    assert d("2027-01-15") in p
    assert p.overlaps(Period(d("2027-01-31"), d("2027-02-01")))
    assert not p.overlaps(Period(d("2027-02-01"), d("2027-02-01")))
    with pytest.raises(ValueError, match="empty"):
        Period(d("2027-01-02"), d("2027-01-01"))
    assert timedelta(days=p.days - 1) == p.last_day - p.first_day
