"""The sandbox's memory: records, ledgers, clock, faults, keys and webhooks, behind one lock.

Every Juspay call and control call runs its whole operation while holding `lock` (an RLock), so
tests reading `state` directly from another thread see consistent values.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from billing.sandbox import lifecycle
from billing.sandbox.clock import SandboxClock
from billing.sandbox.crypto import SandboxKeys
from billing.sandbox.faults import FaultBook
from billing.sandbox.models import (
    MANDATE_STATUSES,
    METHOD_TYPES,
    Attempt,
    Fulfillment,
    Mandate,
    Notification,
    Order,
    PayoutOrder,
    PayoutTxn,
)
from billing.sandbox.payout_seed import build_payout, seed_amount
from billing.sandbox.shapes import (
    ec_event,
    fulfillment_shape,
    iso,
    mandate_block,
    notification_shape,
    order_shape,
    payout_event,
    payout_order_info,
    payout_txn_info,
)
from billing.sandbox.webhooks import WebhookConfig, WebhookDispatcher


@dataclass
class SandboxConfig:
    api_key: str = "sandbox_api_key"
    merchant_id: str = "sandbox_merchant"
    key_id: str = "JuspayKID"  # kid: the sandbox's (Juspay's) key
    merchant_key_id: str = "JuspaySID"  # sid: the merchant's key
    settle_polls: int = 2  # UPI/NB/WALLET orders settle on this poll...
    settle_seconds: float = 60.0  # ...or this long after creation (sandbox clock)
    notification_polls: int = 2
    notification_seconds: float = 60.0
    fulfillment_polls: int = 2
    fulfillment_seconds: float = 60.0
    strict_routing: bool = True  # refuse an x-routing-id that is not the object's customer


def _epoch(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except ValueError:
            pass
    raise ValueError(f"{name}: expected epoch seconds or an ISO date-time")


class SandboxState:
    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        keys: SandboxKeys | None = None,
        webhooks: WebhookConfig | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self._initial_config = replace(self.config)
        self.lock = threading.RLock()
        self.clock = SandboxClock()
        self.faults = FaultBook()
        self.keys = keys or SandboxKeys()
        self.webhooks = WebhookDispatcher(webhooks)
        self.requests: deque[dict[str, Any]] = deque(maxlen=1000)
        # Counted over the whole run (the request log keeps only the last 1000).
        self.duplicates_refused = 0
        self._clear()
        self.clock.on_change = self.tick

    def _clear(self) -> None:
        self.mandates: dict[str, Mandate] = {}
        self.orders: dict[str, Order] = {}
        self.notifications: dict[str, Notification] = {}
        self.payouts: dict[str, PayoutOrder] = {}
        self.attempts: list[Attempt] = []
        self.ledger: list[dict[str, Any]] = []
        self.payout_ledger: list[dict[str, Any]] = []
        # What may still move on its own, so that a tick never walks every record.
        self.open_orders: dict[str, Order] = {}
        self.open_notifications: dict[str, Notification] = {}
        self.open_fulfillments: dict[str, tuple[PayoutOrder, Fulfillment]] = {}
        self.mandate_check_at: datetime | None = None  # next scheduled mandate change
        self.mandates_dirty = True  # schedules changed: rescan mandates on the next tick

    def tick(self) -> None:
        """Settle whatever is due on the sandbox clock (see lifecycle)."""
        lifecycle.tick(self)

    def mandates_changed(self) -> None:
        with self.lock:
            self.mandates_dirty = True

    def reset(self) -> None:
        """Forget everything but the keys: records, ledgers, faults, clock, webhook switches."""
        with self.lock:
            self._clear()
            self.config = replace(self._initial_config)
            self.clock.real()
            self.faults.clear()
            self.webhooks.reset()
            self.requests.clear()
            self.duplicates_refused = 0
            self.keys.set_merchant_public(None)

    # -- seeding ---------------------------------------------------------------------------

    def seed_mandate(self, spec: Mapping[str, Any] | None = None, /, **fields: Any) -> Mandate:
        """Create or replace a mandate; `ValueError` names a bad field."""
        data = {**(spec or {}), **fields}
        for name in ("mandate_id", "customer_id"):
            if not data.get(name):
                raise ValueError(f"{name}: required")
        mandate = Mandate(mandate_id=str(data["mandate_id"]), customer_id=str(data["customer_id"]))
        if "max_amount" in data:
            mandate.max_amount = seed_amount(data["max_amount"], "max_amount")
        for name, allowed in (
            ("status", MANDATE_STATUSES),
            ("payment_method_type", METHOD_TYPES),
            ("amount_rule", {"FIXED", "VARIABLE"}),
        ):
            if name in data:
                value = str(data[name]).upper()
                if value not in allowed:
                    raise ValueError(f"{name}: expected one of {sorted(allowed)}")
                setattr(mandate, name, value)
        for name in ("frequency", "rule_type", "currency", "payment_method"):
            if data.get(name) is not None:
                setattr(mandate, name, str(data[name]))
        if data.get("rule_value") is not None:
            mandate.rule_value = int(data["rule_value"])
        mandate.start_date = _epoch(data.get("start_date"), "start_date")
        mandate.end_date = _epoch(data.get("end_date"), "end_date")
        if mandate.status == "ACTIVE":
            mandate.activated_at = self.clock.now()
        with self.lock:
            self.mandates[mandate.mandate_id] = mandate
            self.mandates_dirty = True
        return mandate

    def seed_payout(self, spec: Mapping[str, Any]) -> PayoutOrder:
        """A payout order from the body of Juspay's order create (see payout_seed)."""
        payout = build_payout(spec, now=self.clock.now())
        with self.lock:
            self.payouts[payout.order_id] = payout
        return payout

    # -- money moved -----------------------------------------------------------------------

    def record_charge(self, order: Order) -> None:
        self.ledger.append(
            {
                "order_id": order.order_id,
                "mandate_id": order.mandate_id,
                "customer_id": order.customer_id,
                "amount": str(order.amount),
                "currency": order.currency,
                "at": iso(self.clock.now()),
            }
        )

    def record_payout(self, payout: PayoutOrder, fulfillment: Fulfillment, txn: PayoutTxn) -> None:
        """Money paid out: one entry per successful transaction (two would be a double pay)."""
        self.payout_ledger.append(
            {
                "order_id": payout.order_id,
                "fulfillment_id": fulfillment.id,
                "transaction_ref": txn.ref,
                "amount": str(txn.amount),
                "at": iso(self.clock.now()),
            }
        )

    def charges(self, order_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.ledger if order_id in (None, e["order_id"])]

    # -- webhooks --------------------------------------------------------------------------

    def emit_order(self, order: Order) -> None:
        name = "ORDER_SUCCEEDED" if order.status == "CHARGED" else "ORDER_FAILED"
        mandate = self.mandates[order.mandate_id]
        content = {"order": order_shape(order, mandate, self.config.merchant_id)}
        self.webhooks.emit(ec_event(name, self.clock.now(), content))

    def emit_mandate(self, mandate: Mandate, event_name: str) -> None:
        content = {"mandate": mandate_block(mandate, full=True, status_key="status")}
        self.webhooks.emit(ec_event(event_name, self.clock.now(), content))

    def emit_notification(self, notification: Notification) -> None:
        ok = notification.status == "SUCCESS"
        name = "NOTIFICATION_SUCCEEDED" if ok else "NOTIFICATION_FAILED"
        content = {"notification": notification_shape(notification)}
        self.webhooks.emit(ec_event(name, self.clock.now(), content))

    def emit_payout(
        self, payout: PayoutOrder, fulfillment: Fulfillment, txn: PayoutTxn | None
    ) -> None:
        """Juspay's payout webhooks for a move: the transaction's, the fulfillment's, the
        order's (labels FULFILLMENT_TXN, FULFILLMENT_ORDER, ORDER; `value` the new status)."""
        if txn is not None:
            info = payout_txn_info(fulfillment, txn)
            self.webhooks.emit(payout_event("FULFILLMENT_TXN", txn.status, info), payout=True)
        info = fulfillment_shape(fulfillment, payout.customer_id, transactions=False)
        event = payout_event("FULFILLMENT_ORDER", fulfillment.status, info)
        self.webhooks.emit(event, payout=True)
        order_info = payout_order_info(payout)
        self.webhooks.emit(payout_event("ORDER", payout.status, order_info), payout=True)

    # -- views for the control API and tests -----------------------------------------------

    def attempt_views(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "id": a.id,
                    "order_id": a.order_id,
                    "fulfillment_id": a.fulfillment_id,
                    "at": iso(a.at),
                    "header": dict(a.header),
                    "kid": a.kid,
                    "sid": a.sid,
                    "signed": a.signed,
                    "payload": a.payload,
                    "plaintext": a.plaintext,
                }
                for a in self.attempts
            ]

    def deadline(self, seconds: float) -> datetime:
        return self.clock.now() + timedelta(seconds=seconds)
