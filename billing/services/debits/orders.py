"""Polling pending orders and reconciling unknown ones by order status (SPEC §5, §6).

`order.status` from `GET /orders/{id}` is the one authority. An UNKNOWN order that Juspay says
does not exist was never created there, so the same order_id is sent again: the one case where
a money call is repeated, and it is safe because Juspay refuses a duplicate order_id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import AWAITING_OUTCOME, DebitState
from billing.domain.polling import next_check_at
from billing.gateway import GatewayError, OrderNotFound
from billing.services import Clock
from billing.services.debits.execution import Debits
from billing.services.debits.policy import DebitPolicy
from billing.services.ports import DebitGateway
from billing.store import debits as debit_store
from billing.store.models import Debit, Mandate, Order
from billing.telemetry import logs

log = logging.getLogger("billing.orders")


class Orders:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: DebitGateway,
        policy: DebitPolicy,
        clock: Clock,
        debits: Debits | None = None,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.debits = debits or Debits(sessions, gateway, policy, clock)

    def check(self, order_id: str) -> str:
        """Read a due order's status once and act on it; a no-op if it is not due."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = session.execute(
                select(Order, Debit.state, Mandate.customer_id)
                .join(Debit, Debit.id == Order.debit_id)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .where(Order.order_id == order_id)
            ).one_or_none()
            if found is None:
                return "missing"
            order, debit_state, customer_id = found
            logs.bind(debit_id=order.debit_id, try_number=order.try_number)
            if order.next_check_at is None or order.next_check_at > now:
                return "not due"
            claimed = session.execute(
                update(Order)
                .where(Order.id == order.id, Order.next_check_at == order.next_check_at)
                .values(
                    next_check_at=now + self.policy.stale_claim_after,
                    checks=Order.checks + 1,
                    dispatched_at=None,
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "checked elsewhere"
        try:
            status = self.gateway.order_status(order_id, customer_id=customer_id)
        except OrderNotFound:
            return self._not_found(order_id, DebitState(debit_state))
        except GatewayError as exc:
            unknown = DebitState(debit_state) is DebitState.UNKNOWN
            return self._retry_later(order_id, f"status check failed: {exc}", unknown=unknown)
        return self.debits.settle_from_status(order_id, status, source="status check")

    def _not_found(self, order_id: str, debit_state: DebitState) -> str:
        """Juspay has no such order: never created there, so resend the same order_id, after the
        same window and mandate checks as any execution (it may be too late, or the mandate
        may have ended meanwhile: then the debit is SKIPPED, nothing having moved)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            order = session.scalars(select(Order).where(Order.order_id == order_id)).one()
            if debit_state is not DebitState.UNKNOWN or order.state != "RECORDED":
                return self._lost(session, order, now)
        stop = self.debits.resend_checks(order_id)
        if stop is not None:
            return stop
        with self.sessions() as session, session.begin():
            order = session.scalars(select(Order).where(Order.order_id == order_id)).one()
            resent = debit_store.move(
                session,
                order.debit_id,
                expected=DebitState.UNKNOWN,
                target=DebitState.EXECUTING,
                at=now,
                cause="order not found at Juspay: resending the same order id",
                order_id=order_id,
                values={"claimed_at": now},
            )
            if not resent:
                return "resent elsewhere"
            order.next_check_at = None
        return self.debits.send(order_id)

    def _lost(self, session: Session, order: Order, now: datetime) -> str:
        """An order Juspay had acknowledged cannot vanish: a person must look."""
        order.next_check_at = None
        debit = session.get_one(Debit, order.debit_id)
        state = DebitState(debit.state)
        log.warning("order %s not found at Juspay while its debit is %s", order.order_id, state)
        if state not in AWAITING_OUTCOME:
            return f"not found ({state})"
        debit_store.move(
            session,
            debit.id,
            expected=state,
            target=DebitState.MANUAL_REVIEW,
            at=now,
            cause=f"order {order.order_id} ({order.state}) not found at Juspay",
            order_id=order.order_id,
        )
        return str(DebitState.MANUAL_REVIEW)

    def _retry_later(self, order_id: str, reason: str, *, unknown: bool) -> str:
        now = self.clock()
        with self.sessions() as session, session.begin():
            order = session.scalars(select(Order).where(Order.order_id == order_id)).one()
            # Past the max age we still keep asking: an unreadable status is no verdict.
            when = next_check_at(
                now,
                sent_at=order.sent_at or order.created_at,
                execution_date=order.execution_date,
                max_age=self.policy.pending_max_age,
            ) or now + timedelta(hours=1)
            if unknown:  # money may have moved: ask again sooner, doubling the wait each time
                doubled = self.policy.reconcile_after * 2 ** min(max(order.checks - 1, 0), 16)
                when = min(when, now + doubled)
            order.next_check_at = when
            order.last_error = reason[:255]
            when = order.next_check_at
        log.info("order %s: %s; next check at %s", order_id, reason, when)
        return "check failed; will retry"
