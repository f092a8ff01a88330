"""Sending recorded orders to Juspay concurrently, and what each answer means for its debit.

A batch's orders are committed before any of them is sent; here they go out over a bounded
thread pool sharing the process's one gateway client (`BILLING_GATEWAY_MAX_IN_FLIGHT` calls at
a time), so a 50 ms gateway costs a batch a few round trips, not one per debit.

`answer_news` is the one mapping from an execution answer (or its error) to the news that
settles the debit; the single send (`Debits.send`) and the batch both use it.

A 429 is Juspay's rate limit: the order was not taken, so it is sent again (same order_id)
after a pause that every thread of the process observes, doubling to `MAX_PAUSE`; it never
counts against the customer. After `MAX_RATE_LIMITED` refusals in a row the debit is left to
reconciliation (UNKNOWN: a status read, then "not found" resends the same order_id).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.domain.outcomes import Outcome, classify_order
from billing.gateway import (
    AuthenticationFailed,
    ExecutionResult,
    GatewayError,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.services.debits.settlement import News, classify_rejection_outcome
from billing.services.ports import DebitGateway
from billing.telemetry import logs

log = logging.getLogger("billing.debits")
DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
RATE_LIMITED = 429
FIRST_PAUSE = 0.5  # seconds
MAX_PAUSE = 30.0
MAX_RATE_LIMITED = 6  # 429s in a row for one order before it is left to reconciliation


@dataclass(frozen=True, slots=True)
class OrderToSend:
    """A recorded (committed) order and what the execution call needs."""

    order_id: str
    amount: Decimal
    currency: str
    customer_id: str
    mandate_id: str
    execution_date: datetime | None
    notification_id: str | None
    debit_id: int | None = None  # for the log lines about the call (telemetry.logs)
    try_number: int | None = None


def answer_news(order_id: str, answer: ExecutionResult | GatewayError) -> News:
    """What an execution answer says about the order `order_id` (SPEC §5)."""
    if isinstance(answer, (OutcomeUnknown, Unavailable, AuthenticationFailed)):
        # Unavailable never reached Juspay and 401 created nothing, but reconciling first
        # costs one status call and needs no special case: "not found" resends the same id.
        return News(order_id, Outcome.UNKNOWN, cause=f"execution: {answer}")
    if isinstance(answer, Rejected):
        if answer.code == DUPLICATE_ORDER_ID:  # we sent it before (a crash, a redelivery)
            return News(order_id, Outcome.UNKNOWN, cause="execution: order id already at Juspay")
        return News(
            order_id,
            classify_rejection_outcome(answer),
            cause=f"rejected: {answer.code} {answer.message or ''}".strip(),
            error_code=answer.code,
            error_message=answer.message,
            order_state="REJECTED",
        )
    if isinstance(answer, GatewayError):
        return News(order_id, Outcome.UNKNOWN, cause=f"execution: {answer}")
    if answer.order_id != order_id:
        # An answer about another order says nothing about ours: ask for ours (SPEC §5).
        return News(
            order_id,
            Outcome.UNKNOWN,
            cause=f"execution answered for order {answer.order_id}, not {order_id}",
        )
    return News(
        order_id,
        classify_order(answer.status),
        cause=f"execution answered {answer.status}",
        gateway_status=answer.status,
        txn_id=answer.txn_id,
        txn_uuid=answer.txn_uuid,
        order_state="SENT",
    )


class RateLimit:
    """The process's pause after a 429: every sending thread waits it out (thread-safe)."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._pause = FIRST_PAUSE
        self._sleep = sleep

    def wait(self) -> None:
        with self._lock:
            delay = self._resume_at - time.monotonic()
        if delay > 0:
            self._sleep(delay)

    def refused(self) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + self._pause)
            self._pause = min(self._pause * 2, MAX_PAUSE)

    def passed(self) -> None:
        with self._lock:
            self._pause = FIRST_PAUSE


def _is_rate_limited(error: GatewayError) -> bool:
    return isinstance(error, Unavailable) and error.http_status == RATE_LIMITED


class Sender:
    """Sends recorded orders, each exactly once per call of `send_all` (429s aside)."""

    def __init__(
        self,
        gateway: DebitGateway,
        executor: Executor | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.gateway = gateway
        self.executor = executor
        self.rate_limit = rate_limit or RateLimit()

    def send_all(self, orders: Sequence[OrderToSend]) -> list[News]:
        """Every order's news, in the orders' sequence (never raises for one order's error)."""
        if self.executor is None or len(orders) < 2:
            return [self.send_one(o) for o in orders]
        # Each call in a copy of the caller's context: the task's log ids go with it.
        contexts = [contextvars.copy_context() for _ in orders]
        return list(self.executor.map(lambda c, o: c.run(self.send_one, o), contexts, orders))

    def send_one(self, order: OrderToSend) -> News:
        with logs.bound(
            debit_id=order.debit_id,
            mandate_id=order.mandate_id,
            order_id=order.order_id,
            try_number=order.try_number,
        ):
            try:
                return self._send_one(order)
            except Exception as exc:  # one order's surprise is not the whole batch's
                # Not a gateway answer (a bug, a library error): the call may have reached
                # Juspay, so the order is reconciled by a status read, never sent blindly again.
                log.exception("order %s: unexpected error while sending", order.order_id)
                return News(
                    order.order_id,
                    Outcome.UNKNOWN,
                    cause=f"execution: unexpected {type(exc).__name__} while sending",
                )

    def _send_one(self, order: OrderToSend) -> News:
        answer: ExecutionResult | GatewayError
        for _ in range(MAX_RATE_LIMITED):
            self.rate_limit.wait()
            try:
                answer = self.gateway.execute_mandate(
                    order_id=order.order_id,
                    amount=order.amount,
                    customer_id=order.customer_id,
                    mandate_id=order.mandate_id,
                    currency=order.currency,
                    execution_date=order.execution_date,
                    notification_id=order.notification_id,
                )
            except GatewayError as exc:
                answer = exc
                if _is_rate_limited(exc):
                    self.rate_limit.refused()
                    continue
            else:
                self.rate_limit.passed()
            return answer_news(order.order_id, answer)
        return answer_news(order.order_id, answer)
