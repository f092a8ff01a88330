"""How sandbox objects move on their own: orders settle, notifications complete, mandates pause,
payout attempts are taken up and their transactions settle.

Things move on a poll of their status (after N polls) or when the sandbox clock passes their
time; `tick()` runs before every call and every second in the background. Call with the state
lock held (every function here mutates records and emits webhooks).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from billing.sandbox.clock import SandboxClock
from billing.sandbox.models import (
    PENDING_STATUSES,
    Fulfillment,
    Mandate,
    Notification,
    Order,
    PayoutOrder,
    PayoutTxn,
    QueuedAttempt,
)


class Timings(Protocol):
    """How long the sandbox lets a PDN and a payout fulfillment take on their own."""

    @property
    def notification_seconds(self) -> float: ...
    @property
    def fulfillment_seconds(self) -> float: ...


class World(Protocol):
    """What the lifecycle reads and moves: the records, the clock, the ledgers and webhooks.

    `SandboxState` is the one World; it is named here as a port so that the state may call the
    lifecycle without the lifecycle importing the state back."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    @property
    def clock(self) -> SandboxClock: ...
    @property
    def config(self) -> Timings: ...
    @property
    def mandates(self) -> dict[str, Mandate]: ...
    @property
    def notifications(self) -> dict[str, Notification]: ...
    @property
    def open_orders(self) -> dict[str, Order]: ...
    @property
    def open_notifications(self) -> dict[str, Notification]: ...
    @property
    def open_fulfillments(self) -> dict[str, tuple[PayoutOrder, Fulfillment]]: ...

    mandate_check_at: datetime | None
    mandates_dirty: bool

    def record_charge(self, order: Order) -> None: ...
    def record_payout(
        self, payout: PayoutOrder, fulfillment: Fulfillment, txn: PayoutTxn
    ) -> None: ...
    def emit_order(self, order: Order) -> None: ...
    def emit_mandate(self, mandate: Mandate, event_name: str) -> None: ...
    def emit_notification(self, notification: Notification) -> None: ...
    def emit_payout(
        self, payout: PayoutOrder, fulfillment: Fulfillment, txn: PayoutTxn | None
    ) -> None: ...


PDN_WAIT = timedelta(hours=24)  # Juspay debits no earlier than 24 h after the PDN's success
FINAL_NOTIFICATION = frozenset({"SUCCESS", "FAILURE"})


def tick(state: World) -> None:
    """Move what is due; walks only open records, and mandates only when one is due."""
    with state.lock:
        now = state.clock.now()
        due = state.mandate_check_at is not None and now >= state.mandate_check_at
        if state.mandates_dirty or due:
            upcoming = [_mandate_schedule(state, m, now) for m in state.mandates.values()]
            state.mandate_check_at = min((t for t in upcoming if t is not None), default=None)
            state.mandates_dirty = False
        for reference, notification in list(state.open_notifications.items()):
            advance_notification(state, notification, polled=False)
            if notification.status in FINAL_NOTIFICATION:
                del state.open_notifications[reference]
        for order_id, order in list(state.open_orders.items()):
            advance_order(state, order, polled=False)
            if order.status not in PENDING_STATUSES and order.retry_polls is None:
                del state.open_orders[order_id]
        for key, (payout, fulfillment) in list(state.open_fulfillments.items()):
            advance_fulfillment(state, payout, fulfillment, polled=False)
            if not is_open(fulfillment):
                del state.open_fulfillments[key]


def _mandate_schedule(state: World, mandate: Mandate, now: datetime) -> datetime | None:
    """Apply a mandate's scheduled changes that are due; return when the next one is."""
    _mandate_due(state, mandate, now)
    end = None if mandate.end_date is None else datetime.fromtimestamp(mandate.end_date, UTC)
    moments = (mandate.pause_start, mandate.pause_end, mandate.resume_at, end)
    return min((m for m in moments if m is not None and m > now), default=None)


