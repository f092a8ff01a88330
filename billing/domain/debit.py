"""The debit state machine (SPEC §5) as data, and the pure decision taken on each gateway outcome.

    PLANNED ─┬─> NOTIFYING ─> NOTIFIED ─┐          (merchant flow only)
             └──────────────────────────┴─> EXECUTING ─> CHARGED | PENDING | UNKNOWN
                                                       | RETRY_SCHEDULED | FAILED | MANUAL_REVIEW
    PENDING / UNKNOWN settle later; RETRY_SCHEDULED goes back to EXECUTING (or NOTIFYING).
    A debit not yet sending its next try still hears of its previous order (`reconsider`):
    charged after all -> CHARGED, taken up again by Juspay -> PENDING (no new order races it).
    Final: CHARGED, FAILED, SKIPPED, CANCELLED, MANUAL_REVIEW.

Unlike a mandate status, a debit state never "moves" to itself: services claim a row with
`UPDATE ... WHERE state = :current`, and a self-move EXECUTING -> EXECUTING would let a second
worker claim a debit already in flight. `decide` may still answer "stay" (Decision.state equal to
the current state), which means: record nothing, keep waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from billing.domain.calendar import require_aware
from billing.domain.errors import IllegalTransition
from billing.domain.outcomes import Outcome


class DebitState(StrEnum):
    PLANNED = "PLANNED"
    NOTIFYING = "NOTIFYING"
    NOTIFIED = "NOTIFIED"
    EXECUTING = "EXECUTING"
    PENDING = "PENDING"
    UNKNOWN = "UNKNOWN"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    CHARGED = "CHARGED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    MANUAL_REVIEW = "MANUAL_REVIEW"


_D = DebitState
# What a debit between tries may become on news of its previous order (`reconsider`).
_D_HEARD = (_D.CHARGED, _D.PENDING, _D.FAILED, _D.MANUAL_REVIEW)
FINAL_DEBIT_STATES = frozenset({_D.CHARGED, _D.FAILED, _D.SKIPPED, _D.CANCELLED, _D.MANUAL_REVIEW})

DEBIT_TRANSITIONS: Mapping[DebitState, frozenset[DebitState]] = MappingProxyType(
    {
        # FAILED / MANUAL_REVIEW: news of the previous try of a merchant-flow retry waiting for
        # its new PDN (`reconsider`). Never CHARGED from here: a charge needs an order in flight.
        _D.PLANNED: frozenset(
            {_D.NOTIFYING, _D.EXECUTING, _D.SKIPPED, _D.CANCELLED, _D.FAILED, _D.MANUAL_REVIEW}
        ),
        # PDN sent (merchant flow). Back to PLANNED: the PDN failed (or stalled past its date)
        # and a new one is due; FAILED: it failed with no time left; SKIPPED: the window can no
        # longer fit its 24 h notice, or the mandate ended; CANCELLED: the merchant stopped it.
        _D.NOTIFYING: frozenset(
            {_D.NOTIFIED, _D.PLANNED, _D.FAILED, _D.SKIPPED, _D.CANCELLED, *_D_HEARD}
        ),
        # Back to PLANNED: amount or date changed after the PDN; a new PDN must match (SPEC §4).
        _D.NOTIFIED: frozenset(
            {_D.EXECUTING, _D.PLANNED, _D.FAILED, _D.SKIPPED, _D.CANCELLED, *_D_HEARD}
        ),
        # The order row is committed; from here the money may move, so no SKIPPED / CANCELLED.
        _D.EXECUTING: frozenset(
            {_D.CHARGED, _D.PENDING, _D.UNKNOWN, _D.RETRY_SCHEDULED, _D.FAILED, _D.MANUAL_REVIEW}
        ),
        # Juspay holds the order (PDN wait, bank settlement). CANCELLED: the merchant stopped it
        # (cancel_recurring_transaction). RETRY_SCHEDULED: a soft failure, or NOTIFICATION_FAILED.
        _D.PENDING: frozenset(
            {_D.CHARGED, _D.RETRY_SCHEDULED, _D.FAILED, _D.MANUAL_REVIEW, _D.CANCELLED}
        ),
        # Reconciled by order status; EXECUTING again only to resend the same order_id after
        # the gateway said the order does not exist; SKIPPED when it can no longer be sent (the
        # window passed, the mandate ended): Juspay has no such order, so nothing moved.
        _D.UNKNOWN: frozenset(
            {
                _D.EXECUTING,
                _D.CHARGED,
                _D.PENDING,
                _D.RETRY_SCHEDULED,
                _D.FAILED,
                _D.MANUAL_REVIEW,
                _D.SKIPPED,
            }
        ),
        # NOTIFYING: merchant flow, the next try is on another date and needs its own PDN.
        # CHARGED / PENDING: the order reported failed was charged after all, or Juspay took it
        # up again (a late ORDER_SUCCEEDED, the read before the next try): no new order is sent.
        _D.RETRY_SCHEDULED: frozenset(
            {_D.EXECUTING, _D.NOTIFYING, _D.SKIPPED, _D.CANCELLED, *_D_HEARD}
        ),
        **{state: frozenset[DebitState]() for state in FINAL_DEBIT_STATES},
    }
)

# The states in which a gateway outcome for the debit's current order can arrive.
AWAITING_OUTCOME = frozenset({_D.EXECUTING, _D.PENDING, _D.UNKNOWN})
# Not yet sent: a debit waiting for its first try, or between tries. With a try behind it,
# news of that order still moves it (`reconsider`): the next order must never race it.
NOT_SENT = frozenset({_D.PLANNED, _D.NOTIFYING, _D.NOTIFIED, _D.RETRY_SCHEDULED})


def can_transition_debit(current: DebitState, target: DebitState) -> bool:
    return target in DEBIT_TRANSITIONS[current]


def debit_transition(current: DebitState, target: DebitState) -> DebitState:
    if not can_transition_debit(current, target):
        raise IllegalTransition("debit", current, target)
    return target


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `max_tries` orders per cycle; `schedule[i]` is the wait after the (i+1)-th failed
    try, the last entry reused when tries outnumber it."""

    max_tries: int
    schedule: tuple[timedelta, ...]

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {self.max_tries}")
        if self.max_tries > 1 and not self.schedule:
            raise ValueError("a retry schedule is needed when max_tries > 1")
        if any(wait <= timedelta(0) for wait in self.schedule):
            raise ValueError("retry waits must be positive")


