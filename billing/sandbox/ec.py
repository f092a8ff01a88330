"""Mandate execution (`POST /txns`) and order status (`GET /orders/{id}`), as Juspay does them.

Execution checks, in order: mandatory fields, duplicate order id (400 DUPLICATE_ORDER_ID, no
charge), merchant, amount (> 0, at most 2 decimals), routing id, mandate (exists, the
customer's, ACTIVE, currency), amount against the mandate (<= max_amount, = max for FIXED), and
a merchant-sent notification when `mandate.notification_id` is given (SUCCESS, same amount and
day, and 24 h old by the execution time). Then:
- no execution date: CARD settles at once (CHARGED, or failed by fault); UPI/NB/WALLET stay
  PENDING_VBV until the N-th status poll or `settle_seconds` after creation;
- a future `mandate.execution_date`: PENDING_VBV until then; for UPI and CARD without a
  merchant notification, Juspay sends the PDN itself as it accepts the call (recorded as the
  notification `jp_<order_id>`, SUCCESS at once unless a `pdn` fault fails it, which fails the
  order with `bank_error_code` JP_851 "PDN Failed. ...", juspay-api.md §2) and debits no
  earlier than 24 h after its success;
- a mandate no longer ACTIVE when the order comes due: JUSPAY_DECLINED with JP_852 (§2, §4.6).
A refusal for a mandate that is not ACTIVE is `mandate_not_active` (models).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.sandbox import lifecycle
from billing.sandbox.faults import FaultPlan
from billing.sandbox.models import (
    Answer,
    Notification,
    Order,
    Refusal,
    ec_error,
    mandate_not_active,
    missing,
    money,
    valid_order_id,
)
from billing.sandbox.shapes import order_shape
from billing.sandbox.state import SandboxState

REQUIRED = (
    "order.order_id",
    "order.amount",
    "order.customer_id",
    "merchant_id",
    "mandate_id",
    "format",
)
_INDIA = ZoneInfo("Asia/Kolkata")


def check_routing(state: SandboxState, routing_id: str | None, customer_id: str) -> None:
    """Sandbox strictness: the x-routing-id must be the customer the object belongs to."""
    if state.config.strict_routing and routing_id != customer_id:
        raise Refusal(ec_error("INVALID_ROUTING_ID", "x-routing-id must be the customer id"))


def epoch_field(form: Mapping[str, str], name: str) -> datetime | None:
    raw = form.get(name)
    if not raw:
        return None
    if not raw.isdigit():
        raise Refusal(ec_error("INVALID_REQUEST", f"{name}: expected epoch seconds"))
    return datetime.fromtimestamp(int(raw), tz=UTC)


def execute(
    state: SandboxState, form: Mapping[str, str], routing_id: str | None, plan: FaultPlan
) -> Answer:
    for name in REQUIRED:
        if not form.get(name):
            raise missing(name)
    order_id = valid_order_id(form["order.order_id"])
    if order_id in state.orders:
        body = {
            "status": "DUPLICATE_ORDER_ID",
            "status_id": 40,
            "error_message": f"Order {order_id} already exists",
        }
        state.duplicates_refused += 1
        raise Refusal(Answer(400, body))
    if form["merchant_id"] != state.config.merchant_id:
        raise Refusal(ec_error("INVALID_MERCHANT", "merchant_id does not match x-merchantid"))
    if form["format"] != "json":
        raise Refusal(ec_error("INVALID_REQUEST", "format: the sandbox answers json only"))
    amount = money(form["order.amount"], "order.amount")
    customer_id = form["order.customer_id"]
    check_routing(state, routing_id, customer_id)
    mandate = state.mandates.get(form["mandate_id"])
    if mandate is None or mandate.customer_id != customer_id:
        raise Refusal(ec_error("INVALID_MANDATE", "Mandate not found for this customer"))
    if mandate.status != "ACTIVE":
        raise mandate_not_active(mandate.status)
    currency = form.get("order.currency") or "INR"
    if currency != mandate.currency:
        raise Refusal(ec_error("INVALID_CURRENCY", f"Mandate currency is {mandate.currency}"))
    if amount > mandate.max_amount:
        raise Refusal(ec_error("AMOUNT_EXCEEDS_MANDATE_LIMIT", "Amount exceeds max_amount"))
    if mandate.amount_rule == "FIXED" and amount != mandate.max_amount:
        raise Refusal(ec_error("FIXED_AMOUNT_MISMATCH", "FIXED mandate: amount must be max"))
    now = state.clock.now()
    execution_at = epoch_field(form, "mandate.execution_date")
    notification_id = form.get("mandate.notification_id") or None
    if notification_id is not None:
        _check_notification(
            state,
            notification_id,
            mandate_id=mandate.mandate_id,
            amount=amount,
            execution_at=execution_at,
            now=now,
        )

    order = Order(
        order_id=order_id,
        mandate_id=mandate.mandate_id,
        customer_id=customer_id,
        amount=amount,
        currency=currency,
        status="PENDING_VBV",
        created_at=now,
        payment_method_type=mandate.payment_method_type,
        execution_at=execution_at,
        notification_id=notification_id,
    )
    if plan.fail is not None:
        order.outcome = plan.fail.order_status
        order.outcome_code = plan.fail.error_code
        order.outcome_message = plan.fail.error_message or "Transaction declined by bank"
    if plan.silent_retry is not None:
        order.retry_plan = (plan.silent_retry.polls, plan.silent_retry.then)
        order.retry_allowed = plan.silent_retry.allowed
    state.orders[order_id] = order
    state.open_orders[order_id] = order  # the next tick drops it once it is final
    _schedule(state, order, plan, now)
    answered_id = order_id
    if plan.misreport is not None:
        answered_id = plan.misreport.answer_order_id or f"{order_id}X"
    return Answer(
        200,
        {
            "order_id": answered_id,
            "txn_id": f"{state.config.merchant_id}-{order_id}-1",
            "txn_uuid": order.txn_uuid,
            "status": order.status,
            "payment": {"authentication": {"method": "GET", "url": "https://sandbox.invalid/"}},
        },
    )


def _schedule(state: SandboxState, order: Order, plan: FaultPlan, now: datetime) -> None:
    """When a new order settles: at its execution date, at once (cards), or after polls/time."""
    execution_at = order.execution_at
    order.settle_polls = plan.pending_polls
    if execution_at is not None and execution_at > now:
        order.settle_at = execution_at
        if order.payment_method_type in ("UPI", "CARD") and order.notification_id is None:
            _juspay_pdn(state, order, execution_at)
    elif order.payment_method_type == "CARD" and plan.pending_polls is None:
        lifecycle.settle_outcome(state, order)
    elif plan.pending_polls is not None:
        # "stay pending for N polls" means exactly that: no settling by time meanwhile.
        order.settle_at = None
    else:
        order.settle_polls = state.config.settle_polls
        order.settle_at = state.deadline(state.config.settle_seconds)


def _check_notification(
    state: SandboxState,
    reference: str,
    *,
    mandate_id: str,
    amount: Decimal,
    execution_at: datetime | None,
    now: datetime,
) -> None:
    notification = state.notifications.get(reference)
    if notification is None or notification.mandate_id != mandate_id:
        raise Refusal(ec_error("INVALID_NOTIFICATION", "No such notification on this mandate"))
    if notification.status != "SUCCESS" or notification.succeeded_at is None:
        raise Refusal(
            ec_error("NOTIFICATION_NOT_SUCCESSFUL", f"Notification is {notification.status}")
        )
    if notification.amount != amount:
        raise Refusal(ec_error("NOTIFICATION_MISMATCH", "Amount differs from the notification"))
    when = execution_at or now
    notified_day = datetime.fromtimestamp(notification.txn_date, tz=_INDIA).date()
    if execution_at is not None and execution_at.astimezone(_INDIA).date() != notified_day:
        raise Refusal(ec_error("NOTIFICATION_MISMATCH", "Date differs from the notification"))
    if when < notification.succeeded_at + lifecycle.PDN_WAIT:
        raise Refusal(ec_error("EXECUTION_TOO_EARLY", "Execution within 24 h of the notification"))


def _juspay_pdn(state: SandboxState, order: Order, execution_at: datetime) -> None:
    pdn_plan = state.faults.take("pdn", [order.order_id, order.mandate_id])
    reference = f"jp_{order.order_id}"
    notification = Notification(
        object_reference_id=reference,
        mandate_id=order.mandate_id,
        customer_id=order.customer_id,
        amount=order.amount,
        txn_date=int(execution_at.timestamp()),
        description="Notification for upcoming mandate debit",
        created_at=state.clock.now(),
        by_juspay_for=order.order_id,
        outcome="FAILURE" if pdn_plan.fail is not None else "SUCCESS",
    )
    state.notifications[reference] = notification
    order.pdn_reference = reference
    # Juspay notifies as it accepts the execution: the 24 h wait starts now, not at a tick.
    lifecycle.advance_notification(state, notification, polled=False)


def order_status(state: SandboxState, order_id: str, routing_id: str | None) -> Answer:
    order = state.orders.get(order_id)
    if order is None:
        message = f"Order {order_id} not found"
        return Answer(
            404, {"status": "NOT_FOUND", "error_code": "NOT_FOUND", "error_message": message}
        )
    check_routing(state, routing_id, order.customer_id)
    lifecycle.advance_order(state, order, polled=True)
    mandate = state.mandates[order.mandate_id]
    return Answer(200, order_shape(order, mandate, state.config.merchant_id))
