"""When to notify and when to execute, per notification flow (SPEC §4). Instants are aware."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from billing.domain.calendar import require_aware


class Flow(StrEnum):
    JUSPAY = "juspay"  # Juspay sends the PDN and debits 24 h after its success
    MERCHANT = "merchant"  # we send the PDN, then execute no earlier than 24 h after its success
    NONE = "none"  # no PDN (e-NACH, wallets): execute on the planned instant


PDN_MIN_NOTICE = timedelta(hours=24)
"""A UPI or card debit needs a pre-debit notification delivered at least this long before."""

JUSPAY_MIN_EXECUTION_LEAD = timedelta(hours=25)
"""Juspay asks for mandate execution at least this long before the debit (juspay flow)."""

PDN_SLACK = timedelta(hours=1)
"""Merchant flow: our PDN announces a debit at least this far past the 24 h notice, so that a
PDN succeeding a little after it was sent still leaves the full notice before execution."""


def execution_due_at(flow: Flow, planned_at: datetime, lead: timedelta) -> datetime:
    """When to call mandate execution for a debit planned at `planned_at`.

    juspay: `lead` ahead, since Juspay holds the order while its PDN runs its 24 h. merchant and
    none: the planned instant (merchant: then `merchant_execution_at` once the PDN succeeded).
    """
    require_aware(planned_at)
    if flow is Flow.JUSPAY:
        return planned_at - lead
    return planned_at


def pdn_due_at(planned_at: datetime, lead: timedelta) -> datetime:
    """Merchant flow: when to send our PDN, `lead` (> 24 h) ahead to leave slack for a PDN retry."""
    return require_aware(planned_at) - lead


def pdn_txn_date(planned_at: datetime, now: datetime) -> datetime:
    """Merchant flow: the debit instant a PDN sent at `now` announces (its `txn_date`)."""
    return max(require_aware(planned_at), require_aware(now) + PDN_MIN_NOTICE + PDN_SLACK)


def execution_instant(
    flow: Flow, *, now: datetime, execution_date: datetime | None, lead: timedelta
) -> datetime:
    """When Juspay would debit an execution call sent at `now` with `execution_date`.

    juspay: Juspay notifies first and debits no earlier than `lead` from now (its 24 h after the
    PDN, which we send 25 h+ ahead); merchant: on the notified date, never before now; none:
    at once (the date is ignored for flows without a PDN, juspay-api.md §2).
    """
    require_aware(now)
    if flow is Flow.JUSPAY:
        return max(execution_date or now, now + lead)
    if flow is Flow.MERCHANT:
        return max(execution_date or now, now)
    return now


def earliest_execution_after_pdn(pdn_succeeded_at: datetime) -> datetime:
    return require_aware(pdn_succeeded_at) + PDN_MIN_NOTICE


def merchant_execution_at(planned_at: datetime, pdn_succeeded_at: datetime) -> datetime:
    """Merchant flow: the planned instant, pushed back if the PDN succeeded less than 24 h before.

    A push onto another local day than the PDN's `txn_date` needs a new PDN (SPEC §4: the date
    notified must be the date executed); the caller checks that against the window.
    """
    return max(require_aware(planned_at), earliest_execution_after_pdn(pdn_succeeded_at))
