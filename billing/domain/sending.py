"""May this order be sent now? The checks before every call that moves money (SPEC §2-§5).

The execution path asks them for a first send, a retry and the resend of an order Juspay never
received; the PDN path asks the first two before announcing a debit. Pure, so that a batched
execution path asks the same questions per debit:

1. does the debit's window still hold the instant Juspay would debit? (`may_send`)
2. may the mandate be debited, as we know it here? (`may_send`)
3. with a try behind it: has that order failed for good at Juspay, read just now?
   (`previous_try_allows`)

    Verdict.SEND   go
    Verdict.HOLD   not now: the mandate is paused, not yet active, or held until a sync from
                   Juspay succeeds; look again later (its window passing makes it SKIP)
    Verdict.SKIP   never: the window has passed (or would have by the time Juspay debits), or
                   the mandate ended; the debit is SKIPPED with the reason
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing.domain.calendar import require_aware
from billing.domain.mandate import FINAL_MANDATE_STATUSES, MandateStatus
from billing.domain.outcomes import Outcome
from billing.domain.schedule import DebitCalendar
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
