from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.polling import next_check_in

MAX = timedelta(days=7)


def schedule(max_age: timedelta = MAX) -> list[timedelta]:
    """The ages at which a never-settling order is checked."""
    ages, age, checks = [], timedelta(0), 0
    while (wait := next_check_in(checks, age, max_age)) is not None:
        age += wait
        checks += 1
        ages.append(age)
    return ages


def test_the_default_back_off_is_1_5_30_minutes_then_hourly_then_six_hourly() -> None:
    ages = schedule()
    assert ages[:3] == [timedelta(minutes=1), timedelta(minutes=6), timedelta(minutes=36)]
    assert ages[3] - ages[2] == timedelta(hours=1)
    hourly = [b - a for a, b in pairwise(ages) if b <= timedelta(hours=36)]
    assert set(hourly[3:]) == {timedelta(hours=1)}
    late = [b - a for a, b in pairwise(ages) if a >= timedelta(hours=36)]
    assert set(late[:-1]) == {timedelta(hours=6)}
    assert ages[-1] == MAX  # the last look is at the max age, then manual review


def test_past_max_age_there_is_no_next_check() -> None:
    assert next_check_in(50, MAX, MAX) is None


@given(st.integers(0, 500), st.integers(0, 10 * 86400), st.integers(60, 30 * 86400))
def test_a_check_never_lands_past_the_max_age(checks: int, age_s: int, max_s: int) -> None:
    age, max_age = timedelta(seconds=age_s), timedelta(seconds=max_s)
    wait = next_check_in(checks, age, max_age)
    if age >= max_age:
        assert wait is None
    else:
        assert wait is not None
        assert timedelta(0) < wait <= timedelta(hours=6)
        assert age + wait <= max_age


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        next_check_in(-1, timedelta(0), MAX)
