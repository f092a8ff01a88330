"""May this order be sent now? The checks before every call that moves money (SPEC §2-§5).

The execution path asks them for a first send, a retry and the resend of an order Juspay never
received; the PDN path asks the first two before announcing a debit. Pure, so that a batched
execution path asks the same questions per debit:

1. does the debit's window still hold the instant Juspay would debit? (`may_send`)
2. may the mandate be debited, as we know it here? (`may_send`)
3. with a try behind it: has that order failed for good at Juspay, read just now?
   (`previous_try_allows`)
4. does the debit still fit the mandate's terms as they are now: its amount, its period and
   window, its flow? (`terms_misfit`; also asked of every open debit when the terms change)

    Verdict.SEND   go
    Verdict.HOLD   not now: the mandate is paused, not yet active, or held until a sync from
                   Juspay succeeds; look again later (its window passing makes it SKIP)
    Verdict.SKIP   never: the window has passed (or would have by the time Juspay debits), or
                   the mandate ended; the debit is SKIPPED with the reason
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from billing.domain.calendar import Period, require_aware
from billing.domain.errors import InvalidField
from billing.domain.mandate import (
    FINAL_MANDATE_STATUSES,
    MandateStatus,
    Terms,
    validate_plan_amount,
)
from billing.domain.outcomes import Outcome
from billing.domain.schedule import DebitCalendar, cycle, cycle_number_at
from billing.domain.timing import merchant_execution_at


class Verdict(StrEnum):
    SEND = "SEND"
    HOLD = "HOLD"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Gate:
    verdict: Verdict
    reason: str = ""


SEND = Gate(Verdict.SEND)
# A debit of a mandate in one of these is held, not skipped: it may still become ACTIVE.
HOLDING_STATUSES = frozenset({MandateStatus.PAUSED, MandateStatus.CREATED, MandateStatus.PENDING})


def may_send(
    *,
    mandate_status: MandateStatus,
    hold_reason: str | None,
    debits_at: datetime,
    window_closes_at: datetime,
    now: datetime,
) -> Gate:
    """May a call be sent at `now` that Juspay would debit at `debits_at`? (SPEC §2, §5)

    Never outside the debit's window: on a one-day window (ON, DAILY) a later day would be a
    debit on an unannounced day, or two on one day. Never on a mandate that is not ACTIVE here.
    """
    require_aware(now)
    if now >= window_closes_at:
        return Gate(Verdict.SKIP, "window passed before it could execute")
    if require_aware(debits_at) >= window_closes_at:
        return Gate(
            Verdict.SKIP,
            f"window passed: Juspay would debit at {debits_at:%Y-%m-%d %H:%M} UTC, after the "
            f"window closes at {window_closes_at:%Y-%m-%d %H:%M} UTC",
        )
    if mandate_status in FINAL_MANDATE_STATUSES:
        return Gate(Verdict.SKIP, f"mandate {mandate_status}")
    if mandate_status in HOLDING_STATUSES:
        return Gate(Verdict.HOLD, f"held: mandate {mandate_status}")
    if hold_reason:
        return Gate(Verdict.HOLD, f"held until a sync from Juspay succeeds: {hold_reason}")
    return SEND


def previous_try_allows(outcome: Outcome) -> bool:
    """May try N+1 be sent, given try N's status read just now? Only if it failed softly.

    Charged: the money arrived. Pending: Juspay holds it or retries it silently. Unreadable:
    nothing learnt. A hard failure ends the debit. In each case a new order would race it.
    """
    return outcome is Outcome.FAILED_SOFT


def notice_still_serves(
    txn_date: datetime, *, now: datetime, window_closes_at: datetime, calendar: DebitCalendar
) -> bool:
    """Merchant flow: could a PDN announcing `txn_date`, succeeding at `now`, still be executed?

    Its 24 h notice must end on the day it announced (the date notified is the date executed,
    SPEC §4) and inside the window. False for a PDN that succeeded too late, and for one still
    pending when even a success now would be too late: it can no longer lead to a debit.
    """
    execute_at = merchant_execution_at(txn_date, now)
    same_day = calendar.local_date(execute_at) == calendar.local_date(txn_date)
    return same_day and execute_at < window_closes_at


def terms_misfit(
    terms: Terms,
    *,
    amount: Decimal,
    period: Period,
    window: Period,
    flow: str,
    flow_now: str | None,
    calendar: DebitCalendar,
) -> str | None:
    """Why a debit planned as (amount, period, window, flow) no longer fits `terms`, or None.

    Asked before every send and when the terms change: a debit planned under old terms (a
    max_amount lowered under its amount, a rule day moved, a start_date that puts its period
    outside the mandate, a payment method with another flow) is never sent as it stands.
    `flow_now` is the flow the mandate's payment method takes today (None: not checked).
    """
    try:
        validate_plan_amount(terms, amount)
    except InvalidField as exc:
        return f"amount {amount} no longer fits the terms: {exc.reason}"
    if terms.frequency.is_periodic:
        number = cycle_number_at(terms, period.first_day)
        found = None if number is None else cycle(terms, number, calendar)
        if found is None:
            return f"the terms have no debit in the period {_days(period)} any more"
        if found.period != period:
            return f"period now {_days(found.period)}, was {_days(period)}"
        if found.window != window:
            return f"window now {_days(found.window)}, was {_days(window)}"
    elif period != window or not terms.covers(window.first_day):
        return f"frequency now {terms.frequency}: no calendar debit on {_days(window)}"
    if flow_now is not None and flow_now != flow:
        return f"flow now {flow_now}, was {flow}"
    return None


def _days(period: Period) -> str:
    if period.first_day == period.last_day:
        return period.first_day.isoformat()
    return f"{period.first_day}..{period.last_day}"
