"""Payout retries through the Attempt API (SPEC §8): the attempt state machine, when the next
attempt is due, what an answer means, and which payout evidence is newer. Pure: no IO, no clock.

A fulfillment's `attempt_state`:

    IDLE ──(FAILURE, PLAIN_CARD, retriable, attempts left, card on file)──> DUE
    DUE ──(claimed; attempt row recorded and committed)──> IN_FLIGHT
    IN_FLIGHT ──ACK / unknown──> WAITING ──SUCCESS──> DONE
                                 WAITING ──FAILURE──> DUE (back-off) | STOPPED (limit)
    IN_FLIGHT ──Unavailable──> DUE (soon; the attempt is not counted)
    IN_FLIGHT ──4xx (E01 ...)──> STOPPED (bad input will not get better)
    IN_FLIGHT ──401 (E02)──> HALTED: every attempt stops until `billing payouts resume`
    any ──SUCCESS──> DONE (final)

Policy decisions *(interpretation)*, each a constant below:
- Back-off: the 1st attempt is due as soon as the failure is seen, the 2nd 5 min after the 1st
  failed, the 3rd 30 min after the 2nd, then every 2 h (`ATTEMPT_BACKOFF`).
- `Unavailable` (Juspay never reached): the same attempt is retried after 1 min, doubling up to
  30 min; it does not use up the fulfillment's attempts.
- Reading an attempt's result (`SETTLE_GRACE`): after ACK or an unknown outcome the order is
  polled (or webhooks arrive). PENDING / SUCCESS = the attempt landed. FAILURE after the
  fulfillment was seen in progress = the attempt failed. FAILURE while it never left FAILURE:
  within 5 min of the attempt we keep looking (Juspay may not have processed it yet); after it,
  an ACKed attempt counts as failed and an unknown one as NOT_LANDED. Both used an attempt, so
  an unknown outcome is never resent blindly and never loops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from billing.domain.errors import InvalidField
from billing.domain.outcomes import payout_failure_retriable
from billing.domain.polling import next_check_at

PLAIN_CARD = "PLAIN_CARD"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
# Fulfillment statuses that are never left (a stale event cannot move them back).
FINAL_STATUSES = frozenset({SUCCESS, "CANCELLED"})
# Statuses at rest: nothing moves until someone (we) acts. Anything else is in progress.
RESTING_STATUSES = FINAL_STATUSES | {FAILURE}

ATTEMPT_BACKOFF = (timedelta(0), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
UNAVAILABLE_FIRST = timedelta(minutes=1)
UNAVAILABLE_MAX = timedelta(minutes=30)
SETTLE_GRACE = timedelta(minutes=5)
# An open payout order is polled on the debit back-off (1, 5, 30 min, hourly, 6-hourly) for
# this long after its last attempt; webhooks still apply after that.
POLL_MAX_AGE = timedelta(days=7)


class AttemptState(StrEnum):
    IDLE = "IDLE"
    DUE = "DUE"
    IN_FLIGHT = "IN_FLIGHT"
    WAITING = "WAITING"
    DONE = "DONE"
    STOPPED = "STOPPED"
    HALTED = "HALTED"


class AttemptAnswer(StrEnum):
    """`PayoutAttempt.state`: what one call of the Attempt API got."""

    SENDING = "SENDING"  # recorded and committed, the request is (about to be) on the wire
    ACK = "ACK"
    REJECTED = "REJECTED"  # 4xx with Juspay's code (E01 ...), or 401 E02
    UNKNOWN = "UNKNOWN"  # timeout / dropped / 5xx: may have landed
    UNSENT = "UNSENT"  # Juspay never reached: not counted, retried soon
    NOT_MADE = "NOT_MADE"  # we did not call (no CVV, card data unreadable): not counted


class AttemptOutcome(StrEnum):
    """`PayoutAttempt.outcome`: what followed an ACKed or unknown attempt."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    NOT_LANDED = "NOT_LANDED"


def delay_before(attempt_number: int) -> timedelta:
    """How long after the previous failure attempt `attempt_number` (1-based) is due."""
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    return ATTEMPT_BACKOFF[min(attempt_number, len(ATTEMPT_BACKOFF)) - 1]


def unavailable_delay(consecutive_unsent: int) -> timedelta:
    """The wait before resending an attempt that never reached Juspay (1, 2, 4 ... 30 min)."""
    doubled = UNAVAILABLE_FIRST * (1 << min(max(consecutive_unsent - 1, 0), 10))
    return min(doubled, UNAVAILABLE_MAX)


