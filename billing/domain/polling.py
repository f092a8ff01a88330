"""When to look at a pending order again (SPEC §6), as a pure function of its age.

1 min, 5 min, 30 min after sending, then hourly until 36 h, then every 6 h until the max age;
past it the order goes to manual review. The waits live in `next_check_at`, never in a
Celery countdown (a countdown longer than the broker's visibility timeout is redelivered).
"""

from __future__ import annotations

from datetime import timedelta

EARLY_CHECKS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
HOURLY_UNTIL = timedelta(hours=36)
HOURLY = timedelta(hours=1)
SLOW = timedelta(hours=6)


def next_check_in(checks_done: int, age: timedelta, max_age: timedelta) -> timedelta | None:
    """The wait before the next status check, or None when the order is older than `max_age`.

    `checks_done` counts the status reads already made; `age` is the time since the order
    was sent. The last check lands exactly at `max_age`, so nothing waits past it.
    """
    if checks_done < 0 or age < timedelta(0):
        raise ValueError("checks_done and age must not be negative")
    if age >= max_age:
        return None
    if checks_done < len(EARLY_CHECKS):
        wait = EARLY_CHECKS[checks_done]
    elif age < HOURLY_UNTIL:
        wait = HOURLY
    else:
        wait = SLOW
    return min(wait, max_age - age)
