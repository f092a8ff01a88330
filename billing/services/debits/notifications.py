"""Pre-debit notifications (SPEC §4).

merchant flow: we send the PDN (`command=pre_debit_notify`) with our own reference, track it
to SUCCESS / FAILURE, and let the debit execute no earlier than 24 h after its success, with
the amount and date the PDN announced. Before it is sent, the same window and mandate checks
as an execution (`domain.sending.may_send`); a PDN still pending when even a success would
come too late for its day is abandoned: a new one if the window allows, else SKIPPED. Our
credentials refused (401) is ours to fix: the PDN waits, never counted as failed.

juspay flow: Juspay sends the PDN itself; its NOTIFICATION_FAILED names the mandate and the
day (`source_info.txn_date`), so it is matched to the pending order executing that day for that
amount, which gets a new order (a new try, after its own status read) while its window allows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import DebitState
from billing.domain.ids import notification_ref_for
from billing.domain.mandate import MandateStatus
from billing.domain.outcomes import concerns_mandate
from billing.domain.sending import Verdict, may_send, notice_still_serves
from billing.domain.timing import (
    PDN_MIN_NOTICE,
    PDN_SLACK,
    Flow,
    merchant_execution_at,
    pdn_txn_date,
)
from billing.gateway import (
    AuthenticationFailed,
    GatewayError,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.services import Clock
from billing.services.debits.fit import check_terms
from billing.services.debits.policy import DebitPolicy
from billing.services.debits.settlement import mandate_check
from billing.services.mandates.actions import try_release
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
# ABANDONED: ours, still pending past the day it announced; a new PDN replaced it.
FINAL_PDN = ("SUCCESS", "FAILURE", "ABANDONED")


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
        self.check_mandate = mandate_check(sessions, gateway, policy, clock)

    # -- merchant flow ---------------------------------------------------------------------

    def send(self, debit_id: int, *, released: bool = False) -> str:
        """Check, claim a due merchant-flow debit, record its PDN, send it."""
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
            held = mandate.mandate_id if mandate.hold_reason and not released else None
            claimed = None if held else self._claim(session, debit, mandate, state, now)
        if held is not None:  # a held mandate: try the sync that lifts the hold, then look again
            try_release(self.sessions, self.gateway, held, now=now,
                        calendar=self.policy.planning.calendar)  # fmt: skip
            return self.send(debit_id, released=True)
        assert claimed is not None  # None only for a held mandate, handled above
        if isinstance(claimed, str):
            return claimed
        return self._send(*claimed)

    def _claim(
        self, session: Session, debit: Debit, mandate: Mandate, state: DebitState, now: datetime
    ) -> tuple[str, str, str, Decimal, datetime] | str:
        """The debit against the mandate's terms (`fit.check_terms`), the window and mandate
        checks of any call (`sending.may_send`), then the claim and the PDN's row; returns what
        `_send` needs, or what was done instead."""
        misfit = check_terms(session, debit, mandate, state, now, self.policy.planning,
                             call="notifying")  # fmt: skip
        if misfit is not None:
            return misfit
        txn_date = pdn_txn_date(debit.planned_at, now)
        gate = may_send(
            mandate_status=MandateStatus(mandate.status),
            hold_reason=mandate.hold_reason,
            debits_at=txn_date,
            window_closes_at=debit.window_closes_at,
            now=now,
        )
        if gate.verdict is Verdict.SKIP:
            reason = gate.reason
            if reason.startswith("window passed:"):
                reason = "window passed: no time left in it for a 24 h pre-debit notification"
            debit_store.move(session, debit.id, expected=state, target=_D.SKIPPED, at=now,
                             cause=reason, values={"due_at": None})  # fmt: skip
            return f"skipped: {reason}"
        if gate.verdict is Verdict.HOLD:  # looked at again later, not at every beat
            until = now + self.policy.paused_recheck
            debit_store.hold(session, debit, state=state, until=until, reason=gate.reason,
                             at=now)  # fmt: skip
            return gate.reason
        sent_before = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.debit_id == debit.id)
        )
        reference = notification_ref_for(mandate.mandate_id, debit.cycle, (sent_before or 0) + 1)
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
        return reference, mandate.mandate_id, mandate.customer_id, debit.amount, txn_date

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
        except AuthenticationFailed as exc:
            return self._credentials_refused(reference, exc)
        except Rejected as exc:
            outcome = self.record(reference, "FAILURE", source=f"rejected {exc.code}")
            if concerns_mandate(exc.code, exc.message):
                why = f"Juspay refused PDN {reference}: {exc.code} {exc.message or ''}".strip()
                log.info("PDN %s: %s", reference, self.check_mandate(mandate_id, why))
            return outcome
        return self.record(reference, result.status, source="send")

    def _credentials_refused(self, reference: str, exc: AuthenticationFailed) -> str:
        """401: our API key or merchant id was refused. Not the customer's failure: the PDN
        keeps its reference and is checked again (a 404 then sends it again under the same
        one), never replaced by a second PDN."""
        log.critical(
            "PDN %s: Juspay refused our credentials (HTTP 401): fix BILLING_JUSPAY_API_KEY / "
            "BILLING_JUSPAY_MERCHANT_ID; the notification waits (%s)",
            reference,
            exc,
        )
        return "halted: credentials refused (401)"

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
        except AuthenticationFailed as exc:
            self._credentials_refused(reference, exc)
            return self.record(reference, status, source="status check: credentials refused")
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
            debit = self._waiting_debit(session, notification)
            if debit is not None and not notice_still_serves(
                notification.txn_date,
                now=now,
                window_closes_at=debit.window_closes_at,
                calendar=self.policy.planning.calendar,
            ):
                return self._stalled(session, notification, debit, now)
            return f"PDN {notification.status}"

    def _waiting_debit(self, session: Session, notification: Notification) -> Debit | None:
        """The NOTIFYING debit this PDN is the latest one of, if any: a PDN a newer one replaced
        (or of a debit that moved on) must not move the debit."""
        if notification.debit_id is None:
            return None
        debit = session.get(Debit, notification.debit_id)
        if debit is None or debit.state != _D.NOTIFYING:
            return None
        latest = session.scalar(
            select(func.max(Notification.id)).where(Notification.debit_id == debit.id)
        )
        return debit if latest == notification.id else None

    def _stalled(
        self, session: Session, notification: Notification, debit: Debit, now: datetime
    ) -> str:
        """A PDN still pending when even a success now would come too late for its day: it
        can no longer lead to a debit, and is abandoned (its later answer changes nothing)."""
        notification.status, notification.next_check_at = "ABANDONED", None
        why = f"pre-debit notification {notification.reference} still pending past its day"
        return self._replace(session, debit, now, why)

    def _replace(self, session: Session, debit: Debit, now: datetime, why: str) -> str:
        """A PDN that can no longer lead to a debit: a new one if the window still fits a 24 h
        notice, else the debit is SKIPPED (the window passed; nothing failed at the customer)."""
        if pdn_txn_date(debit.planned_at, now) < debit.window_closes_at:
            debit_store.move(
                session, debit.id, expected=_D.NOTIFYING, target=_D.PLANNED, at=now,
                cause=f"{why}: a new one is due",
                values={"due_at": now, "claimed_at": None, "dispatched_at": None},
            )  # fmt: skip
            return str(_D.PLANNED)
        debit_store.move(
            session, debit.id, expected=_D.NOTIFYING, target=_D.SKIPPED, at=now,
            cause=f"window passed: {why}; no time left for a new 24 h notice",
            values={"due_at": None},
        )  # fmt: skip
        return str(_D.SKIPPED)

    def _succeeded(self, session: Session, notification: Notification, now: datetime) -> str:
        debit = self._waiting_debit(session, notification)
        if debit is None:
            return "PDN SUCCESS"
        assert notification.succeeded_at is not None  # set by the caller
        if not notice_still_serves(
            notification.txn_date,
            now=notification.succeeded_at,
            window_closes_at=debit.window_closes_at,
            calendar=self.policy.planning.calendar,
        ):
            # The notice came too late for the announced date; the PDN must match what runs.
            why = f"pre-debit notification {notification.reference} succeeded too late for its day"
            return self._replace(session, debit, now, why)
        execute_at = merchant_execution_at(notification.txn_date, notification.succeeded_at)
        debit_store.move(
            session, debit.id, expected=_D.NOTIFYING, target=_D.NOTIFIED, at=now,
            cause=f"pre-debit notification {notification.reference} succeeded",
            values={"due_at": execute_at, "claimed_at": None, "dispatched_at": None},
        )  # fmt: skip
        return str(_D.NOTIFIED)

    def _failed(self, session: Session, notification: Notification, now: datetime, why: str) -> str:
        debit = self._waiting_debit(session, notification)
        if debit is None:
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
        self, mandate_id: str, *, amount: Decimal | None, txn_date: datetime | None
    ) -> str | None:
        """Juspay's own PDN failed: the order it announced will not be debited.

        Juspay's event names the mandate and the day (`source_info.txn_date`), not our order.
        It is matched to the one juspay-flow order of that mandate whose execution date is that
        local day, for that amount; None when none matches exactly (or several do): the caller
        keeps the event for review and nothing is changed. An order already settled (its
        failure seen by a poll first) needs nothing more. The matched pending debit gets a new
        order (a new try, after the read of this order's status that precedes every next try)
        if a try is left and the window allows; else its order is polled now and its own
        status ends the debit.
        """
        if txn_date is None:
            return None
        now = self.clock()
        cal = self.policy.planning.calendar
        day = cal.local_date(txn_date)
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(Debit, Order)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .join(Order, Order.debit_id == Debit.id)
                .where(Mandate.mandate_id == mandate_id, Debit.flow == Flow.JUSPAY)
            ).all()
            matching = [
                (d, o)
                for d, o in rows
                if o.execution_date is not None
                and cal.local_date(o.execution_date) == day
                and (amount is None or o.amount == amount)
            ]
            if len(matching) != 1:
                return None
            [(debit, order)] = matching
            if debit.state != _D.PENDING or order.try_number != debit.tries:
                return f"order {order.order_id} already settled (debit {debit.state}): no change"
            lead = self.policy.retry_lead(debit.flow)
            tries_left = debit.tries < self.policy.retry.max_tries
            if not (tries_left and now + lead < debit.window_closes_at):
                order.next_check_at = now  # its status decides (Juspay may still retry it)
                return f"order {order.order_id}: no try or time left; its status is read now"
            order.gateway_status = order.gateway_status or "PENDING_VBV"
            order.error_code = "NOTIFICATION_FAILED"
            order.next_check_at = None
            order.state = "SETTLED"
            order.settled_at = now
            debit_store.move(
                session, debit.id, expected=_D.PENDING, target=_D.RETRY_SCHEDULED, at=now,
                cause=f"Juspay's pre-debit notification for order {order.order_id} failed; "
                "a new order is due",
                order_id=order.order_id, values={"due_at": now, "dispatched_at": None},
            )  # fmt: skip
            return str(_D.RETRY_SCHEDULED)