# --- which evidence is newer -------------------------------------------------------------------

_RANK = {"CREATED": 0, "PENDING": 1, FAILURE: 2, "CANCELLED": 3, SUCCESS: 3}


@dataclass(frozen=True, slots=True)
class Observation:
    """A fulfillment status with the time of its evidence and, from webhooks, how many
    transactions the fulfillment had (transactions are only ever appended)."""

    status: str
    at: datetime | None
    txns: int | None = None


def is_stale(new: Observation, held: Observation) -> bool:
    """Evidence older than what is held. Transaction counts decide first, then time; equal
    times are not stale (the same second can hold an attempt and its result)."""
    if new.txns is not None and held.txns is not None and new.txns != held.txns:
        return new.txns < held.txns
    return new.at is not None and held.at is not None and new.at < held.at


def should_apply(new: Observation, held: Observation) -> bool:
    """Whether `new` replaces the held status: never out of a final one, never from older
    evidence (a final status always ends it); at the same instant a later step wins."""
    if held.status in FINAL_STATUSES or new.status == held.status:
        return False
    if new.status in FINAL_STATUSES:
        return True
    if is_stale(new, held):
        return False
    same_moment = (new.txns is None or new.txns == held.txns) and new.at == held.at
    return not same_moment or _RANK.get(new.status, 1) >= _RANK.get(held.status, 1)


# --- the state machine ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """The latest counted attempt whose result is not known yet."""

    answer: AttemptAnswer  # SENDING, ACK or UNKNOWN
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class FulfillmentView:
    status: str  # Juspay's status as now held (after applying the new evidence)
    previous_status: str  # the status held before it
    method: str | None
    failure_code: str | None
    is_retriable: bool | None
    attempt_state: AttemptState
    attempts_made: int
    max_attempts: int
    has_card: bool
    next_attempt_at: datetime | None
    open_attempt: OpenAttempt | None
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    attempt_state: AttemptState
    next_attempt_at: datetime | None
    stop_reason: str | None
    attempt_outcome: AttemptOutcome | None = None  # to record on the open attempt


def on_status(view: FulfillmentView, *, now: datetime) -> Step:
    """What a fulfillment's attempt state becomes once its Juspay status is known at `now`."""
    state = view.attempt_state
    keep = Step(state, view.next_attempt_at, view.stop_reason)
    if view.status == SUCCESS:
        landed = AttemptOutcome.SUCCESS if view.open_attempt is not None else None
        return Step(AttemptState.DONE, None, None, landed)
    if state in (AttemptState.DONE, AttemptState.IN_FLIGHT, AttemptState.HALTED):
        return keep  # IN_FLIGHT: the sender settles it; HALTED: only `resume` lifts it
    if view.status in FINAL_STATUSES:
        return Step(AttemptState.STOPPED, None, f"fulfillment {view.status}")
    if view.status != FAILURE:
        if state is AttemptState.DUE:  # in progress again without us: our attempt is moot
            return Step(AttemptState.IDLE, None, None)
        return keep
    if state is AttemptState.STOPPED:
        return keep
    outcome = None
    if state is AttemptState.WAITING and view.open_attempt is not None:
        attempt = view.open_attempt
        seen_moving = view.previous_status not in RESTING_STATUSES
        if not seen_moving and now < attempt.sent_at + SETTLE_GRACE:
            return keep  # Juspay may not have picked the attempt up yet: look again
        outcome = (
            AttemptOutcome.NOT_LANDED
            if attempt.answer is not AttemptAnswer.ACK and not seen_moving
            else AttemptOutcome.FAILURE
        )
    step = eligibility(view, now=now)
    return Step(step.attempt_state, step.next_attempt_at, step.stop_reason, outcome)


def eligibility(view: FulfillmentView, *, now: datetime) -> Step:
    """For a FAILURE fulfillment: is another attempt due, and when; or why not."""
    if (view.method or "").upper() != PLAIN_CARD:
        return Step(AttemptState.IDLE, None, f"not a {PLAIN_CARD} fulfillment")
    if not payout_failure_retriable(view.failure_code, view.is_retriable):
        why = view.failure_code or "isRetriable is false"
        return Step(AttemptState.STOPPED, None, f"not retriable: {why}")
    if view.attempts_made >= view.max_attempts:
        return Step(AttemptState.STOPPED, None, f"all {view.max_attempts} attempts made")
    if not view.has_card:
        return Step(AttemptState.IDLE, None, "no card on file: track it with a card")
    if view.attempt_state is AttemptState.DUE and view.next_attempt_at is not None:
        return Step(AttemptState.DUE, view.next_attempt_at, None)
    return Step(AttemptState.DUE, now + delay_before(view.attempts_made + 1), None)


