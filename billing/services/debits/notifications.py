"""Pre-debit notifications (SPEC §4).

merchant flow: we send the PDN (`command=pre_debit_notify`) with our own reference, track it
to SUCCESS / FAILURE, and let the debit execute no earlier than 24 h after its success, with
the amount and date the PDN announced.

juspay flow: Juspay sends the PDN itself; its NOTIFICATION_FAILED means the pending order will
not be debited, so the debit gets a new order (a new try) while its window allows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import DebitState
from billing.domain.ids import notification_ref_for
from billing.domain.timing import PDN_MIN_NOTICE, Flow, merchant_execution_at
from billing.gateway import GatewayError, OutcomeUnknown, Rejected, Unavailable
from billing.services import Clock
from billing.services.debits.policy import DebitPolicy
from billing.services.ports import DebitGateway
from billing.store import debits as debit_store
from billing.store.models import Debit, Mandate, Notification, Order

log = logging.getLogger("billing.notifications")

_D = DebitState
CHECK_LEASE = timedelta(minutes=2)
# Poll our PDN's status on this rhythm until it settles (webhooks usually come first).
PDN_CHECKS = (
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
# A failed PDN is sent again after this, while a new 24 h notice still fits the window.
PDN_RETRY_AFTER = timedelta(hours=1)
# The PDN's debit instant is at least this far past the PDN, so its success leaves the full
# 24 h notice before execution.
PDN_SLACK = timedelta(hours=1)
FINAL_PDN = ("SUCCESS", "FAILURE")


class Notifications:
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

    # -- merchant flow ---------------------------------------------------------------------

    def send(self, debit_id: int) -> str:
        """Claim a due merchant-flow debit, record its PDN, send it."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = debit_store.with_mandate(session, debit_id)
            if found is None:
                return "missing"
            debit, mandate = found
            state = DebitState(debit.state)
            if debit.flow != Flow.MERCHANT or state not in (_D.PLANNED, _D.RETRY_SCHEDULED):
                return f"no PDN to send ({debit.flow}, {state})"
            if debit.due_at is None or debit.due_at > now:
                return "not due"
            if mandate.status != "ACTIVE":
                return "held: mandate " + mandate.status  # the execute sweep skips or holds it
            txn_date = max(debit.planned_at, now + PDN_MIN_NOTICE + PDN_SLACK)
            if txn_date >= debit.window_closes_at:
                debit_store.move(
                    session, debit.id, expected=state, target=_D.FAILED, at=now,
                    cause="no time left in the window for a 24 h pre-debit notification",
                    values={"due_at": None},
                )  # fmt: skip
                return "failed: no time for a PDN"
            sent_before = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.debit_id == debit.id)
            )
            reference = notification_ref_for(
                mandate.mandate_id, debit.cycle, (sent_before or 0) + 1
            )
            if not debit_store.move(
                session, debit.id, expected=state, target=_D.NOTIFYING, at=now,
                cause=f"sending pre-debit notification {reference} for {txn_date:%Y-%m-%d}",
                values={"claimed_at": now, "due_at": None},
            ):  # fmt: skip
                return "claimed elsewhere"
            session.add(
                Notification(
                    reference=reference,
                    mandate_pk=mandate.id,
                    debit_id=debit.id,
                    status="RECORDED",
                    amount=debit.amount,
                    txn_date=txn_date,
                    next_check_at=now + PDN_CHECKS[0],
                    checks=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            mandate_id, customer_id, amount = mandate.mandate_id, mandate.customer_id, debit.amount
        return self._send(reference, mandate_id, customer_id, amount, txn_date)

    def _send(
        self, reference: str, mandate_id: str, customer_id: str, amount: Decimal, txn_date: datetime
    ) -> str:
        try:
            result = self.gateway.send_pre_debit_notification(
                mandate_id=mandate_id,
                customer_id=customer_id,
                object_reference_id=reference,
                amount=amount,
                txn_date=txn_date,
                description="Upcoming debit for your subscription",
            )
        except (OutcomeUnknown, Unavailable) as exc:
            log.info("PDN %s: %s; its status will be checked", reference, exc)
            return "unknown: will check status"
        except Rejected as exc:
            return self.record(reference, "FAILURE", source=f"rejected {exc.code}")
        return self.record(reference, result.status, source="send")

    def check(self, reference: str) -> str:
        """Read a due PDN's status once; resend the same reference if Juspay never got it."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = session.execute(
                select(Notification, Mandate.mandate_id, Mandate.customer_id)
                .join(Mandate, Mandate.id == Notification.mandate_pk)
                .where(Notification.reference == reference)
            ).one_or_none()
            if found is None:
                return "missing"
            notification, mandate_id, customer_id = found
            due = notification.next_check_at
            if due is None or due > now or notification.status in FINAL_PDN:
                return "not due"
            claimed = session.execute(
                update(Notification)
                .where(Notification.id == notification.id, Notification.next_check_at == due)
                .values(
                    next_check_at=now + CHECK_LEASE,
                    checks=Notification.checks + 1,
                    dispatched_at=None,
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "checked elsewhere"
            amount, txn_date, status = (
                notification.amount,
                notification.txn_date,
                notification.status,
            )
        try:
            result = self.gateway.notification_status(reference, customer_id=customer_id)
        except Rejected as exc:
            if status == "RECORDED" and exc.http_status == 404:
                return self._send(reference, mandate_id, customer_id, amount, txn_date)
            return self.record(reference, "FAILURE", source=f"status {exc.code}")
        except GatewayError as exc:
            log.info("PDN %s status check failed: %s", reference, exc)
            return self.record(reference, status, source="status check failed")
        return self.record(reference, result.status, source="status check")

    def record(
        self, reference: str, status: str, *, source: str, at: datetime | None = None
    ) -> str:
        """Apply a PDN status (send answer, status check or webhook) to it and its debit."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            notification = session.scalars(
                select(Notification).where(Notification.reference == reference).with_for_update()
            ).one_or_none()
            if notification is None:
                return "unknown reference"
            if notification.status in FINAL_PDN:
                return f"already {notification.status}"  # final states are never left
            notification.status = status if status else notification.status
            notification.status_at = at or now
            notification.updated_at = now
            if status == "SUCCESS":
                notification.succeeded_at = at or now
                notification.next_check_at = None
                return self._succeeded(session, notification, now)
            if status == "FAILURE":
                notification.next_check_at = None
                return self._failed(session, notification, now, source)
            waits = PDN_CHECKS[min(notification.checks, len(PDN_CHECKS) - 1)]
            notification.next_check_at = now + waits
            return f"PDN {notification.status}"

    def _succeeded(self, session: Session, notification: Notification, now: datetime) -> str:
        debit = session.get(Debit, notification.debit_id) if notification.debit_id else None
        if debit is None or debit.state != _D.NOTIFYING:
            return "PDN SUCCESS"
        assert notification.succeeded_at is not None  # set by the caller
        execute_at = merchant_execution_at(notification.txn_date, notification.succeeded_at)
        cal = self.policy.planning.calendar
        if cal.local_date(execute_at) != cal.local_date(notification.txn_date):
            # The notice came too late for the announced date; the PDN must match what runs.
            return self._failed(session, notification, now, "success too late for its date")
        debit_store.move(
            session, debit.id, expected=_D.NOTIFYING, target=_D.NOTIFIED, at=now,
            cause=f"pre-debit notification {notification.reference} succeeded",
            values={"due_at": execute_at, "claimed_at": None, "dispatched_at": None},
        )  # fmt: skip
        return str(_D.NOTIFIED)

    def _failed(self, session: Session, notification: Notification, now: datetime, why: str) -> str:
        debit = session.get(Debit, notification.debit_id) if notification.debit_id else None
        if debit is None or debit.state != _D.NOTIFYING:
            return "PDN FAILURE"
        retry_at = now + PDN_RETRY_AFTER
        if retry_at + PDN_MIN_NOTICE + PDN_SLACK >= debit.window_closes_at:
            debit_store.move(
                session, debit.id, expected=_D.NOTIFYING, target=_D.FAILED, at=now,
                cause=f"pre-debit notification failed ({why}); no time for another",
                values={"due_at": None},
            )  # fmt: skip
            return str(_D.FAILED)
        debit_store.move(
            session, debit.id, expected=_D.NOTIFYING, target=_D.PLANNED, at=now,
            cause=f"pre-debit notification failed ({why}); a new one is due",
            values={"due_at": retry_at, "claimed_at": None, "dispatched_at": None},
        )  # fmt: skip
        return str(_D.PLANNED)

    # -- juspay flow -----------------------------------------------------------------------

    def juspay_notification_failed(
        self, mandate_id: str, *, amount: Decimal | None, at: datetime | None = None
    ) -> str:
        """Juspay's own PDN failed: the pending order of that mandate will not be debited.

        Juspay's event names the mandate, not our order, so the debit is the mandate's
        juspay-flow debit pending on Juspay (amount checked when the event carries one). It
        gets a new order (new order_id) if a try is left and the window allows, else fails.
        """
        now = self.clock()
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(Debit, Order)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .join(Order, (Order.debit_id == Debit.id) & (Order.try_number == Debit.tries))
                .where(
                    Mandate.mandate_id == mandate_id,
                    Debit.state == _D.PENDING,
                    Debit.flow == Flow.JUSPAY,
                )
                .order_by(Debit.planned_at)
            ).all()
            matching = [(d, o) for d, o in rows if amount is None or d.amount == amount]
            if not matching:
                return "no pending juspay-flow debit for that notification"
            debit, order = matching[0]
            order.gateway_status = order.gateway_status or "PENDING_VBV"
            order.error_code = "NOTIFICATION_FAILED"
            order.next_check_at = None
            order.state = "SETTLED"
            order.settled_at = now
            lead = self.policy.retry_lead(debit.flow)
            tries_left = debit.tries < self.policy.retry.max_tries
            if tries_left and now + lead < debit.window_closes_at:
                target, due = _D.RETRY_SCHEDULED, now
                cause = "Juspay's pre-debit notification failed; a new order is due"
            else:
                target, due = _D.FAILED, None
                cause = "Juspay's pre-debit notification failed; no try or time left"
            debit_store.move(
                session, debit.id, expected=_D.PENDING, target=target, at=now, cause=cause,
                order_id=order.order_id, values={"due_at": due, "dispatched_at": None},
            )  # fmt: skip
            return str(target)