def _mandate_due(state: World, mandate: Mandate, now: datetime) -> None:
    ended = mandate.end_date is not None and now >= datetime.fromtimestamp(mandate.end_date, UTC)
    if ended and mandate.status in ("ACTIVE", "PAUSED"):
        mandate.status = "EXPIRED"
        state.emit_mandate(mandate, "MANDATE_EXPIRED")
        return
    start, end = mandate.pause_start, mandate.pause_end
    pausing = start is not None and start <= now and (end is None or now < end)
    if mandate.status == "ACTIVE" and pausing:
        mandate.status = "PAUSED"
        state.emit_mandate(mandate, "MANDATE_PAUSED")
    if mandate.status == "PAUSED":
        resume = mandate.resume_at or mandate.pause_end
        if resume is not None and now >= resume:
            mandate.status = "ACTIVE"
            mandate.pause_start = mandate.pause_end = mandate.resume_at = None
            mandate.activated_at = now
            state.emit_mandate(mandate, "MANDATE_ACTIVATED")


def advance_order(state: World, order: Order, *, polled: bool) -> None:
    if polled:
        order.polls += 1
    if order.retry_polls is not None:
        # Juspay's silent retry is running: one more retry (a new transaction) per poll.
        if polled:
            order.retry_polls -= 1
            done = min(order.retry_allowed - 1, retry_done(order) + 1)
            order.retry_info = retry_info(done, order.retry_allowed)
            order.txns += 1
        if order.retry_polls <= 0:
            order.retry_polls = None
            final = order.retry_plan[1] if order.retry_plan else "AUTHORIZATION_FAILED"
            if final != "CHARGED":  # every retry allowed was made and failed
                order.retry_info = retry_info(order.retry_allowed, order.retry_allowed)
            settle(state, order, final, None if final == "CHARGED" else order.bank_error_code)
        return
    if order.status not in PENDING_STATUSES:
        return
    now = state.clock.now()
    due_at = order.settle_at
    if order.pdn_reference is not None:
        notification = state.notifications[order.pdn_reference]
        advance_notification(state, notification, polled=False)
        if notification.status == "FAILURE":
            settle(state, order, "AUTHORIZATION_FAILED", "JP_851", "PDN Failed. Not delivered")
            return
        if notification.status != "SUCCESS" or notification.succeeded_at is None:
            return
        earliest = notification.succeeded_at + PDN_WAIT
        due_at = earliest if due_at is None else max(due_at, earliest)
    by_polls = order.settle_polls is not None and order.polls >= order.settle_polls
    if by_polls or (due_at is not None and now >= due_at):
        settle_outcome(state, order)


def retry_info(done: int, allowed: int) -> dict[str, str]:
    """`additional_info.mandate_retry_info` as Juspay sends it: juspay-api.md §3 names the keys,
    and nammayatri's client (`Common.hs`, `MandateRetryInfo`) types every one `Maybe Text`."""
    return {
        "is_retried_order": "true",
        "retries_done_count": str(done),
        "allowed_retry": str(allowed),
        "is_business_retried": "false",
        "is_technical_retried": "true",
    }


def retry_done(order: Order) -> int:
    return int((order.retry_info or {}).get("retries_done_count", 0))


