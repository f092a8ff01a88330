"""`POST /mandates/{id}` commands, notification status and a customer's mandate list.

Commands: check_status, pause (ACTIVE only; `pause_start_date` / `pause_end_date` epochs, a
future start is scheduled), resume (PAUSED only; `resume_date`), revoke, cancel_recurring_
transaction (a scheduled order, refused later than 30 min before its execution) and
pre_debit_notify (a merchant-sent PDN: CREATED, then PENDING on the first poll, then SUCCESS or
FAILURE on the N-th poll or `notification_seconds` after creation).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from billing.sandbox import lifecycle
from billing.sandbox.ec import check_routing, epoch_field
from billing.sandbox.faults import FaultPlan
from billing.sandbox.models import (
    PENDING_STATUSES,
    Answer,
    Mandate,
    Notification,
    Refusal,
    ec_error,
    mandate_not_active,
    missing,
    money,
)
from billing.sandbox.shapes import mandate_block, notification_shape
from billing.sandbox.state import SandboxState

CANCEL_CUTOFF = timedelta(minutes=30)


def _refuse(message: str) -> Refusal:
    return Refusal(ec_error("invalid_request_error", message))


def mandate_command(
    state: SandboxState,
    mandate_id: str,
    form: Mapping[str, str],
    routing_id: str | None,
    plan: FaultPlan,
) -> Answer:
    command = form.get("command")
    if not command:
        raise missing("command")
    mandate = state.mandates.get(mandate_id)
    if mandate is None:
        raise _refuse("Mandate not found")
    check_routing(state, routing_id, mandate.customer_id)
    if command == "check_status":
        return Answer(200, mandate_block(mandate, full=True))
    if command == "pause":
        return _pause(state, mandate, form)
    if command == "resume":
        return _resume(state, mandate, form)
    if command == "revoke":
        if mandate.status in ("REVOKED", "EXPIRED", "FAILURE"):
            raise _refuse(f"Mandate is already {mandate.status}")
        mandate.status = "REVOKED"
        state.emit_mandate(mandate, "MANDATE_REVOKED")
        return Answer(200, {**mandate_block(mandate, full=True), "response_message": "Revoked"})
    if command == "cancel_recurring_transaction":
        return _cancel(state, mandate, form)
    if command == "pre_debit_notify":
        return _notify(state, mandate, form, plan)
    raise Refusal(ec_error("INVALID_COMMAND", f"Unknown command: {command}"))


def _pause(state: SandboxState, mandate: Mandate, form: Mapping[str, str]) -> Answer:
    if mandate.status != "ACTIVE":
        raise _refuse("Only ACTIVE mandates can be paused")
    now = state.clock.now()
    start = epoch_field(form, "pause_start_date") or now
    end = epoch_field(form, "pause_end_date")
    if end is not None and end <= start:
        raise _refuse("pause_end_date must be after pause_start_date")
    mandate.pause_start, mandate.pause_end, mandate.resume_at = start, end, None
    state.mandates_changed()
    message = "Pause mandate is scheduled"
    if start <= now:
        mandate.status = "PAUSED"
        message = "Mandate is Paused."
        state.emit_mandate(mandate, "MANDATE_PAUSED")
    return Answer(200, {**mandate_block(mandate, full=True), "response_message": message})


def _resume(state: SandboxState, mandate: Mandate, form: Mapping[str, str]) -> Answer:
    if mandate.status != "PAUSED":
        raise _refuse("Only PAUSED mandates can be resumed")
    now = state.clock.now()
    resume = epoch_field(form, "resume_date") or now
    message = "Resume mandate is scheduled"
    if resume <= now:
        mandate.status = "ACTIVE"
        mandate.pause_start = mandate.pause_end = mandate.resume_at = None
        mandate.activated_at = now
        message = "Mandate is Resumed."
        state.emit_mandate(mandate, "MANDATE_ACTIVATED")
    else:
        mandate.resume_at = resume
    state.mandates_changed()
    return Answer(200, {**mandate_block(mandate, full=True), "response_message": message})


def _cancel(state: SandboxState, mandate: Mandate, form: Mapping[str, str]) -> Answer:
    order_id = form.get("order_id")
    if not order_id:
        raise missing("order_id")
    order = state.orders.get(order_id)
    if order is None or order.mandate_id != mandate.mandate_id:
        raise _refuse("No such order on this mandate")
    if order.status not in PENDING_STATUSES or order.execution_at is None:
        raise _refuse("Only a scheduled execution can be cancelled")
    if order.execution_at - state.clock.now() < CANCEL_CUTOFF:
        raise _refuse("Too late: cancel at least 30 minutes before execution")
    # juspay-api.md §4.6: after a stop the order is JUSPAY_DECLINED, bank_error_code JP_852.
    lifecycle.settle(
        state, order, "JUSPAY_DECLINED", "JP_852", "Transaction was declined by merchant."
    )
    return Answer(200, {"order_id": order_id, "status": "SUCCESS", "response_message": "Cancelled"})


def _notify(
    state: SandboxState, mandate: Mandate, form: Mapping[str, str], plan: FaultPlan
) -> Answer:
    for name in ("object_reference_id", "source_info.amount", "source_info.txn_date"):
        if not form.get(name):
            raise missing(name)
    reference = form["object_reference_id"]
    if reference in state.notifications:
        raise Refusal(ec_error("DUPLICATE_OBJECT_REFERENCE_ID", f"{reference} already used"))
    if mandate.status != "ACTIVE":
        raise mandate_not_active(mandate.status)
    if mandate.payment_method_type not in ("UPI", "CARD"):
        raise Refusal(ec_error("INVALID_REQUEST", "Notifications are for UPI and CARD mandates"))
    amount = money(form["source_info.amount"], "source_info.amount")
    if amount > mandate.max_amount:
        raise Refusal(ec_error("AMOUNT_EXCEEDS_MANDATE_LIMIT", "Amount exceeds max_amount"))
    if mandate.amount_rule == "FIXED" and amount != mandate.max_amount:
        raise Refusal(ec_error("FIXED_AMOUNT_MISMATCH", "FIXED mandate: amount must be max"))
    txn_date = epoch_field(form, "source_info.txn_date")
    if txn_date is None:  # pragma: no cover (checked as mandatory above)
        raise missing("source_info.txn_date")
    notification = Notification(
        object_reference_id=reference,
        mandate_id=mandate.mandate_id,
        customer_id=mandate.customer_id,
        amount=amount,
        txn_date=int(txn_date.timestamp()),
        description=form.get("description", ""),
        created_at=state.clock.now(),
        settle_polls=plan.pending_polls or state.config.notification_polls,
        outcome="FAILURE" if plan.fail is not None else "SUCCESS",
        # "stay pending for N polls" means exactly that: no settling by time meanwhile.
        settle_by_time=plan.pending_polls is None,
    )
    state.notifications[reference] = notification
    state.open_notifications[reference] = notification
    return Answer(200, notification_shape(notification))


def notification_status(state: SandboxState, reference: str, routing_id: str | None) -> Answer:
    notification = state.notifications.get(reference)
    if notification is None:
        raise Refusal(ec_error("NOT_FOUND", "Notification not found", status=404, word="NOT_FOUND"))
    check_routing(state, routing_id, notification.customer_id)
    lifecycle.advance_notification(state, notification, polled=True)
    return Answer(200, notification_shape(notification))


def customer_mandates(state: SandboxState, customer_id: str, routing_id: str | None) -> Answer:
    check_routing(state, routing_id, customer_id)
    items: list[dict[str, Any]] = [
        mandate_block(m, full=True, status_key="status")
        for m in state.mandates.values()
        if m.customer_id == customer_id
    ]
    body = {"object": "list", "list": items, "total": len(items), "offset": 0, "count": len(items)}
    return Answer(200, body)
