"""The pure payout policy: back-off, the attempt state machine, evidence ordering, inputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from billing.domain.errors import InvalidField
from billing.domain.payout import (
    CLOCK_ALLOWANCE,
    DEFAULT_ATTEMPT_THRESHOLD,
    AttemptAnswer,
    AttemptOutcome,
    AttemptState,
    Evidence,
    FulfillmentView,
    Observation,
    OpenAttempt,
    TxnView,
    attempt_evidence,
    attempt_threshold,
    delay_before,
    is_stale,
    needs_polling,
    next_poll_at,
    on_status,
    parse_expiry,
    parse_sender_details,
    should_apply,
    unavailable_delay,
)

NOW = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
M = timedelta(minutes=1)
S = AttemptState

BASELINE = NOW - timedelta(hours=1)  # the FAILURE's statusUpdatedAt, held when attempting

FAILED = FulfillmentView(
    status="FAILURE",
    status_at=BASELINE,
    beneficiary_type="PLAIN_CARD",
    failure_code="ISSUER_DOWN",
    is_retriable=True,
    attempt_state=S.IDLE,
    attempts_made=0,
    max_attempts=3,
    has_card=True,
    next_attempt_at=None,
    open_attempt=None,
)


def view(**changes: object) -> FulfillmentView:
    return replace(FAILED, **changes)  # type: ignore[arg-type]


def waiting(
    answer: AttemptAnswer, sent_at: datetime, *txns: TxnView, **changes: object
) -> FulfillmentView:
    """A fulfillment whose attempt 1 (sent at `sent_at`) waits for its outcome; `txns` are the
    transactions learnt since."""
    base: dict[str, object] = {
        "attempt_state": S.WAITING,
        "attempts_made": 1,
        "open_attempt": OpenAttempt(1, answer, sent_at, BASELINE),
        "new_txns": txns,
    }
    return view(**{**base, **changes})


def test_the_back_off_is_now_then_5_min_30_min_2_h() -> None:
    assert [delay_before(n) for n in range(1, 7)] == [
        timedelta(0),
        5 * M,
        30 * M,
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    with pytest.raises(ValueError, match="start at 1"):
        delay_before(0)


def test_an_unreachable_juspay_is_retried_after_1_2_4_minutes_up_to_30() -> None:
    assert [unavailable_delay(n) for n in range(1, 8)] == [1 * M, 2 * M, 4 * M, 8 * M, 16 * M,
                                                          30 * M, 30 * M]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "state", "due_in", "reason"),
    [
        ({}, S.DUE, timedelta(0), None),
        ({"attempts_made": 1}, S.DUE, 5 * M, None),
        ({"attempts_made": 2}, S.DUE, 30 * M, None),
        ({"attempts_made": 3}, S.STOPPED, None, "all 3 attempts made"),
        ({"is_retriable": False}, S.STOPPED, None, "not retriable: ISSUER_DOWN"),
        ({"failure_code": "INVALID_CARD_NUMBER"}, S.STOPPED, None, "not retriable"),
        ({"beneficiary_type": "ACCOUNT_IFSC"}, S.IDLE, None, "not a PLAIN_CARD fulfillment"),
        ({"beneficiary_type": "CARD"}, S.IDLE, None, "not a PLAIN_CARD fulfillment"),
        ({"beneficiary_type": None}, S.IDLE, None, "not a PLAIN_CARD fulfillment"),
        ({"has_card": False}, S.IDLE, None, "no card on file"),
        ({"attempt_state": S.STOPPED, "stop_reason": "x"}, S.STOPPED, None, "x"),
        ({"attempt_state": S.HALTED, "stop_reason": "401"}, S.HALTED, None, "401"),
        ({"attempt_state": S.IN_FLIGHT}, S.IN_FLIGHT, None, None),
    ],
)
def test_a_failed_fulfillment_is_due_or_not_and_says_why(
    changes: dict[str, object], state: AttemptState, due_in: timedelta | None, reason: str | None
) -> None:
    step = on_status(view(**changes), now=NOW)
    assert step.attempt_state is state
    assert step.next_attempt_at == (None if due_in is None else NOW + due_in)
    assert (step.stop_reason or "").startswith(reason or "")
    assert (step.stop_reason is None) is (reason is None)


def test_a_due_fulfillment_keeps_its_time() -> None:
    later = NOW + 5 * M
    step = on_status(view(attempt_state=S.DUE, next_attempt_at=later), now=NOW)
    assert (step.attempt_state, step.next_attempt_at) == (S.DUE, later)


def test_success_is_done_from_any_state_and_settles_the_open_attempt() -> None:
    for state in S:
        step = on_status(view(status="SUCCESS", attempt_state=state), now=NOW)
        assert (step.attempt_state, step.attempt_outcome) == (S.DONE, None)
    step = on_status(waiting(AttemptAnswer.ACK, NOW, status="SUCCESS"), now=NOW)
    assert (step.attempt_state, step.attempt_outcome) == (S.DONE, AttemptOutcome.SUCCESS)


def test_in_progress_keeps_waiting_and_makes_a_planned_attempt_moot() -> None:
    step = on_status(waiting(AttemptAnswer.UNKNOWN, NOW, status="PENDING"), now=NOW + M)
    assert (step.attempt_state, step.attempt_outcome) == (S.WAITING, None)
    step = on_status(view(status="PENDING", attempt_state=S.DUE, next_attempt_at=NOW), now=NOW)
    assert (step.attempt_state, step.next_attempt_at) == (S.IDLE, None)


# --- an attempt's outcome: only evidence newer than the attempt ------------------------------


@pytest.mark.parametrize("answer", [AttemptAnswer.ACK, AttemptAnswer.UNKNOWN])
@pytest.mark.parametrize("minutes", [0, 1, 5, 6, 30, 60 * 23])
def test_the_old_failure_still_showing_after_an_attempt_is_no_outcome(
    answer: AttemptAnswer, minutes: int
) -> None:
    step = on_status(waiting(answer, NOW), now=NOW + minutes * M)
    assert (step.attempt_state, step.attempt_outcome) == (S.WAITING, None)


@pytest.mark.parametrize("answer", [AttemptAnswer.ACK, AttemptAnswer.UNKNOWN])
def test_without_evidence_within_the_threshold_the_attempt_goes_to_review_not_retried(
    answer: AttemptAnswer,
) -> None:
    threshold = timedelta(minutes=90)
    before = on_status(waiting(answer, NOW, threshold=threshold), now=NOW + threshold - M)
    assert before.attempt_state is S.WAITING
    after = on_status(waiting(answer, NOW, threshold=threshold), now=NOW + threshold)
    assert (after.attempt_state, after.next_attempt_at, after.attempt_outcome) == (
        S.REVIEW,
        None,
        None,
    )
    assert after.stop_reason is not None
    assert after.stop_reason.startswith("no outcome of attempt 1 within its attemptThreshold (90")
    # and nothing but evidence moves it on: the old FAILURE again changes nothing
    held = waiting(answer, NOW, attempt_state=S.REVIEW, stop_reason=after.stop_reason)
    assert on_status(held, now=NOW + timedelta(days=3)).attempt_state is S.REVIEW


times = st.integers(-10, 3000).map(lambda n: NOW + n * M)
older_txns = st.lists(
    st.integers(-600, -2).map(lambda n: TxnView("FAILURE", NOW + n * M)), max_size=3
)


@given(
    answer=st.sampled_from([AttemptAnswer.ACK, AttemptAnswer.UNKNOWN, AttemptAnswer.SENDING]),
    status_at=st.none() | st.integers(-600, 0).map(lambda n: BASELINE + n * M),
    now=times,
    old=older_txns,
)
def test_no_second_attempt_is_ever_due_without_evidence_newer_than_the_first(
    answer: AttemptAnswer, status_at: datetime | None, now: datetime, old: list[TxnView]
) -> None:
    """The fulfillment keeps showing FAILURE with its old date, and whatever transactions we
    learn of are older than the attempt: whenever we look, no attempt is due."""
    step = on_status(waiting(answer, NOW, *old, status_at=status_at), now=now)
    assert step.attempt_state in (S.WAITING, S.REVIEW)
    assert step.attempt_outcome is None
    assert step.next_attempt_at is None


@pytest.mark.parametrize(
    ("txn_status", "state", "outcome"),
    [
        ("SUCCESS", S.DONE, AttemptOutcome.SUCCESS),
        ("CONFLICTED", S.DONE, AttemptOutcome.SUCCESS),  # failure turned success: it paid
        ("FAILURE", S.DUE, AttemptOutcome.FAILURE),
        ("REVERSED", S.DUE, AttemptOutcome.FAILURE),
        ("INITIATED", S.WAITING, None),  # landed, in progress
        ("MANUAL_REVIEW", S.REVIEW, None),
    ],
)
def test_a_transaction_learnt_after_the_attempt_is_its_outcome(
    txn_status: str, state: AttemptState, outcome: AttemptOutcome | None
) -> None:
    txn = TxnView(txn_status, NOW + 2 * M)
    step = on_status(waiting(AttemptAnswer.ACK, NOW, txn), now=NOW + 3 * M)
    assert (step.attempt_state, step.attempt_outcome) == (state, outcome)
    if state is S.DUE:
        assert step.next_attempt_at == NOW + 3 * M + 5 * M  # the back-off runs from the failure


def test_the_newest_of_the_new_transactions_decides() -> None:
    failed, started = TxnView("FAILURE", NOW + M), TxnView("INITIATED", NOW + 2 * M)
    assert (
        on_status(waiting(AttemptAnswer.ACK, NOW, failed, started), now=NOW + 3 * M).attempt_state
        is S.WAITING
    )


def test_a_transaction_dated_before_the_attempt_is_not_its_outcome() -> None:
    """Learnt late, but created before the attempt (beyond the clock allowance): an older
    attempt's, not this one's."""
    earlier = TxnView("FAILURE", NOW - CLOCK_ALLOWANCE - M)
    step = on_status(waiting(AttemptAnswer.ACK, NOW, earlier), now=NOW + 10 * M)
    assert (step.attempt_state, step.attempt_outcome) == (S.WAITING, None)
    within = TxnView("FAILURE", NOW - CLOCK_ALLOWANCE)  # a Juspay clock a minute behind ours
    assert (
        on_status(waiting(AttemptAnswer.ACK, NOW, within), now=NOW + M).attempt_outcome
        is AttemptOutcome.FAILURE
    )
    undated = TxnView("SUCCESS", None)
    assert on_status(waiting(AttemptAnswer.ACK, NOW, undated), now=NOW + M).attempt_state is S.DONE


@pytest.mark.parametrize(
    ("status_at", "evidence"),
    [
        (BASELINE, Evidence.NONE),  # the old FAILURE, still showing
        (NOW - 5 * M, Evidence.NONE),  # moved, but before the attempt was sent
        (NOW + M, Evidence.FAILURE),  # failed again after the attempt
        (None, Evidence.NONE),  # undated: no evidence of when
    ],
)
def test_a_failure_status_is_the_attempts_failure_only_when_dated_after_it(
    status_at: datetime | None, evidence: Evidence
) -> None:
    attempt = OpenAttempt(1, AttemptAnswer.ACK, NOW, BASELINE)
    assert attempt_evidence(attempt, status="FAILURE", status_at=status_at, new_txns=()) is evidence


def test_a_failure_status_after_the_attempt_makes_the_next_one_due_after_the_back_off() -> None:
    step = on_status(waiting(AttemptAnswer.UNKNOWN, NOW, status_at=NOW + 2 * M), now=NOW + 3 * M)
    assert (step.attempt_state, step.attempt_outcome) == (S.DUE, AttemptOutcome.FAILURE)
    assert step.next_attempt_at == NOW + 8 * M
    last = on_status(
        waiting(AttemptAnswer.ACK, NOW, status_at=NOW + M, attempts_made=3), now=NOW + 2 * M
    )
    assert (last.attempt_state, last.stop_reason, last.attempt_outcome) == (
        S.STOPPED,
        "all 3 attempts made",
        AttemptOutcome.FAILURE,
    )


def test_out_of_failure_is_landed_and_manual_review_is_review() -> None:
    attempt = OpenAttempt(1, AttemptAnswer.ACK, NOW, BASELINE)
    for status in ("PENDING", "INITIATED", "CREATED"):
        found = attempt_evidence(attempt, status=status, status_at=None, new_txns=())
        assert found is Evidence.LANDED
    step = on_status(waiting(AttemptAnswer.ACK, NOW, status="MANUAL_REVIEW"), now=NOW + M)
    assert step.attempt_state is S.REVIEW
    assert on_status(view(status="MANUAL_REVIEW"), now=NOW).attempt_state is S.REVIEW


def test_in_review_evidence_is_recorded_but_only_success_moves_it() -> None:
    held = waiting(AttemptAnswer.ACK, NOW, TxnView("FAILURE", NOW + M), attempt_state=S.REVIEW)
    step = on_status(held, now=NOW + timedelta(days=2))
    assert (step.attempt_state, step.attempt_outcome) == (S.REVIEW, AttemptOutcome.FAILURE)
    paid = waiting(AttemptAnswer.ACK, NOW, TxnView("SUCCESS", NOW + M), attempt_state=S.REVIEW)
    assert on_status(paid, now=NOW + timedelta(days=2)).attempt_state is S.DONE


def test_the_threshold_is_minutes_with_a_day_by_default() -> None:
    assert attempt_threshold(1440) == timedelta(days=1)
    assert attempt_threshold(30) == 30 * M
    assert (
        attempt_threshold(None)
        == attempt_threshold(0)
        == DEFAULT_ATTEMPT_THRESHOLD
        == timedelta(days=1)
    )


def test_a_cancelled_fulfillment_stops() -> None:
    step = on_status(view(status="CANCELLED"), now=NOW)
    assert (step.attempt_state, step.stop_reason) == (S.STOPPED, "fulfillment CANCELLED")


@pytest.mark.parametrize(
    ("status", "state", "polled"),
    [
        ("PENDING", S.IDLE, True),
        ("CREATED", S.IDLE, True),
        ("FAILURE", S.WAITING, True),
        ("FAILURE", S.REVIEW, True),  # evidence may still come
        ("FAILURE", S.DONE, True),  # a paying transaction: the fulfillment's SUCCESS to come
        ("FAILURE", S.DUE, False),
        ("FAILURE", S.STOPPED, False),
        ("SUCCESS", S.DONE, False),
    ],
)
def test_which_fulfillments_need_polling(status: str, state: AttemptState, polled: bool) -> None:
    assert needs_polling(status, state) is polled


def test_polling_follows_the_debit_back_off_from_the_attempt_and_ends() -> None:
    assert next_poll_at(NOW, anchor=NOW) == NOW + M
    assert next_poll_at(NOW + M, anchor=NOW) == NOW + 6 * M
    assert next_poll_at(NOW + timedelta(days=8), anchor=NOW) is None


def test_a_waiting_attempt_is_read_on_the_back_off_with_a_last_read_at_its_threshold() -> None:
    threshold = 50 * M
    reads, now = [], NOW
    while (when := next_poll_at(now, anchor=NOW, waiting_since=NOW, threshold=threshold)) and (
        when <= NOW + threshold
    ):
        reads.append(when - NOW)
        now = when
    assert reads == [1 * M, 6 * M, 36 * M, 50 * M]


# --- ordering --------------------------------------------------------------------------------


def obs(status: str, minutes: int | None, txns: int | None = None) -> Observation:
    return Observation(status, None if minutes is None else NOW + minutes * M, txns)


@pytest.mark.parametrize(
    ("new", "held", "applied"),
    [
        (obs("FAILURE", 5), obs("PENDING", 1), True),
        (obs("PENDING", 1), obs("FAILURE", 5), False),  # older
        (obs("PENDING", 9, 1), obs("FAILURE", 5, 2), False),  # fewer transactions: older
        (obs("PENDING", 1, 3), obs("FAILURE", 5, 2), True),  # a new attempt started
        (obs("FAILURE", 5, 2), obs("PENDING", 5, 2), True),  # same moment: later step wins
        (obs("PENDING", 5, 2), obs("FAILURE", 5, 2), False),
        (obs("SUCCESS", 1), obs("PENDING", 5), True),  # ending is never a step back
        (obs("FAILURE", 9), obs("SUCCESS", 1), False),  # a final status is never left
        (obs("PENDING", None), obs("FAILURE", 5), True),  # undated: not older
        (obs("FAILURE", 9), obs("FAILURE", 1), False),  # same status: nothing to change
    ],
)
def test_which_evidence_replaces_the_held_status(
    new: Observation, held: Observation, applied: bool
) -> None:
    assert should_apply(new, held) is applied


statuses = st.sampled_from(["CREATED", "PENDING", "FAILURE", "SUCCESS", "CANCELLED", "ODD"])
observations = st.builds(
    Observation,
    statuses,
    st.none() | st.integers(0, 20).map(lambda n: NOW + n * M),
    st.none() | st.integers(0, 5),
)


@given(observations, observations)
def test_a_final_status_is_never_left_and_stale_evidence_only_ends(
    new: Observation, held: Observation
) -> None:
    if should_apply(new, held):
        assert held.status not in ("SUCCESS", "CANCELLED")
        assert new.status != held.status
        assert not is_stale(new, held) or new.status in ("SUCCESS", "CANCELLED")


dated = st.builds(
    Observation, statuses, st.integers(0, 20).map(lambda n: NOW + n * M), st.integers(0, 5)
)
_RANK = {"CREATED": 0, "FAILURE": 2, "SUCCESS": 3, "CANCELLED": 3}


@given(dated, dated)
def test_of_two_distinguishable_evidences_at_most_one_replaces_the_other(
    a: Observation, b: Observation
) -> None:
    assume((a.at, a.txns) != (b.at, b.txns) or _RANK.get(a.status, 1) != _RANK.get(b.status, 1))
    assert not (should_apply(a, b) and should_apply(b, a))


# --- inputs ----------------------------------------------------------------------------------


def test_sender_details_are_validated_and_normalised() -> None:
    expiry = {"month": "01", "year": "2030"}
    parsed = parse_sender_details(
        {"type": "pay_card", "details": {"name": " S ", "pan": "4111", "expiry": expiry}}
    )
    assert parsed == {
        "type": "PAY_CARD",
        "details": {"name": "S", "pan": "4111", "expiry": {"month": "01", "year": "2030"}},
    }
    assert (
        parse_sender_details(
            {"type": "UPI", "details": {"name": "S", "transactionReference": "UTR1"}}
        )["type"]
        == "UPI"
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "sender_details"),
        ({"type": "CASH", "details": {}}, "sender_details.type"),
        ({"type": "UPI"}, "sender_details.details"),
        ({"type": "UPI", "details": {"name": "S"}}, "sender_details.details.transactionReference"),
        ({"type": "NETBANKING", "details": {"account": "1"}}, "sender_details.details.name"),
        ({"type": "PAY_CARD", "details": {"name": "S", "pan": "4", "cardSecurityCode": "1"}},
         "sender_details.details.cardSecurityCode"),
        ({"type": "UPI", "details": {"name": "S", "iban": "x"}}, "sender_details.details.iban"),
        ({"type": "UPI", "extra": 1, "details": {}}, "sender_details.extra"),
        ({"type": "PAY_CARD", "details": {"name": "S", "pan": "4", "expiry": {"month": "13"}}},
         "sender_details.details.expiry.month"),
    ],
)  # fmt: skip
def test_bad_sender_details_name_the_field(value: object, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_sender_details(value)
    assert caught.value.field == field


def test_expiry_is_mm_slash_yyyy() -> None:
    assert parse_expiry("02/2028") == ("02", "2028")
    assert parse_expiry(" 2/2028 ") == ("02", "2028")
    for bad in ("2028-02", "13/2028", "00/2028", "02/28", "02"):
        with pytest.raises(InvalidField, match="expiry: expected MM/YYYY"):
            parse_expiry(bad)
