"""When to look at a pending order again (SPEC §6), as a pure function of its age.

Checks fall 1 min, 6 min and 36 min after the anchor (1, 5 and 30 min apart), then every hour
until 36 h, then every 6 h until the max age; past it the order goes to manual review. The
anchor is when the order was sent, or its execution date when Juspay holds it until then
(juspay flow), so the first checks land when the order can actually settle. Being a function
of age rather than of a count of checks, a late or repeated check never shifts the rhythm.
The waits live in `next_check_at`, never in a Celery countdown (a countdown longer than the
broker's visibility timeout is redelivered).
"""

from __future__ import annotations

from datetime import datetime, timedelta

EARLY_CHECKS = (timedelta(minutes=1), timedelta(minutes=6), timedelta(minutes=36))
HOURLY_UNTIL = timedelta(hours=36)
HOURLY = timedelta(hours=1)
SLOW = timedelta(hours=6)
AFTER_EXECUTION_DATE = timedelta(minutes=1)


def next_check_in(age: timedelta, max_age: timedelta) -> timedelta | None:
    """The wait from `age` to the next check, or None when the order is past `max_age`.

    The last check lands exactly at `max_age`, so nothing waits past it.
    """
    if age < timedelta(0):
        raise ValueError("age must not be negative")
    if age >= max_age:
        return None
    for mark in EARLY_CHECKS:
        if age < mark:
            return min(mark, max_age) - age
    last_early = EARLY_CHECKS[-1]
    if age < HOURLY_UNTIL:
        mark = last_early + HOURLY * ((age - last_early) // HOURLY + 1)
    else:
        mark = HOURLY_UNTIL + SLOW * ((age - HOURLY_UNTIL) // SLOW + 1)
    return min(mark, max_age) - age


def next_check_at(
    now: datetime,
    *,
    sent_at: datetime,
    execution_date: datetime | None,
    max_age: timedelta,
) -> datetime | None:
    """The instant of the next status check of a pending order; None past its max age.

    Before a future execution date the back-off runs from sending, with one check just after
    the execution date; from that date on it starts again from it.
    """
    due_from = execution_date if execution_date is not None and execution_date > sent_at else None
    if due_from is not None and now < due_from + AFTER_EXECUTION_DATE:
        wait = next_check_in(now - sent_at, max(max_age, due_from - sent_at + max_age))
        first_after = due_from + AFTER_EXECUTION_DATE
        return min(now + wait, first_after) if wait is not None else first_after
    anchor = due_from or sent_at
    wait = next_check_in(max(now - anchor, timedelta(0)), max_age)
    return None if wait is None else now + wait