def needs_polling(status: str, attempt_state: AttemptState) -> bool:
    """A fulfillment whose status may still move without us: in progress, or our attempt's
    result still to read."""
    return attempt_state is AttemptState.WAITING or (
        status not in RESTING_STATUSES and attempt_state is not AttemptState.DONE
    )


def next_poll_at(now: datetime, *, anchor: datetime) -> datetime | None:
    """When to read an open payout order again: the debit back-off from `anchor` (the latest
    attempt, or when the order was tracked); None once past `POLL_MAX_AGE`."""
    return next_check_at(now, sent_at=min(anchor, now), execution_date=None, max_age=POLL_MAX_AGE)


# --- sender details ---------------------------------------------------------------------------

SENDER_TYPES = ("PAY_CARD", "NETBANKING", "UPI")
_SENDER_DETAIL_FIELDS = frozenset({"name", "account", "pan", "expiry", "transactionReference"})
_REQUIRED_DETAIL = {"PAY_CARD": "pan", "NETBANKING": "account", "UPI": "transactionReference"}


def parse_sender_details(value: object, *, field: str = "sender_details") -> dict[str, object]:
    """`senderDetails` as the Attempt API wants it (`{type, details{name, account | pan
    [+ expiry] | transactionReference}}`), validated. A CVV is refused: we never hold one, and
    the sender's `cardSecurityCode` is optional at Juspay."""
    if not isinstance(value, Mapping):
        raise InvalidField(field, "expected a JSON object")
    unknown = sorted(set(value) - {"type", "details"})
    if unknown:
        raise InvalidField(f"{field}.{unknown[0]}", "unknown field")
    kind = str(value.get("type") or "").upper()
    if kind not in SENDER_TYPES:
        raise InvalidField(f"{field}.type", f"expected one of {', '.join(SENDER_TYPES)}")
    details = value.get("details")
    if not isinstance(details, Mapping):
        raise InvalidField(f"{field}.details", "expected a JSON object")
    if "cardSecurityCode" in details:
        raise InvalidField(
            f"{field}.details.cardSecurityCode", "a CVV is never stored: leave it out"
        )
    unknown = sorted(set(details) - _SENDER_DETAIL_FIELDS)
    if unknown:
        raise InvalidField(f"{field}.details.{unknown[0]}", "unknown field")
    clean: dict[str, object] = {}
    for name in ("name", "account", "pan", "transactionReference"):
        text = details.get(name)
        if text is None or text == "":
            continue
        if not isinstance(text, str):
            raise InvalidField(f"{field}.details.{name}", "expected a string")
        clean[name] = text.strip()
    if "name" not in clean:
        raise InvalidField(f"{field}.details.name", "required")
    required = _REQUIRED_DETAIL[kind]
    if required not in clean:
        raise InvalidField(f"{field}.details.{required}", f"required for {kind}")
    expiry = details.get("expiry")
    if expiry is not None:
        clean["expiry"] = _expiry(expiry, f"{field}.details.expiry")
    return {"type": kind, "details": clean}


def _expiry(value: object, field: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidField(field, "expected {month, year}")
    month, year = str(value.get("month") or ""), str(value.get("year") or "")
    if not (len(month) == 2 and month.isdigit() and 1 <= int(month) <= 12):
        raise InvalidField(f"{field}.month", "expected MM (01-12)")
    if not (len(year) == 4 and year.isdigit()):
        raise InvalidField(f"{field}.year", "expected YYYY")
    return {"month": month, "year": year}


def parse_expiry(text: str, *, field: str = "expiry") -> tuple[str, str]:
    """`MM/YYYY` -> ("MM", "YYYY")."""
    month, sep, year = text.strip().partition("/")
    month = month.strip().zfill(2)
    year = year.strip()
    if not sep or not (month.isdigit() and 1 <= int(month) <= 12) or len(month) != 2:
        raise InvalidField(field, "expected MM/YYYY")
    if not (len(year) == 4 and year.isdigit()):
        raise InvalidField(field, "expected MM/YYYY")
    return month, year