def next_try_at(
    policy: RetryPolicy,
    *,
    tries_used: int,
    failed_at: datetime,
    window_closes_at: datetime,
    lead: timedelta = timedelta(0),
) -> datetime | None:
    """When to send the next order after `tries_used` orders failed softly; None if none is left.

    The next try must fit before the window closes; `lead` is how long before the debit the
    try must be sent (the juspay flow's PDN wait), so `retry_at + lead < window_closes_at`.
    """
    if tries_used < 1:
        raise ValueError(f"tries_used counts the failed orders, got {tries_used}")
    require_aware(failed_at)
    if tries_used >= policy.max_tries:
        return None
    retry_at = failed_at + policy.schedule[min(tries_used, len(policy.schedule)) - 1]
    if retry_at + lead >= window_closes_at:
        return None
    return retry_at


@dataclass(frozen=True, slots=True)
class Decision:
    state: DebitState
    retry_at: datetime | None = None
    reason: str = ""


_SETTLED: Mapping[Outcome, DebitState] = MappingProxyType(
    {
        Outcome.CHARGED: _D.CHARGED,
        Outcome.PENDING: _D.PENDING,
        Outcome.UNKNOWN: _D.UNKNOWN,
        Outcome.FAILED_HARD: _D.FAILED,
    }
)


def decide(
    state: DebitState,
    outcome: Outcome,
    *,
    policy: RetryPolicy,
    tries_used: int,
    now: datetime,
    window_closes_at: datetime,
    lead: timedelta = timedelta(0),
) -> Decision:
    """The next state of a debit awaiting its order (EXECUTING, PENDING, UNKNOWN) given an outcome.

    A soft failure becomes RETRY_SCHEDULED while a try fits the policy and the window, else FAILED.
    `Decision.state == state` means stay: PENDING still pending, UNKNOWN still unknown, and an
    unreadable answer about a PENDING order (it exists; nothing learnt). Other states raise.
    """
    if state not in AWAITING_OUTCOME:
        raise IllegalTransition("debit", state, str(outcome))
    if outcome is Outcome.FAILED_SOFT:
        retry_at = next_try_at(
            policy,
            tries_used=tries_used,
            failed_at=now,
            window_closes_at=window_closes_at,
            lead=lead,
        )
        if retry_at is not None:
            reason = f"soft failure, try {tries_used + 1} of {policy.max_tries} scheduled"
            return Decision(_checked(state, _D.RETRY_SCHEDULED), retry_at, reason)
        if tries_used >= policy.max_tries:
            return Decision(_checked(state, _D.FAILED), None, "soft failure, no tries left")
        return Decision(_checked(state, _D.FAILED), None, "soft failure, window too short to retry")
    if state is _D.PENDING and outcome is Outcome.UNKNOWN:
        return Decision(_D.PENDING, None, "order exists; answer unreadable, still pending")
    target = _SETTLED[outcome]
    reason = "hard failure" if outcome is Outcome.FAILED_HARD else f"order {outcome.lower()}"
    return Decision(_checked(state, target), None, reason)


def _checked(state: DebitState, target: DebitState) -> DebitState:
    return target if target == state else debit_transition(state, target)


def reconsider(state: DebitState, outcome: Outcome) -> Decision:
    """A debit between tries (not yet sending its next order) hears about its previous order.

    Juspay may charge or take up again an order it reported failed (its silent retry, a late
    status): CHARGED ends the debit, PENDING makes it wait on that order (never race it with a
    new one), a hard failure ends it. A soft failure or an unreadable answer changes nothing:
    the next try goes as planned, after its own read of this order (`sending.previous_try_allows`).
    """
    if state not in NOT_SENT:
        raise IllegalTransition("debit", state, str(outcome))
    if outcome in (Outcome.CHARGED, Outcome.PENDING) and state is _D.PLANNED:
        # A merchant-flow retry back to PLANNED (its new PDN failed): rare enough for a person.
        reason = f"the previous order reports {outcome.lower()} while a new PDN was due"
        return Decision(_checked(state, _D.MANUAL_REVIEW), None, reason)
    if outcome is Outcome.CHARGED:
        reason = "the previous order was charged after all: no new order"
        return Decision(_checked(state, _D.CHARGED), None, reason)
    if outcome is Outcome.PENDING:
        reason = "Juspay holds the previous order again: waiting on it, no new order"
        return Decision(_checked(state, _D.PENDING), None, reason)
    if outcome is Outcome.FAILED_HARD:
        return Decision(_checked(state, _D.FAILED), None, "hard failure of the previous order")
    return Decision(state)
