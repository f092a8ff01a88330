"""Payout retries through the Attempt API (SPEC §8): the attempt state machine, when the next
attempt is due, what counts as an attempt's outcome, and which evidence is newer. Pure.

A fulfillment's `attempt_state`:

    IDLE ──(FAILURE, PLAIN_CARD beneficiary, retriable, attempts left, card on file)──> DUE
    DUE ──(claimed; attempt row recorded and committed)──> IN_FLIGHT
    IN_FLIGHT ──ACK / unknown──> WAITING: the attempt may still pay
    WAITING ──evidence newer than the attempt──> DONE (it paid) | DUE / STOPPED (it failed)
    WAITING ──no evidence within the fulfillment's attemptThreshold──> REVIEW (never retried)
    IN_FLIGHT ──Unavailable──> DUE (soon; the attempt is not counted)
    IN_FLIGHT ──4xx (E01 ...)──> STOPPED (bad input will not get better)
    IN_FLIGHT ──401 (E02)──> HALTED: every attempt stops until `billing payouts resume`
    any ──SUCCESS──> DONE (final)

An attempt's outcome is known only from evidence newer than the attempt: a transaction learnt
after the attempt was recorded (a new entry in `transactions[]`, a FULFILLMENT_TXN webhook)
whose `createdAt` is not before it, or a fulfillment status dated (`statusUpdatedAt`, Juspay's
clock) after it and after the status held when it was sent. Until then the fulfillment showing
its old FAILURE says nothing: Juspay may not have picked the attempt up yet, and a second
attempt then could pay the customer twice. A failed PLAIN_CARD payout makes no transaction
without an attempt (Juspay holds no card for it), so a new transaction is an attempt's.

Policy decisions *(interpretation)*, each a constant below:
- Back-off: the 1st attempt is due as soon as the failure is seen, the 2nd 5 min after the 1st
  is known to have failed, the 3rd 30 min after the 2nd, then every 2 h (`ATTEMPT_BACKOFF`).
- `Unavailable` (Juspay never reached): the same attempt is retried after 1 min, doubling up to
  30 min; it does not use up the fulfillment's attempts.
- `attemptThreshold` (Juspay's `additionalInfo.attemptThreshold`, undocumented; read as
  minutes, its sample value 1440 being a day): how long after an attempt we wait for its
  outcome, polling on the debit back-off (1, 6, 36 min, then hourly) with a last read at the
  threshold; then the fulfillment goes to REVIEW and is not attempted again until an operator
  runs `billing payouts resume ORDER_ID`. Absent (or 0): `DEFAULT_ATTEMPT_THRESHOLD`, a day.
- `CLOCK_ALLOWANCE`: evidence dated up to 1 min before the attempt still counts as after it,
  for a Juspay clock behind ours. Attempts are minutes apart, so it cannot mistake the previous
  attempt's transaction for this one's.
- Juspay's MANUAL_REVIEW (of the fulfillment or the attempt's transaction) is REVIEW here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from billing.domain.errors import InvalidField
from billing.domain.outcomes import payout_failure_retriable
from billing.domain.polling import next_check_at

PLAIN_CARD = "PLAIN_CARD"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
MANUAL_REVIEW = "MANUAL_REVIEW"
# Fulfillment statuses that are never left (a stale event cannot move them back).
FINAL_STATUSES = frozenset({SUCCESS, "CANCELLED", "DISCARDED"})
# Statuses at rest: nothing moves until someone (we) acts. Anything else is in progress.
RESTING_STATUSES = FINAL_STATUSES | {FAILURE}

ATTEMPT_BACKOFF = (timedelta(0), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
UNAVAILABLE_FIRST = timedelta(minutes=1)
UNAVAILABLE_MAX = timedelta(minutes=30)
DEFAULT_ATTEMPT_THRESHOLD = timedelta(minutes=1440)
CLOCK_ALLOWANCE = timedelta(minutes=1)
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
    REVIEW = "REVIEW"


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
    NOT_LANDED = "NOT_LANDED"  # an operator, after checking with Juspay (`payouts resume`)


class Evidence(StrEnum):
    """What the evidence newer than an attempt says of it."""

    NONE = "NONE"  # nothing newer: the attempt may still pay
    LANDED = "LANDED"  # Juspay took it up and it is in progress
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVIEW = "REVIEW"  # Juspay holds it for manual review


# Transaction statuses (juspay-api.md §6.2; GATEWAY_SWITCHED / ERROR from Juspay's own client).
# CONFLICTED is a failure the PG turned into a success, REVERSED the other way round.
TXN_EVIDENCE: Mapping[str, Evidence] = {
    "SUCCESS": Evidence.SUCCESS,
    "CONFLICTED": Evidence.SUCCESS,
    "FAILURE": Evidence.FAILURE,
    "REVERSED": Evidence.FAILURE,
    "ERROR": Evidence.FAILURE,
    "MANUAL_REVIEW": Evidence.REVIEW,
}


def delay_before(attempt_number: int) -> timedelta:
    """How long after the previous failure attempt `attempt_number` (1-based) is due."""
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    return ATTEMPT_BACKOFF[min(attempt_number, len(ATTEMPT_BACKOFF)) - 1]


def unavailable_delay(consecutive_unsent: int) -> timedelta:
    """The wait before resending an attempt that never reached Juspay (1, 2, 4 ... 30 min)."""
    doubled = UNAVAILABLE_FIRST * (1 << min(max(consecutive_unsent - 1, 0), 10))
    return min(doubled, UNAVAILABLE_MAX)


def attempt_threshold(minutes: int | None) -> timedelta:
    """A fulfillment's `attemptThreshold` as a wait (minutes; absent or 0: the default)."""
    return timedelta(minutes=minutes) if minutes else DEFAULT_ATTEMPT_THRESHOLD


