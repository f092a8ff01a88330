from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.polling import next_check_at, next_check_in

MAX = timedelta(days=7)
SENT = datetime(2027, 3, 1, 4, 30, tzinfo=UTC)


def schedule(max_age: timedelta = MAX) -> list[timedelta]:
    """The ages at which a never-settling order is checked."""
    ages, age = [], timedelta(0)
    while (wait := next_check_in(age, max_age)) is not None:
        age += wait
        ages.append(age)
    return ages


def test_the_default_back_off_is_1_5_30_minutes_then_hourly_then_six_hourly() -> None:
    ages = schedule()
    assert ages[:3] == [timedelta(minutes=1), timedelta(minutes=6), timedelta(minutes=36)]
    gaps = [(a, b - a) for a, b in pairwise(ages)]
    assert {gap for a, gap in gaps[2:] if a < timedelta(hours=35)} == {timedelta(hours=1)}
    assert {gap for a, gap in gaps if a >= timedelta(hours=42)} <= {
        timedelta(hours=6),
        MAX - ages[-2],
    }
    assert ages[-1] == MAX  # the last look is at the max age, then manual review


def test_a_late_check_keeps_the_rhythm() -> None:
    # checked at 50 min instead of 36 min: the next one is still on the hourly grid
    assert next_check_in(timedelta(minutes=50), MAX) == timedelta(minutes=46)


def test_past_max_age_there_is_no_next_check() -> None:
    assert next_check_in(MAX, MAX) is None
    assert next_check_at(SENT + MAX, sent_at=SENT, execution_date=None, max_age=MAX) is None


def test_an_order_held_until_its_execution_date_is_checked_just_after_it() -> None:
    execution = SENT + timedelta(hours=26)
    moments = [SENT]
    while moments[-1] < execution + timedelta(hours=2):
        nxt = next_check_at(moments[-1], sent_at=SENT, execution_date=execution, max_age=MAX)
        assert nxt is not None
        moments.append(nxt)
    assert moments[1:4] == [SENT + timedelta(minutes=m) for m in (1, 6, 36)]
    assert execution + timedelta(minutes=1) in moments
    after = [m for m in moments if m > execution]
    assert after[:3] == [execution + timedelta(minutes=m) for m in (1, 6, 36)]


def test_the_max_age_runs_from_the_execution_date() -> None:
    execution = SENT + timedelta(hours=26)
    late = execution + MAX - timedelta(minutes=1)
    assert next_check_at(late, sent_at=SENT, execution_date=execution, max_age=MAX) is not None
    assert (
        next_check_at(execution + MAX, sent_at=SENT, execution_date=execution, max_age=MAX) is None
    )


@given(st.integers(0, 10 * 86400), st.integers(60, 30 * 86400))
def test_a_check_never_lands_past_the_max_age(age_s: int, max_s: int) -> None:
    age, max_age = timedelta(seconds=age_s), timedelta(seconds=max_s)
    wait = next_check_in(age, max_age)
    if age >= max_age:
        assert wait is None
    else:
        assert wait is not None
        assert timedelta(0) < wait <= timedelta(hours=6)
        assert age + wait <= max_age


def test_negative_ages_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        next_check_in(timedelta(seconds=-1), MAX)
