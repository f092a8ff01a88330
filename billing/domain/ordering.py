"""Order safety (SPEC §7): an event older than what is applied does not move a record back.

Webhooks arrive late, twice and out of order; polling and imports interleave with them. Every
status a record holds carries the time of the evidence it came from (`current_at`), and a new
status dated `event_at` is applied only when

- the current status is not final (a final state is never left, whatever the date);
- it differs from the current one (a repeated status changes nothing but its time, see
  `held_at`);
- it is final (ending is never a step back, so a late REVOKED still ends an ACTIVE mandate), or
  it is not dated before the current one. An undated side (an import, a local expiry) does not
  count as older.

Whether the move itself is allowed (ACTIVE -> FAILURE is not, for a mandate) is the record's own
state machine; this rule only decides about time.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import TypeVar

S = TypeVar("S", bound=Hashable)


def should_apply(
    current: S,
    current_at: datetime | None,
    new: S,
    event_at: datetime | None,
    *,
    final: frozenset[S],
) -> bool:
    """True when `new` (dated `event_at`) may replace `current` (held since `current_at`)."""
    if current in final or new == current:
        return False
    if new in final:
        return True
    return not is_stale(current_at, event_at)


def is_stale(current_at: datetime | None, event_at: datetime | None) -> bool:
    """An event dated strictly before the evidence already applied; equal times are not stale."""
    return current_at is not None and event_at is not None and event_at < current_at


def held_at(current_at: datetime | None, event_at: datetime | None) -> datetime | None:
    """The time a record's status is held from after seeing an event: the later of the two.

    Also for an event that repeats the current status: a newer MANDATE_ACTIVATED for an ACTIVE
    mandate must still make an older MANDATE_PAUSED that arrives after it stale.
    """
    if current_at is None or event_at is None:
        return current_at or event_at
    return max(current_at, event_at)


def order_news_applies(
    current_at: datetime | None, news_at: datetime | None, *, charged: bool
) -> bool:
    """May news of an order dated `news_at` move it, when we learned its status at `current_at`?

    Per order, not only per mandate (SPEC §7): an ORDER_FAILED dated before the poll that saw
    the order pending again (Juspay retried it) is stale and must not start our own retry. A
    charge is the exception: it is never ignored, whatever its date (the money moved).
    """
    return charged or not is_stale(current_at, news_at)
