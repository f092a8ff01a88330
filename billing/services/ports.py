"""The ports the use cases need from the outside world, as Protocols.

`billing.gateway.JuspayClient` satisfies them; so can a test double without inheriting
anything. Keeping them narrow says exactly which calls each use case may make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from billing.gateway import (
    ExecutionResult,
    MandateInfo,
    NotificationResult,
    OrderStatusResult,
    PayoutOrderResult,
)
from billing.gateway.cards import CardNumber, CardToken


class MandateStatusReader(Protocol):
    def mandate_status(self, mandate_id: str, *, customer_id: str) -> MandateInfo: ...


class DebitGateway(MandateStatusReader, Protocol):
    """Executions, order status and PDNs; and the mandate's status, read when Juspay refuses a
    debit for a reason about the mandate."""

    def execute_mandate(
        self,
        *,
        order_id: str,
        amount: Decimal,
        customer_id: str,
        mandate_id: str,
        currency: str = "INR",
        execution_date: datetime | None = None,
        notification_id: str | None = None,
    ) -> ExecutionResult: ...

    def order_status(self, order_id: str, *, customer_id: str) -> OrderStatusResult: ...

    def send_pre_debit_notification(
        self,
        *,
        mandate_id: str,
        customer_id: str,
        object_reference_id: str,
        amount: Decimal,
        txn_date: datetime,
        description: str,
    ) -> NotificationResult: ...

    def notification_status(
        self, object_reference_id: str, *, customer_id: str
    ) -> NotificationResult: ...

    def cancel_recurring_transaction(
        self, mandate_id: str, *, customer_id: str, order_id: str
    ) -> None: ...


class MandateGateway(MandateStatusReader, Protocol):
    def pause_mandate(
        self,
        mandate_id: str,
        *,
        customer_id: str,
        pause_start_date: date,
        pause_end_date: date | None = None,
    ) -> MandateInfo: ...

    def resume_mandate(
        self, mandate_id: str, *, customer_id: str, resume_date: date
    ) -> MandateInfo: ...

    def revoke_mandate(self, mandate_id: str, *, customer_id: str) -> MandateInfo: ...

    def customer_mandates(self, customer_id: str) -> list[MandateInfo]: ...


class PayoutGateway(Protocol):
    def payout_order_status(self, order_id: str, *, customer_id: str) -> PayoutOrderResult: ...

    def attempt_payout(
        self,
        order_id: str,
        *,
        customer_id: str,
        fulfillment_id: str,
        card: CardNumber | CardToken,
        sender_details: Mapping[str, object] | None = None,
    ) -> None: ...


Enqueue = Callable[[str, tuple[object, ...]], None]
"""Hands work to the task queue after the caller's commit: (task name, arguments)."""
