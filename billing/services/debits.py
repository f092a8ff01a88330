"""Executing debits exactly once, and settling them from whatever the gateway says.

The pattern for every call that moves money (STYLE.md, "Never charge twice"):
1. claim the debit with a guarded transition (`... WHERE state = :expected`);
2. write the order row (its deterministic order_id and amount) and COMMIT;
3. send; the answer decides the next state through the domain's `decide`;
4. a timeout, a dropped connection or a 5xx is UNKNOWN: reconciled by order status
   (services/orders.py), never blindly re-sent; only "order not found" re-sends the same id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import (
    AWAITING_OUTCOME,
    DebitState,
    RetryPolicy,
    decide,
)
from billing.domain.ids import order_id_for
from billing.domain.mandate import MandateStatus
from billing.domain.outcomes import (
    Outcome,
    classify_order,
    classify_rejection,
    mandate_status_implied,
)
from billing.domain.polling import next_check_at
from billing.domain.timing import Flow
from billing.gateway import (
    AuthenticationFailed,
    OrderStatusResult,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.services import Clock, NotFoundError, ServiceError
from billing.services.mandates import apply_status
from billing.services.planning import PlanningPolicy
from billing.services.ports import DebitGateway
from billing.store import debits as store
from billing.store.models import Debit, Mandate, Notification, Order

log = logging.getLogger("billing.debits")

_D = DebitState
# States from which a due debit is executed (a merchant-flow PLANNED debit needs its PDN first).
EXECUTABLE = (_D.PLANNED, _D.NOTIFIED, _D.RETRY_SCHEDULED)
DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"


@dataclass(frozen=True, slots=True)
class DebitPolicy:
    planning: PlanningPolicy
    retry: RetryPolicy
    pending_max_age: timedelta
    # A debit left EXECUTING this long (its worker died after committing) is reconciled.
    stale_claim_after: timedelta = timedelta(minutes=10)
    # An UNKNOWN outcome is first reconciled this soon.
    reconcile_after: timedelta = timedelta(minutes=1)
    # A due debit whose mandate is PAUSED is looked at again this often until its window ends.
    paused_recheck: timedelta = timedelta(hours=1)

    def retry_lead(self, flow: str) -> timedelta:
        """How long before the debit a try must be sent: the juspay flow waits out Juspay's PDN."""
        return self.planning.execution_lead if flow == Flow.JUSPAY else timedelta(0)


class Debits:
    """Execution and settlement of debits; every method is safe to run twice or concurrently."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: DebitGateway,
        policy: DebitPolicy,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.policy = policy
        self.clock = clock

    # -- execute ---------------------------------------------------------------------------

    def execute(self, debit_id: int) -> str:
        """Claim a due debit, record its next order, send it, settle from the answer."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = session.execute(
                select(Debit, Mandate)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .where(Debit.id == debit_id)
            ).one_or_none()
            if found is None:
                return "missing"
            debit, mandate = found
            state = DebitState(debit.state)
            if state not in EXECUTABLE or (state is _D.PLANNED and debit.flow == Flow.MERCHANT):
                return f"not executable ({state})"
            if debit.due_at is None or debit.due_at > now:
                return "not due"
            held = self._hold(session, debit, mandate, state, now)
            if held:
                return held
            try_number = debit.tries + 1
            order_id = order_id_for(mandate.mandate_id, debit.cycle, try_number)
            notification_id, execution_date = self._execution_terms(session, debit, now)
            claimed = store.move(
                session,
                debit.id,
                expected=state,
                target=_D.EXECUTING,
                at=now,
                cause=f"executing try {try_number}",
                order_id=order_id,
                values={"tries": try_number, "claimed_at": now, "due_at": None},
            )
            if not claimed:
                return "claimed elsewhere"
            session.add(
                Order(
                    order_id=order_id,
                    debit_id=debit.id,
                    try_number=try_number,
                    amount=debit.amount,
                    currency=debit.currency,
                    state="RECORDED",
                    notification_id=notification_id,
                    execution_date=execution_date,
                    checks=0,
                    created_at=now,
                )
            )
        # Committed: the order exists on our side before a byte goes to Juspay.
        return self.send(order_id)

    def _hold(
        self, session: Session, debit: Debit, mandate: Mandate, state: DebitState, now: datetime
    ) -> str | None:
        """Skip or postpone a due debit its mandate or window no longer allows; None = go."""
        status = MandateStatus(mandate.status)
        if now >= debit.window_closes_at:
            store.move(
                session,
                debit.id,
                expected=state,
                target=_D.SKIPPED,
                at=now,
                cause="window passed before it could execute",
                values={"due_at": None},
            )
            return "skipped: window passed"
        if status is MandateStatus.ACTIVE:
            return None
        if status is MandateStatus.PAUSED or status in (
            MandateStatus.CREATED,
            MandateStatus.PENDING,
        ):
            session.execute(
                update(Debit)
                .where(Debit.id == debit.id, Debit.state == state)
                .values(due_at=now + self.policy.paused_recheck, updated_at=now)
            )
            return f"held: mandate {status}"
        store.move(
            session,
            debit.id,
            expected=state,
            target=_D.SKIPPED,
            at=now,
            cause=f"mandate {status}",
            values={"due_at": None},
        )
        return f"skipped: mandate {status}"

    def _execution_terms(
        self, session: Session, debit: Debit, now: datetime
    ) -> tuple[str | None, datetime | None]:
        """(notification_id, execution_date) to send with the order, per flow (SPEC §4)."""
        if debit.flow == Flow.MERCHANT:
            notification = session.scalars(
                select(Notification)
                .where(Notification.debit_id == debit.id, Notification.status == "SUCCESS")
                .order_by(Notification.id.desc())
                .limit(1)
            ).first()
            if notification is not None:
                return notification.reference, max(now, notification.txn_date)
            return None, None
        if debit.flow == Flow.JUSPAY:
            # Juspay notifies, waits its 24 h, then debits on this date.
            return None, max(debit.planned_at, now + self.policy.planning.execution_lead)
        return None, None

    def send(self, order_id: str) -> str:
        """Send a recorded order to Juspay and settle the debit from the answer."""
        with self.sessions() as session:
            found = session.execute(
                select(Order, Mandate.mandate_id, Mandate.customer_id)
                .join(Debit, Debit.id == Order.debit_id)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .where(Order.order_id == order_id)
            ).one()
            order, mandate_id, customer_id = found
            session.expunge(order)
        try:
            result = self.gateway.execute_mandate(
                order_id=order.order_id,
                amount=order.amount,
                customer_id=customer_id,
                mandate_id=mandate_id,
                currency=order.currency,
                execution_date=order.execution_date,
                notification_id=order.notification_id,
            )
        except (OutcomeUnknown, Unavailable, AuthenticationFailed) as exc:
            # Unavailable never reached Juspay and 401 created nothing, but reconciling first
            # costs one status call and needs no special case: "not found" resends the same id.
            return self.settle_unknown(order_id, f"execution: {exc}")
        except Rejected as exc:
            if exc.code == DUPLICATE_ORDER_ID:  # we sent it before (a crash, a redelivery)
                return self.settle_unknown(order_id, "execution: order id already at Juspay")
            return self.settle(
                order_id,
                classify_rejection_outcome(exc),
                cause=f"rejected: {exc.code} {exc.message or ''}".strip(),
                error_code=exc.code,
                error_message=exc.message,
                order_state="REJECTED",
            )
        return self.settle(
            order_id,
            classify_order(result.status),
            cause=f"execution answered {result.status}",
            gateway_status=result.status,
            txn_id=result.txn_id,
            txn_uuid=result.txn_uuid,
            order_state="SENT",
        )

    # -- settle ----------------------------------------------------------------------------

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
                return f"already {state}"
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


