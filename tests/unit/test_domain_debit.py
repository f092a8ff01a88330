"""The debit state machine, the retry decision and dunning (SPEC §5)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.debit import (
    AWAITING_OUTCOME,
    DEBIT_TRANSITIONS,
    FINAL_DEBIT_STATES,
    DebitState,
    Decision,
    RetryPolicy,
    can_transition_debit,
    debit_transition,
    decide,
    next_try_at,
)
from billing.domain.errors import IllegalTransition
from billing.domain.outcomes import Outcome

S = DebitState
T0 = datetime(2027, 3, 1, 4, 30, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = RetryPolicy(max_tries=3, schedule=(DAY, 2 * DAY))  # the SPEC's defaults


@pytest.mark.parametrize(("current", "target"), list(itertools.product(DebitState, DebitState)))
def test_every_pair_of_states_is_allowed_or_raises(current: S, target: S) -> None:
    if can_transition_debit(current, target):
        assert debit_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            debit_transition(current, target)
        assert caught.value.machine == "debit"


def test_final_states_have_no_exits() -> None:
    assert {"CHARGED", "FAILED", "SKIPPED", "CANCELLED", "MANUAL_REVIEW"} == {
        s.value for s in FINAL_DEBIT_STATES
    }
    for final in FINAL_DEBIT_STATES:
        assert DEBIT_TRANSITIONS[final] == frozenset()


def test_no_state_moves_to_itself() -> None:
    """A self-move would let a second worker re-claim EXECUTING with a guarded UPDATE."""
    for state in DebitState:
        assert not can_transition_debit(state, state)


def test_every_state_is_reachable_from_planned_and_every_state_has_a_row() -> None:
    assert set(DEBIT_TRANSITIONS) == set(DebitState)
    seen, frontier = {S.PLANNED}, [S.PLANNED]
    while frontier:
        for target in DEBIT_TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(DebitState)


@pytest.mark.parametrize(
    "path",
    [
        ["PLANNED", "EXECUTING", "CHARGED"],
        ["PLANNED", "NOTIFYING", "NOTIFIED", "EXECUTING", "PENDING", "CHARGED"],
        ["PLANNED", "NOTIFYING", "PLANNED", "NOTIFYING", "NOTIFIED", "EXECUTING", "CHARGED"],
        ["PLANNED", "EXECUTING", "UNKNOWN", "EXECUTING", "PENDING", "MANUAL_REVIEW"],
        ["PLANNED", "EXECUTING", "RETRY_SCHEDULED", "EXECUTING", "FAILED"],
        ["PLANNED", "EXECUTING", "RETRY_SCHEDULED", "NOTIFYING", "NOTIFIED", "EXECUTING"],
        ["PLANNED", "EXECUTING", "PENDING", "RETRY_SCHEDULED", "SKIPPED"],
        ["PLANNED", "EXECUTING", "PENDING", "CANCELLED"],
        ["PLANNED", "SKIPPED"],
    ],
)
def test_the_lifecycles_of_spec_section_5(path: list[str]) -> None:
    state = S(path[0])
    for step in path[1:]:
        state = debit_transition(state, S(step))


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.EXECUTING, S.CANCELLED),  # the order may be charging
        (S.EXECUTING, S.SKIPPED),
        (S.PENDING, S.EXECUTING),  # a new order only through RETRY_SCHEDULED
        (S.PENDING, S.UNKNOWN),
        (S.CHARGED, S.FAILED),
        (S.FAILED, S.RETRY_SCHEDULED),
        (S.PLANNED, S.CHARGED),
    ],
)
def test_moves_that_could_double_or_lose_money_are_refused(current: S, target: S) -> None:
    assert not can_transition_debit(current, target)


# --- next_try_at ------------------------------------------------------------------------------


def test_retries_follow_the_schedule_and_reuse_its_last_wait() -> None:
    closes = T0 + 30 * DAY
    policy = RetryPolicy(max_tries=5, schedule=(DAY, 2 * DAY))
    waits = [
        next_try_at(policy, tries_used=n, failed_at=T0, window_closes_at=closes)
        for n in (1, 2, 3, 4)
    ]
    assert waits == [T0 + DAY, T0 + 2 * DAY, T0 + 2 * DAY, T0 + 2 * DAY]
    assert next_try_at(policy, tries_used=5, failed_at=T0, window_closes_at=closes) is None


def test_a_retry_must_fit_in_the_window() -> None:
    assert next_try_at(POLICY, tries_used=1, failed_at=T0, window_closes_at=T0 + DAY) is None
    fits = next_try_at(POLICY, tries_used=1, failed_at=T0, window_closes_at=T0 + DAY * 1.01)
    assert fits == T0 + DAY
    lead = timedelta(hours=26)
    assert (
        next_try_at(POLICY, tries_used=1, failed_at=T0, window_closes_at=T0 + 2 * DAY, lead=lead)
        is None
    )


def test_next_try_at_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="tries_used"):
        next_try_at(POLICY, tries_used=0, failed_at=T0, window_closes_at=T0 + DAY)
    with pytest.raises(ValueError, match="aware"):
        next_try_at(POLICY, tries_used=1, failed_at=datetime(2027, 1, 1), window_closes_at=T0)


@pytest.mark.parametrize(
    ("max_tries", "schedule"),
    [(0, (DAY,)), (2, ()), (2, (DAY, timedelta(0))), (2, (-DAY,))],
)
def test_bad_policies_are_refused(max_tries: int, schedule: tuple[timedelta, ...]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_tries=max_tries, schedule=schedule)


def test_a_single_try_policy_needs_no_schedule() -> None:
    policy = RetryPolicy(max_tries=1, schedule=())
    assert next_try_at(policy, tries_used=1, failed_at=T0, window_closes_at=T0 + 9 * DAY) is None


policies = st.builds(
    RetryPolicy,
    max_tries=st.integers(1, 6),
    schedule=st.lists(
        st.integers(60, 5 * 86_400).map(lambda s: timedelta(seconds=s)), min_size=1, max_size=4
    ).map(tuple),
)


@settings(max_examples=500, deadline=None)
@given(
    policy=policies,
    window_seconds=st.integers(-86_400, 20 * 86_400),
    lead_seconds=st.integers(0, 2 * 86_400),
)
def test_dunning_never_exceeds_max_tries_nor_leaves_the_window(
    policy: RetryPolicy, window_seconds: int, lead_seconds: int
) -> None:
    closes = T0 + timedelta(seconds=window_seconds)
    lead = timedelta(seconds=lead_seconds)
    tries, failed_at = 1, T0
    while (
        retry_at := next_try_at(
            policy, tries_used=tries, failed_at=failed_at, window_closes_at=closes, lead=lead
        )
    ) is not None:
        assert failed_at < retry_at < closes
        assert retry_at + lead < closes
        tries, failed_at = tries + 1, retry_at
    assert tries <= policy.max_tries


# --- decide -----------------------------------------------------------------------------------


def decided(
    state: S, outcome: Outcome, *, tries_used: int = 1, closes: datetime | None = None
) -> Decision:
    return decide(
        state,
        outcome,
        policy=POLICY,
        tries_used=tries_used,
        now=T0,
        window_closes_at=closes or T0 + 10 * DAY,
    )


@pytest.mark.parametrize(
    ("state", "outcome", "expected"),
    [
        (S.EXECUTING, Outcome.CHARGED, S.CHARGED),
        (S.EXECUTING, Outcome.PENDING, S.PENDING),
        (S.EXECUTING, Outcome.UNKNOWN, S.UNKNOWN),
        (S.EXECUTING, Outcome.FAILED_HARD, S.FAILED),
        (S.EXECUTING, Outcome.FAILED_SOFT, S.RETRY_SCHEDULED),
        (S.PENDING, Outcome.CHARGED, S.CHARGED),
        (S.PENDING, Outcome.PENDING, S.PENDING),  # stay
        (S.PENDING, Outcome.UNKNOWN, S.PENDING),  # stay: the order exists
        (S.PENDING, Outcome.FAILED_HARD, S.FAILED),
        (S.PENDING, Outcome.FAILED_SOFT, S.RETRY_SCHEDULED),
        (S.UNKNOWN, Outcome.CHARGED, S.CHARGED),
        (S.UNKNOWN, Outcome.PENDING, S.PENDING),
        (S.UNKNOWN, Outcome.UNKNOWN, S.UNKNOWN),  # stay
        (S.UNKNOWN, Outcome.FAILED_HARD, S.FAILED),
        (S.UNKNOWN, Outcome.FAILED_SOFT, S.RETRY_SCHEDULED),
    ],
)
def test_decide(state: S, outcome: Outcome, expected: S) -> None:
    decision = decided(state, outcome)
    assert decision.state is expected
    assert (decision.retry_at is not None) == (expected is S.RETRY_SCHEDULED)
    assert decision.reason


def test_a_soft_failure_schedules_the_next_try() -> None:
    assert decided(S.EXECUTING, Outcome.FAILED_SOFT).retry_at == T0 + DAY
    assert decided(S.EXECUTING, Outcome.FAILED_SOFT, tries_used=2).retry_at == T0 + 2 * DAY


def test_a_soft_failure_without_tries_or_time_left_fails() -> None:
    out_of_tries = decided(S.EXECUTING, Outcome.FAILED_SOFT, tries_used=3)
    assert (out_of_tries.state, out_of_tries.retry_at) == (S.FAILED, None)
    assert "no tries left" in out_of_tries.reason
    out_of_time = decided(S.PENDING, Outcome.FAILED_SOFT, closes=T0 + DAY / 2)
    assert (out_of_time.state, out_of_time.retry_at) == (S.FAILED, None)
    assert "window" in out_of_time.reason


@pytest.mark.parametrize("state", sorted(set(DebitState) - AWAITING_OUTCOME))
@pytest.mark.parametrize("outcome", list(Outcome))
def test_only_a_debit_awaiting_its_order_takes_an_outcome(state: S, outcome: Outcome) -> None:
    with pytest.raises(IllegalTransition):
        decided(state, outcome)


@settings(max_examples=300, deadline=None)
@given(
    state=st.sampled_from(sorted(AWAITING_OUTCOME)),
    outcome=st.sampled_from(Outcome),
    tries_used=st.integers(1, 5),
    window_seconds=st.integers(-86_400, 10 * 86_400),
)
def test_decide_only_takes_allowed_moves(
    state: S, outcome: Outcome, tries_used: int, window_seconds: int
) -> None:
    closes = T0 + timedelta(seconds=window_seconds)
    decision = decided(state, outcome, tries_used=tries_used, closes=closes)
    assert decision.state is state or can_transition_debit(state, decision.state)
    if decision.retry_at is not None:
        assert decision.state is S.RETRY_SCHEDULED
        assert T0 < decision.retry_at < closes
        assert tries_used < POLICY.max_tries