# --- which evidence is newer -------------------------------------------------------------------

_RANK = {"CREATED": 0, "PENDING": 1, FAILURE: 2, "CANCELLED": 3, "DISCARDED": 3, SUCCESS: 3}


@dataclass(frozen=True, slots=True)
class Observation:
    """A fulfillment status with the time of its evidence (Juspay's `statusUpdatedAt`) and how
    many transactions the reading listed (transactions are only ever appended)."""

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


# --- an attempt's outcome -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """The latest counted attempt whose outcome is not known yet."""

    number: int
    answer: AttemptAnswer  # SENDING, ACK or UNKNOWN
    sent_at: datetime  # recorded (and committed) just before it was sent
    baseline_status_at: datetime | None  # the fulfillment's status time when it was sent


@dataclass(frozen=True, slots=True)
class TxnView:
    """A transaction learnt after the open attempt was recorded."""

    status: str
    created_at: datetime | None  # Juspay's clock


def attempt_evidence(
    attempt: OpenAttempt,
    *,
    status: str,
    status_at: datetime | None,
    new_txns: Sequence[TxnView],
) -> Evidence:
    """What the evidence newer than `attempt` says; `new_txns` oldest first."""
    earliest = attempt.sent_at - CLOCK_ALLOWANCE
    fresh = [t for t in new_txns if t.created_at is None or t.created_at >= earliest]
    if fresh:
        return TXN_EVIDENCE.get(fresh[-1].status.upper(), Evidence.LANDED)
    if status == SUCCESS:
        return Evidence.SUCCESS
    if status == MANUAL_REVIEW:
        return Evidence.REVIEW
    if status not in RESTING_STATUSES:
        return Evidence.LANDED  # out of FAILURE: Juspay is at it
    dated_after = (
        status_at is not None
        and status_at >= earliest
        and (attempt.baseline_status_at is None or status_at > attempt.baseline_status_at)
    )
    return Evidence.FAILURE if dated_after else Evidence.NONE


# --- the state machine ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FulfillmentView:
    status: str  # Juspay's status as now held (after applying the new evidence)
    status_at: datetime | None  # its time by Juspay's clock
    beneficiary_type: str | None
    failure_code: str | None
    is_retriable: bool | None
    attempt_state: AttemptState
    attempts_made: int
    max_attempts: int
    has_card: bool
    next_attempt_at: datetime | None
    open_attempt: OpenAttempt | None
    new_txns: tuple[TxnView, ...] = ()  # learnt after the open attempt, oldest first
    threshold: timedelta = DEFAULT_ATTEMPT_THRESHOLD
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
    if view.status == SUCCESS:
        landed = AttemptOutcome.SUCCESS if view.open_attempt is not None else None
        return Step(AttemptState.DONE, None, None, landed)
    if state in (AttemptState.DONE, AttemptState.IN_FLIGHT, AttemptState.HALTED):
        return Step(state, view.next_attempt_at, view.stop_reason)
    if view.open_attempt is not None and state in (AttemptState.WAITING, AttemptState.REVIEW):
        return _open(view, view.open_attempt, now=now)
    return _at_rest(view, now=now)