def retry_order(
    state: World,
    order: Order,
    *,
    then: str,
    polls: int,
    settle_at: datetime | None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    """Juspay takes a failed order up again (its retry, or the Mandate Retry API, §4.7): a new
    transaction on the same order, PENDING_VBV until the `polls`-th poll or `settle_at`, then
    `then`. No event is sent for the order going pending again: the failure event already sent
    is stale from now on."""
    if order.status in PENDING_STATUSES or order.status == "CHARGED":
        raise ValueError(f"order {order.order_id} is {order.status}: only a failed one is retried")
    done = retry_done(order) + 1
    order.retry_info = retry_info(done, max(done, order.retry_allowed))
    order.txns += 1
    order.status = "PENDING_VBV"
    order.bank_error_code = order.bank_error_message = None
    order.settled_at = None
    order.pdn_reference = None  # the execution leg is retried; the notification is done
    order.retry_plan = None
    order.polls, order.settle_polls, order.settle_at = 0, polls, settle_at
    order.outcome, order.outcome_code, order.outcome_message = then, error_code, error_message
    state.open_orders[order.order_id] = order


def settle_outcome(state: World, order: Order) -> None:
    """Decide a due order: its planned outcome, unless the mandate stopped meanwhile."""
    mandate = state.mandates[order.mandate_id]
    if mandate.status != "ACTIVE":
        # juspay-api.md §2: JP_852 "Mandate is not in active State", as the order's bank code.
        settle(state, order, "JUSPAY_DECLINED", "JP_852", "Mandate is not in active State")
        return
    if order.retry_plan is not None and order.retry_info is None:
        # Silent retry: the first try fails and Juspay keeps retrying; see faults.silent_retry.
        polls, _ = order.retry_plan
        order.retry_info = retry_info(0, order.retry_allowed)
        order.retry_polls = polls
        settle(state, order, "AUTHORIZATION_FAILED", order.outcome_code or "U30", "Retry pending")
        return
    settle(state, order, order.outcome, order.outcome_code, order.outcome_message)


def settle(
    state: World,
    order: Order,
    status: str,
    code: str | None = None,
    message: str | None = None,
) -> None:
    order.status = status
    order.bank_error_code = None if status == "CHARGED" else code
    order.bank_error_message = None if status == "CHARGED" else message
    order.settled_at = state.clock.now()
    if status == "CHARGED":
        state.record_charge(order)
    state.emit_order(order)


def advance_notification(state: World, notification: Notification, *, polled: bool) -> None:
    if notification.status in FINAL_NOTIFICATION:
        return
    now = state.clock.now()
    if polled:
        notification.polls += 1
    if notification.by_juspay_for is not None:
        due = True  # Juspay's own PDN completes at its first chance
    else:
        age = (now - notification.created_at).total_seconds()
        due = notification.polls >= notification.settle_polls or (
            notification.settle_by_time and age >= state.config.notification_seconds
        )
    if not due:
        if polled and notification.status == "CREATED":
            notification.status = "PENDING"
            notification.updated_at = now
        return
    notification.status = notification.outcome
    notification.updated_at = now
    if notification.status == "SUCCESS":
        notification.succeeded_at = now
    state.emit_notification(notification)


def advance_fulfillment(
    state: World, payout: PayoutOrder, fulfillment: Fulfillment, *, polled: bool
) -> None:
    """Take up the queued attempts that are due, then settle the transactions that are."""
    now = state.clock.now()
    for queued in [q for q in fulfillment.queued if q.due <= now]:
        fulfillment.queued.remove(queued)
        _take_up(state, payout, fulfillment, queued)
    pending = [t for t in fulfillment.transactions if t.status == "INITIATED"]
    if not pending:
        return
    if polled:
        fulfillment.polls += 1
    for txn in pending:
        age = (now - txn.created_at).total_seconds()
        by_polls = txn.settle_polls is not None and fulfillment.polls >= txn.settle_polls
        if by_polls or age >= state.config.fulfillment_seconds:
            _settle(state, payout, fulfillment, txn)


def is_open(fulfillment: Fulfillment) -> bool:
    """Something may still move on its own: a queued attempt or a transaction in progress."""
    return bool(fulfillment.queued) or any(
        t.status == "INITIATED" for t in fulfillment.transactions
    )


def _take_up(
    state: World, payout: PayoutOrder, fulfillment: Fulfillment, queued: QueuedAttempt
) -> None:
    now = state.clock.now()
    txn = PayoutTxn(
        ref=uuid.uuid4().hex[:30],
        id=f"{fulfillment.id}-t{len(fulfillment.transactions) + 1}",
        status="INITIATED",
        method=fulfillment.rail,
        amount=fulfillment.amount,
        created_at=now,
        updated_at=now,
        attempted=True,
        outcome=queued.outcome,
        outcome_code=queued.outcome_code,
        outcome_description=queued.outcome_description,
        settle_polls=queued.settle_polls,
    )
    fulfillment.transactions.append(txn)
    fulfillment.status = "PENDING"
    fulfillment.status_updated_at = fulfillment.updated_at = payout.updated_at = now
    fulfillment.polls = 0
    state.emit_payout(payout, fulfillment, txn)


def _settle(state: World, payout: PayoutOrder, fulfillment: Fulfillment, txn: PayoutTxn) -> None:
    now = state.clock.now()
    txn.status = txn.outcome
    txn.response_code = txn.outcome_code
    txn.response_message = "COMPLETED" if txn.outcome == "SUCCESS" else "FAILURE"
    txn.response_description = txn.outcome_description
    txn.updated_at = now
    if fulfillment.status != "SUCCESS":  # a paid fulfillment stays paid
        fulfillment.status = txn.outcome
        fulfillment.status_updated_at = now
    fulfillment.updated_at = payout.updated_at = now
    if txn.outcome == "SUCCESS":
        state.record_payout(payout, fulfillment, txn)
    state.emit_payout(payout, fulfillment, txn)
