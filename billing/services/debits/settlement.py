"""Settling debits from what the gateway says: one order's outcome -> the debit's next state.

Every source of truth goes through `Settlement.settle`: the answer to the execution call, a
status poll, reconciliation, a webhook's `content.order`. It believes a status only when its
order_id and amount match what was sent, keeps a debit PENDING while Juspay retries silently,
lets the domain's `decide` choose the next state, and never lets a late charge of an earlier
try pass unnoticed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import AWAITING_OUTCOME, DebitState, decide
from billing.domain.outcomes import (
    Outcome,
    classify_order,
    classify_rejection,
    mandate_status_implied,
)
from billing.domain.polling import next_check_at
from billing.gateway import OrderStatusResult, Rejected
from billing.services import Clock
from billing.services.debits.policy import DebitPolicy
from billing.services.mandates.registry import apply_status
from billing.store import debits as store
from billing.store.models import Debit, Mandate, Order

log = logging.getLogger("billing.debits")

_D = DebitState


class Settlement:
    """Applies order outcomes to debits; safe to call twice or concurrently for one order."""

    def __init__(self, sessions: sessionmaker[Session], policy: DebitPolicy, clock: Clock) -> None:
        self.sessions = sessions
        self.policy = policy
        self.clock = clock

    def settle_unknown(self, order_id: str, cause: str) -> str:
        return self.settle(order_id, Outcome.UNKNOWN, cause=cause)

    def settle_from_status(self, order_id: str, status: OrderStatusResult, *, source: str) -> str:
        """Settle from an order status read (poll, reconciliation or a webhook's content.order).

        The status is believed only if its order_id and amount match what we sent; a
        mismatch sends the debit to MANUAL_REVIEW instead of guessing.
        """
        return self.settle(
            order_id,
            classify_order(
                status.status, error_code=status.error_code, error_message=status.error_message
            ),
            cause=f"{source}: order {status.status}",
            gateway_status=status.status,
            gateway_status_id=status.status_id,
            error_code=status.error_code,
            error_message=status.error_message,
            txn_id=status.txn_id,
            evidence=status,
            order_state="SENT",
        )

    def settle(
        self,
        order_id: str,
        outcome: Outcome,
        *,
        cause: str,
        order_state: str | None = None,
        gateway_status: str | None = None,
        gateway_status_id: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        txn_id: str | None = None,
        txn_uuid: str | None = None,
        evidence: OrderStatusResult | None = None,
    ) -> str:
        """Apply one outcome of one order to its debit, through the domain's decision."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            order = session.scalars(
                select(Order).where(Order.order_id == order_id).with_for_update()
            ).one()
            debit = session.scalars(
                select(Debit).where(Debit.id == order.debit_id).with_for_update()
            ).one()
            order.state = order_state or order.state
            order.gateway_status = gateway_status or order.gateway_status
            order.gateway_status_id = gateway_status_id or order.gateway_status_id
            order.error_code = error_code or order.error_code
            order.error_message = (error_message or order.error_message or "")[:255] or None
            order.txn_id = txn_id or order.txn_id
            order.txn_uuid = txn_uuid or order.txn_uuid
            if order.state == "SENT" and order.sent_at is None:
                order.sent_at = now
            state = DebitState(debit.state)
            if evidence is not None and (
                evidence.order_id != order.order_id or evidence.amount != order.amount
            ):
                return self._to_review(
                    session,
                    debit,
                    order,
                    state,
                    now,
                    f"gateway reports order {evidence.order_id} for {evidence.amount}, "
                    f"sent {order.order_id} for {order.amount}",
                )
            if order.try_number != debit.tries:
                return self._late_order(session, debit, order, state, outcome, now)
            if state not in AWAITING_OUTCOME:
                order.next_check_at = None
                if outcome is not Outcome.CHARGED or state is _D.CHARGED:
                    return f"already {state}"
                return self._charged_after_all(session, debit, order, state, now, cause)
            if (
                evidence is not None
                and evidence.mandate_retry_pending
                and outcome
                in (
                    Outcome.FAILED_SOFT,
                    Outcome.UNKNOWN,
                )
            ):
                outcome = Outcome.PENDING  # Juspay is still retrying this order silently
                cause += " (Juspay retry running)"
            return self._decide(session, debit, order, state, outcome, now, cause)

    def _decide(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        outcome: Outcome,
        now: datetime,
        cause: str,
    ) -> str:
        decision = decide(
            state,
            outcome,
            policy=self.policy.retry,
            tries_used=debit.tries,
            now=now,
            window_closes_at=debit.window_closes_at,
            lead=self.policy.retry_lead(debit.flow),
        )
        target = decision.state
        if target in (_D.PENDING, _D.UNKNOWN):
            when = self._next_check(order, now, unknown=target is _D.UNKNOWN)
            if when is None:
                return self._to_review(
                    session,
                    debit,
                    order,
                    state,
                    now,
                    f"still {order.gateway_status or target} after {self.policy.pending_max_age}",
                )
            order.next_check_at = when
        else:
            order.next_check_at = None
            if order.state != "REJECTED":
                order.state = "SETTLED"
            order.settled_at = now
        if target == state:
            return f"still {state}"
        reason = f"{cause}; {decision.reason}" if decision.reason else cause
        store.move(
            session,
            debit.id,
            expected=state,
            target=target,
            at=now,
            cause=reason,
            order_id=order.order_id,
            values={
                "due_at": decision.retry_at,
                "last_error": (order.error_code or None),
                "dispatched_at": None,
            },
        )
        if outcome is Outcome.FAILED_HARD:
            self._mandate_gone(session, debit, order, now)
        return str(target)

    def _next_check(self, order: Order, now: datetime, *, unknown: bool) -> datetime | None:
        if unknown and order.checks == 0:
            return now + self.policy.reconcile_after
        return next_check_at(
            now,
            sent_at=order.sent_at or order.created_at,
            execution_date=order.execution_date,
            max_age=self.policy.pending_max_age,
        )

    def _mandate_gone(self, session: Session, debit: Debit, order: Order, now: datetime) -> None:
        implied = mandate_status_implied(order.error_code, order.error_message)
        if implied is None:
            return
        mandate = session.get_one(Mandate, debit.mandate_pk)
        apply_status(
            session,
            mandate,
            implied,
            now=now,
            calendar=self.policy.planning.calendar,
            source=f"order {order.order_id}",
        )

    def _late_order(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        outcome: Outcome,
        now: datetime,
    ) -> str:
        """An earlier try of this debit reports late. A late charge is flagged, never ignored."""
        order.next_check_at = None if outcome is not Outcome.PENDING else order.next_check_at
        if outcome is not Outcome.CHARGED:
            return f"earlier order {order.order_id}: {outcome}"
        return self._to_review(
            session,
            debit,
            order,
            state,
            now,
            f"earlier order {order.order_id} (try {order.try_number}) charged late",
        )

    def _charged_after_all(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        now: datetime,
        cause: str,
    ) -> str:
        """The current order charged after its debit had moved on: never let it pass.

        A retry waiting to be sent is cancelled by settling the debit CHARGED (the money
        arrived); a debit already final (FAILED, SKIPPED, CANCELLED) is flagged for review.
        """
        order.state = "SETTLED"
        order.settled_at = now
        if state is _D.RETRY_SCHEDULED:
            store.move(
                session,
                debit.id,
                expected=state,
                target=_D.CHARGED,
                at=now,
                cause=f"{cause}: the order reported failed was charged; no retry",
                order_id=order.order_id,
                values={"due_at": None, "dispatched_at": None},
            )
            return str(_D.CHARGED)
        return self._to_review(
            session, debit, order, state, now, f"order {order.order_id} charged while {state}"
        )

    def _to_review(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        now: datetime,
        reason: str,
    ) -> str:
        """MANUAL_REVIEW for a debit awaiting its outcome; a note in the history otherwise."""
        order.next_check_at = None
        log.warning("debit %s needs review: %s", debit.id, reason)
        if state in AWAITING_OUTCOME:
            store.move(
                session,
                debit.id,
                expected=state,
                target=_D.MANUAL_REVIEW,
                at=now,
                cause=reason,
                order_id=order.order_id,
                values={"due_at": None},
            )
            return str(_D.MANUAL_REVIEW)
        store.record_history(
            session, [(debit.id, state, state, f"needs review: {reason}", order.order_id)], at=now
        )
        return f"flagged ({state})"


def classify_rejection_outcome(error: Rejected) -> Outcome:
    return classify_rejection(error.code, error.message)
