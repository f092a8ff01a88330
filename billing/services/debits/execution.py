"""Executing debits exactly once; settling them is settlement.py.

The pattern for every call that moves money (STYLE.md, "Never charge twice"):
1. claim the debit with a guarded transition (`... WHERE state = :expected`);
2. write the order row (its deterministic order_id and amount) and COMMIT;
3. send; the answer decides the next state through the domain's `decide`;
4. a timeout, a dropped connection or a 5xx is UNKNOWN: reconciled by order status
   (orders.py), never blindly re-sent; only "order not found" re-sends the same id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import DebitState
from billing.domain.ids import order_id_for
from billing.domain.mandate import MandateStatus
from billing.domain.outcomes import classify_order
from billing.domain.timing import Flow
from billing.gateway import (
    AuthenticationFailed,
    OrderStatusResult,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.services import Clock, NotFoundError, ServiceError
from billing.services.debits.policy import DebitPolicy
from billing.services.debits.settlement import Settlement, classify_rejection_outcome
from billing.services.ports import DebitGateway
from billing.store import debits as store
from billing.store.models import Debit, Mandate, Notification, Order

log = logging.getLogger("billing.debits")

_D = DebitState
# States from which a due debit is executed (a merchant-flow PLANNED debit needs its PDN first).
EXECUTABLE = (_D.PLANNED, _D.NOTIFIED, _D.RETRY_SCHEDULED)
DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"


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
        self.settlement = Settlement(sessions, policy, clock)

    # -- execute ---------------------------------------------------------------------------

    def execute(self, debit_id: int) -> str:
        """Claim a due debit, record its next order, send it, settle from the answer."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = store.with_mandate(session, debit_id)
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
            if debit.flow == Flow.MERCHANT and notification_id is None:
                # The day our PDN announced has passed (an outage): executing now would debit
                # on a date the customer was not told about. A new PDN first (SPEC §4).
                store.move(
                    session,
                    debit.id,
                    expected=state,
                    target=_D.PLANNED,
                    at=now,
                    cause="the notified date passed before execution: a new notification is due",
                    values={"due_at": now, "dispatched_at": None},
                )
                return "re-notify: the notified date has passed"
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
            if notification is None:
                return None, None
            execute_at = max(now, notification.txn_date)
            cal = self.policy.planning.calendar
            if cal.local_date(execute_at) != cal.local_date(notification.txn_date):
                return None, None  # the PDN announced another day: it no longer covers this
            return notification.reference, execute_at
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
            return self.settlement.settle(
                order_id,
                classify_rejection_outcome(exc),
                cause=f"rejected: {exc.code} {exc.message or ''}".strip(),
                error_code=exc.code,
                error_message=exc.message,
                order_state="REJECTED",
            )
        return self.settlement.settle(
            order_id,
            classify_order(result.status),
            cause=f"execution answered {result.status}",
            gateway_status=result.status,
            txn_id=result.txn_id,
            txn_uuid=result.txn_uuid,
            order_state="SENT",
        )

    # -- settle (delegated: the same rules for every source of truth) ----------------------

    def settle_unknown(self, order_id: str, cause: str) -> str:
        return self.settlement.settle_unknown(order_id, cause)

    def settle_from_status(self, order_id: str, status: OrderStatusResult, *, source: str) -> str:
        return self.settlement.settle_from_status(order_id, status, source=source)


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