def _open(view: FulfillmentView, attempt: OpenAttempt, *, now: datetime) -> Step:
    """An attempt may still pay: only evidence newer than it moves the fulfillment on."""
    keep = Step(view.attempt_state, view.next_attempt_at, view.stop_reason)
    evidence = attempt_evidence(
        attempt, status=view.status, status_at=view.status_at, new_txns=view.new_txns
    )
    if evidence is Evidence.SUCCESS:
        return Step(AttemptState.DONE, None, None, AttemptOutcome.SUCCESS)
    if evidence is Evidence.FAILURE:
        if view.attempt_state is AttemptState.REVIEW:  # an operator decides what follows
            why = f"attempt {attempt.number} failed after review: `billing payouts resume`"
            return Step(AttemptState.REVIEW, None, why, AttemptOutcome.FAILURE)
        closed = replace(view, attempt_state=AttemptState.IDLE, open_attempt=None)
        return replace(_at_rest(closed, now=now), attempt_outcome=AttemptOutcome.FAILURE)
    if evidence is Evidence.REVIEW:
        why = f"Juspay holds attempt {attempt.number} in {MANUAL_REVIEW}"
        return Step(AttemptState.REVIEW, None, why)
    if view.attempt_state is AttemptState.WAITING and now >= attempt.sent_at + view.threshold:
        minutes = int(view.threshold.total_seconds() // 60)
        why = (
            f"no outcome of attempt {attempt.number} within its attemptThreshold ({minutes} "
            "min): check with Juspay, then `billing payouts resume ORDER_ID`"
        )
        return Step(AttemptState.REVIEW, None, why)
    return keep


def _at_rest(view: FulfillmentView, *, now: datetime) -> Step:
    state = view.attempt_state
    keep = Step(state, view.next_attempt_at, view.stop_reason)
    if view.status == MANUAL_REVIEW:
        return Step(AttemptState.REVIEW, None, f"Juspay holds the fulfillment in {MANUAL_REVIEW}")
    if view.status in FINAL_STATUSES:
        return Step(AttemptState.STOPPED, None, f"fulfillment {view.status}")
    if view.status != FAILURE:
        if state is AttemptState.DUE:  # in progress again without us: our attempt is moot
            return Step(AttemptState.IDLE, None, None)
        return keep
    if state in (AttemptState.STOPPED, AttemptState.REVIEW):
        return keep
    return eligibility(view, now=now)


def eligibility(view: FulfillmentView, *, now: datetime) -> Step:
    """For a FAILURE fulfillment: is another attempt due, and when; or why not."""
    if (view.beneficiary_type or "").upper() != PLAIN_CARD:
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
    """A fulfillment whose status may still move without us: in progress, our attempt's
    outcome still to read, or a paying transaction whose fulfillment has not said SUCCESS."""
    if attempt_state in (AttemptState.WAITING, AttemptState.REVIEW):
        return True
    if attempt_state is AttemptState.DONE:
        return status != SUCCESS and status not in FINAL_STATUSES
    return status not in RESTING_STATUSES


def next_poll_at(
    now: datetime,
    *,
    anchor: datetime,
    waiting_since: datetime | None = None,
    threshold: timedelta = DEFAULT_ATTEMPT_THRESHOLD,
) -> datetime | None:
    """When to read an open payout order again: the debit back-off from `anchor` (the latest
    attempt, or when the order was tracked); None once past `POLL_MAX_AGE`. While an attempt
    waits for its outcome (`waiting_since`), the back-off runs from it and its last read falls
    on its threshold, where the attempt goes to review."""
    if waiting_since is not None and now < waiting_since + threshold:
        sent = min(waiting_since, now)
        return next_check_at(now, sent_at=sent, execution_date=None, max_age=threshold)
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