# States a debit can be cancelled from without asking Juspay: nothing was sent for it yet.
CANCELLABLE_LOCALLY = (_D.PLANNED, _D.NOTIFIED, _D.RETRY_SCHEDULED)
# Juspay refuses to cancel a scheduled execution later than this before it.
CANCEL_CUTOFF = timedelta(minutes=30)


def cancel_debit(
    sessions: sessionmaker[Session],
    gateway: Callable[[], DebitGateway],
    debit_id: int,
    *,
    now: datetime,
) -> str:
    """The merchant stops a debit. Not yet sent: cancelled here. Scheduled at Juspay (a juspay
    flow order waiting for its execution date): `cancel_recurring_transaction` first, and
    only Juspay's yes cancels it. Anything else (in flight, settled) cannot be cancelled."""
    with sessions() as session, session.begin():
        found = session.execute(
            select(Debit, Mandate.mandate_id, Mandate.customer_id)
            .join(Mandate, Mandate.id == Debit.mandate_pk)
            .where(Debit.id == debit_id)
        ).one_or_none()
        if found is None:
            raise NotFoundError(f"debit {debit_id} does not exist")
        debit, mandate_id, customer_id = found
        state = DebitState(debit.state)
        if state in CANCELLABLE_LOCALLY:
            moved = store.move(
                session,
                debit.id,
                expected=state,
                target=_D.CANCELLED,
                at=now,
                cause="cancelled by the merchant",
                values={"due_at": None},
            )
            return "CANCELLED" if moved else "changed meanwhile; try again"
        order = session.scalars(
            select(Order).where(Order.debit_id == debit.id, Order.try_number == debit.tries)
        ).one_or_none()
        scheduled = (
            state is _D.PENDING
            and order is not None
            and order.execution_date is not None
            and order.execution_date - now >= CANCEL_CUTOFF
        )
        if not scheduled or order is None:
            raise ServiceError(
                f"debit {debit_id} is {state}: only a debit not yet sent, or scheduled at "
                f"Juspay more than {CANCEL_CUTOFF} ahead, can be cancelled"
            )
        order_id = order.order_id
    try:
        gateway().cancel_recurring_transaction(
            mandate_id, customer_id=customer_id, order_id=order_id
        )
    except Rejected as exc:
        raise ServiceError(f"Juspay refused to cancel order {order_id}: {exc}") from exc
    except (OutcomeUnknown, Unavailable) as exc:
        raise ServiceError(f"cancel of order {order_id} not confirmed ({exc}); retry") from exc
    with sessions() as session, session.begin():
        order_row = session.scalars(select(Order).where(Order.order_id == order_id)).one()
        order_row.next_check_at = None
        order_row.error_code = "MERCHANT_CANCELLED"
        order_row.state = "SETTLED"
        order_row.settled_at = now
        store.move(
            session,
            debit_id,
            expected=_D.PENDING,
            target=_D.CANCELLED,
            at=now,
            cause=f"cancelled by the merchant; Juspay cancelled order {order_id}",
            order_id=order_id,
        )
    return "CANCELLED"
