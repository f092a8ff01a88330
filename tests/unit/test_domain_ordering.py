"""Order safety: stale events never move a record back, final states are never left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.mandate import FINAL_MANDATE_STATUSES, MandateStatus
from billing.domain.ordering import held_at, is_stale, should_apply

S = MandateStatus
T0 = datetime(2027, 3, 1, tzinfo=UTC)
EARLIER, LATER = T0 - timedelta(minutes=1), T0 + timedelta(minutes=1)
FINAL = FINAL_MANDATE_STATUSES


@pytest.mark.parametrize(
    ("current", "current_at", "new", "event_at", "applies"),
    [
        (S.ACTIVE, T0, S.PAUSED, LATER, True),
        (S.ACTIVE, T0, S.PAUSED, T0, True),  # same instant: not stale
        (S.PAUSED, T0, S.ACTIVE, EARLIER, False),  # stale: does not move it back
        (S.ACTIVE, T0, S.ACTIVE, LATER, False),  # a repeat moves nothing
        (S.REVOKED, T0, S.ACTIVE, LATER, False),  # final is never left...
        (S.REVOKED, T0, S.EXPIRED, LATER, False),  # ...not even for another final
        (S.ACTIVE, T0, S.REVOKED, EARLIER, True),  # a late final still ends it
        (S.ACTIVE, None, S.PAUSED, EARLIER, True),  # undated current: nothing to be older than
        (S.PAUSED, T0, S.ACTIVE, None, True),  # undated event (an import, a local change)
    ],
)
def test_the_rule(
    current: S, current_at: datetime | None, new: S, event_at: datetime | None, applies: bool
) -> None:
    assert should_apply(current, current_at, new, event_at, final=FINAL) is applies


def test_held_time_is_the_later_one() -> None:
    assert held_at(T0, EARLIER) == T0
    assert held_at(T0, LATER) == LATER
    assert held_at(None, T0) == T0
    assert held_at(T0, None) == T0
    assert held_at(None, None) is None
    assert is_stale(T0, EARLIER)
    assert not is_stale(T0, T0)
    assert not is_stale(None, EARLIER)


Event = tuple[S, datetime]
STATUSES = st.sampled_from(list(S))
OPEN_STATUSES = st.sampled_from([s for s in S if s not in FINAL])


def fold(start: S, events: list[Event]) -> tuple[S, datetime | None, list[S]]:
    """Apply events in arrival order as a record does: (status, held time, statuses seen)."""
    status, at, seen = start, None, [start]
    for new, event_at in events:
        if new == status:
            at = held_at(at, event_at)
        elif should_apply(status, at, new, event_at, final=FINAL):
            status, at = new, held_at(at, event_at)
        seen.append(status)
    return status, at, seen


def events_of(statuses: st.SearchStrategy[S]) -> st.SearchStrategy[list[Event]]:
    """Events at distinct instants, in a random arrival order."""
    return st.lists(st.integers(0, 10**6), min_size=1, max_size=12, unique=True).flatmap(
        lambda minutes: (
            st.lists(statuses, min_size=len(minutes), max_size=len(minutes))
            .map(
                lambda ss: [
                    (s, T0 + timedelta(minutes=m)) for s, m in zip(ss, minutes, strict=True)
                ]
            )
            .flatmap(st.permutations)
        )
    )


@given(start=OPEN_STATUSES, events=events_of(OPEN_STATUSES))
def test_without_final_events_any_arrival_order_ends_at_the_newest_event(
    start: S, events: list[Event]
) -> None:
    status, at, _ = fold(start, events)
    newest = max(events, key=lambda e: e[1])
    assert status == newest[0]
    assert at == newest[1]


@given(start=OPEN_STATUSES, events=events_of(STATUSES))
def test_the_first_final_status_to_arrive_is_kept_whatever_comes_after(
    start: S, events: list[Event]
) -> None:
    status, _, seen = fold(start, events)
    finals = [s for s, _ in events if s in FINAL]
    if finals:
        assert status == finals[0]
        first_final = seen.index(finals[0])
        assert set(seen[first_final:]) == {finals[0]}
    else:
        assert status not in FINAL


@given(current=STATUSES, new=STATUSES, minutes=st.integers(-100, 100))
def test_a_final_status_is_never_left_and_a_stale_open_one_never_applies(
    current: S, new: S, minutes: int
) -> None:
    event_at = T0 + timedelta(minutes=minutes)
    applies = should_apply(current, T0, new, event_at, final=FINAL)
    if current in FINAL or new == current:
        assert not applies
    elif new in FINAL:
        assert applies
    else:
        assert applies is (event_at >= T0)


@given(events=events_of(STATUSES))
def test_the_held_time_never_goes_back(events: list[Event]) -> None:
    held: list[datetime] = []
    for i in range(1, len(events) + 1):
        _, at, _ = fold(S.CREATED, events[:i])
        assert at is not None
        held.append(at)
    assert held == sorted(held)
