"""Executing debits exactly once; settling them is settlement.py.

The pattern for every call that moves money (STYLE.md, "Never charge twice"):
0. the checks before sending, in one place (`Debits.checks_before_sending`): the mandate's hold,
   the previous try's status at Juspay, the window and the mandate (`domain.sending`);
1. claim the debit with a guarded transition (`... WHERE state = :expected`);
2. write the order row (its deterministic order_id and amount) and COMMIT;
3. send; the answer decides the next state through the domain's `decide`;
4. a timeout, a dropped connection or a 5xx is UNKNOWN: reconciled by order status
   (orders.py), never blindly re-sent; only "order not found" re-sends the same id (after the
   same window and mandate checks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import DebitState
from billing.domain.ids import order_id_for
from billing.domain.mandate import MandateStatus
from billing.domain.sending import Gate, Verdict, may_send, previous_try_allows
from billing.domain.timing import Flow, execution_instant
from billing.gateway import (
    GatewayError,
    OrderNotFound,
    OrderStatusResult,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.services import Clock, NotFoundError, ServiceError
from billing.services.debits.fit import check_terms
from billing.services.debits.policy import DebitPolicy
from billing.services.debits.sender import OrderToSend, Sender
from billing.services.debits.settlement import Settlement, mandate_check, order_outcome
from billing.services.mandates.actions import try_release
from billing.services.ports import DebitGateway
from billing.store import debits as store
from billing.store.models import Debit, Mandate, Notification, Order
from billing.telemetry import logs

log = logging.getLogger("billing.debits")

_D = DebitState
# States from which a due debit is executed (a merchant-flow PLANNED debit needs its PDN first).
EXECUTABLE = (_D.PLANNED, _D.NOTIFIED, _D.RETRY_SCHEDULED)
# Orders Juspay never created (refused with a 4xx, or reported not found): nothing to read.
NEVER_CREATED = ("REJECTED", "NOT_FOUND")


@dataclass(frozen=True, slots=True)
class _Previous:
    """The order of the debit's last try, read at Juspay before its next one is sent."""

    order_id: str
    state: str
    try_number: int


@dataclass(frozen=True, slots=True)
class _AskJuspay:
    """Checks before sending that only Juspay can answer: a held mandate's status, the
    previous try's order status."""

    held_mandate: str | None
    previous: _Previous | None
    customer_id: str


# A debit whose checks passed: the debit, its mandate, the state read, the order's terms.
_Ready = tuple[Debit, Mandate, DebitState, tuple[str | None, datetime | None]]


class Debits:
    """Execution and settlement of debits; every method is safe to run twice or concurrently."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: DebitGateway,
        policy: DebitPolicy,
        clock: Clock,
        sender: Sender | None = None,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.sender = sender or Sender(gateway)
        self.check_mandate = mandate_check(sessions, gateway, policy, clock)
        self.settlement = Settlement(sessions, policy, clock, self.check_mandate)

    # -- execute ---------------------------------------------------------------------------

    def execute(self, debit_id: int) -> str:
        """Check, claim a due debit, record its next order, send it, settle from the answer."""
        return self.execute_many([debit_id])[int(debit_id)]

    def execute_many(self, debit_ids: Sequence[int]) -> dict[int, str]:
        """Execute a batch of due debits (one message's ids); what happened to each.

        One transaction runs each debit's checks, claims every debit that may go (one guarded
        UPDATE) and records its order: committed before a byte goes to Juspay. The calls go
        out concurrently (`Sender`); one transaction settles them all. A debit whose checks
        need Juspay first (a held mandate, a try behind it) goes on its own after asking.
        """
        ids = list(dict.fromkeys(int(i) for i in debit_ids))
        results = dict.fromkeys(ids, "missing")
        asks: list[tuple[int, DebitState, _AskJuspay]] = []
        now = self.clock()
        with self.sessions() as session, session.begin():
            ready: list[_Ready] = []
            for debit, mandate in store.with_mandates(session, ids):
                state = DebitState(debit.state)
                with logs.bound(debit_id=debit.id, mandate_id=mandate.mandate_id):
                    checked = self.checks_before_sending(
                        session, debit, mandate, state, now, asked_juspay=False
                    )
                if isinstance(checked, str):
                    results[debit.id] = checked
                elif isinstance(checked, _AskJuspay):
                    asks.append((debit.id, state, checked))
                else:
                    ready.append((debit, mandate, state, checked))
            orders = self._claim_many(session, ready, now)
        for debit, *_ in ready:
            results[debit.id] = "claimed elsewhere"
        # Committed: every order exists on our side before it is sent.
        results.update(self._send_and_settle(orders))
        for debit_id, state, ask in asks:
            with logs.bound(debit_id=debit_id):
                results[debit_id] = self._execute_after_asking(debit_id, state, ask)
        return results

    def _execute_after_asking(self, debit_id: int, state: DebitState, ask: _AskJuspay) -> str:
        stop = self._ask_juspay(debit_id, state, ask)
        if stop is not None:
            return stop
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = store.with_mandate(session, debit_id)
            if found is None:
                return "missing"
            debit, mandate = found
            logs.bind(debit_id=debit.id, mandate_id=mandate.mandate_id)
            state = DebitState(debit.state)
            checked = self.checks_before_sending(
                session, debit, mandate, state, now, asked_juspay=True
            )
            if isinstance(checked, str):
                return checked
            if isinstance(checked, _AskJuspay):  # pragma: no cover - asked_juspay=True
                raise TypeError("the checks asked Juspay twice")
            orders = self._claim_many(session, [(debit, mandate, state, checked)], now)
        if not orders:
            return "claimed elsewhere"
        return self._send_and_settle(orders)[debit_id]

    def _claim_many(
        self, session: Session, ready: Sequence[_Ready], now: datetime
    ) -> list[tuple[int, OrderToSend]]:
        """Claim the debits and record their next orders (committed by the caller); the
        debits someone else claimed meanwhile are left out."""
        if not ready:
            return []
        claims = {
            debit.id: store.Claim(
                debit.id,
                state,
                debit.tries,
                order_id_for(mandate.mandate_id, debit.cycle, debit.tries + 1),
            )
            for debit, mandate, state, _terms in ready
        }
        claimed = store.claim_for_execution(session, list(claims.values()), at=now)
        orders: list[tuple[int, OrderToSend]] = []
        rows: list[dict[str, object]] = []
        for debit, mandate, _state, (notification_id, execution_date) in ready:
            if debit.id not in claimed:
                continue
            order_id = claims[debit.id].order_id
            rows.append(
                {
                    "order_id": order_id,
                    "debit_id": debit.id,
                    "try_number": debit.tries + 1,
                    "amount": debit.amount,
                    "currency": debit.currency,
                    "state": "RECORDED",
                    "notification_id": notification_id,
                    "execution_date": execution_date,
                    "checks": 0,
                    "created_at": now,
                }
            )
            orders.append(
                (
                    debit.id,
                    OrderToSend(
                        order_id,
                        debit.amount,
                        debit.currency,
                        mandate.customer_id,
                        mandate.mandate_id,
                        execution_date,
                        notification_id,
                        debit_id=debit.id,
                        try_number=debit.tries + 1,
                    ),
                )
            )
        if rows:
            session.execute(insert(Order), rows)
        return orders

    def _send_and_settle(self, orders: Sequence[tuple[int, OrderToSend]]) -> dict[int, str]:
        if not orders:
            return {}
        news = self.sender.send_all([order for _, order in orders])
        settled = self.settlement.settle_many(news)
        return {debit_id: result for (debit_id, _), result in zip(orders, settled, strict=True)}

    def checks_before_sending(
        self,
        session: Session,
        debit: Debit,
        mandate: Mandate,
        state: DebitState,
        now: datetime,
        *,
        asked_juspay: bool,
    ) -> tuple[str | None, datetime | None] | _AskJuspay | str:
        """Every check before an execution call, in one place, inside the claim's transaction.

        1. Not due, or not executable: nothing to do.
        2. What only Juspay can tell (asked first, outside the transaction, `_ask_juspay`): a
           mandate held after a failed status read tries the sync that lifts the hold; a try
           behind it has that order's status read (SPEC §5): charged or pending (Juspay's
           silent retry, a late charge) settles or waits, and nothing is sent.
        3. The debit against the mandate's terms as they are now (`domain.sending.terms_misfit`:
           amount, period and window, flow): one planned under old terms is never sent; with no
           order yet it is CANCELLED and its period planned again under the new terms, else
           SKIPPED with the reason.
        4. The window against the instant Juspay would debit, and the mandate as known here
           (`domain.sending.may_send`): SKIPPED or held, with the reason.
        Returns the terms of the order that may go (notification_id, execution_date), what to
        ask Juspay first, or what was done instead (a line for the caller).
        """
        not_ready = _not_ready(debit, state, now)
        if not_ready is not None:
            return not_ready
        if not asked_juspay:
            previous = self._previous(session, debit)
            if mandate.hold_reason or previous is not None:
                held = mandate.mandate_id if mandate.hold_reason else None
                return _AskJuspay(held, previous, mandate.customer_id)
        misfit = check_terms(session, debit, mandate, state, now, self.policy.planning,
                             call="sending")  # fmt: skip
        if misfit is not None:
            return misfit
        return self._local_checks(session, debit, mandate, state, now)

    def _ask_juspay(self, debit_id: int, state: DebitState, ask: _AskJuspay) -> str | None:
        """The checks only Juspay can answer; None = go on to the local checks."""
        if ask.held_mandate is not None:
            try_release(self.sessions, self.gateway, ask.held_mandate, now=self.clock(),
                        calendar=self.policy.planning.calendar)  # fmt: skip
        if ask.previous is not None:
            return self._read_previous(debit_id, state, ask.previous, ask.customer_id)
        return None

    def _previous(self, session: Session, debit: Debit) -> _Previous | None:
        if debit.tries < 1:
            return None
        order = session.scalars(
            select(Order).where(Order.debit_id == debit.id, Order.try_number == debit.tries)
        ).one_or_none()
        if order is None or order.state in NEVER_CREATED:
            return None
        return _Previous(order.order_id, order.state, order.try_number)

    def _read_previous(
        self, debit_id: int, state: DebitState, previous: _Previous, customer_id: str
    ) -> str | None:
        """Try N's status at Juspay before try N+1: None = it failed softly, the next may go."""
        try:
            status = self.gateway.order_status(previous.order_id, customer_id=customer_id)
        except OrderNotFound:
            reason = f"previous order {previous.order_id} not found at Juspay"
            return self._stop(debit_id, state, reason, review=True)
        except GatewayError as exc:
            reason = f"previous order {previous.order_id} unreadable ({exc}): not sent yet"
            return self._stop(debit_id, state, reason[:255], review=False)
        outcome, _ = order_outcome(status)
        result = self.settlement.settle_from_status(
            previous.order_id,
            status,
            source=f"previous order {previous.order_id} read before the next try",
        )
        if previous_try_allows(outcome) and not result.startswith(("stale", "MANUAL")):
            return None
        return f"not sent: previous order {previous.order_id} {status.status}: {result}"

    def _stop(self, debit_id: int, state: DebitState, reason: str, *, review: bool) -> str:
        """The previous order could not be read (look again soon) or has vanished (review)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            if review:
                log.warning("debit %s needs review: %s", debit_id, reason)
                moved = store.move(session, debit_id, expected=state, target=_D.MANUAL_REVIEW,
                                   at=now, cause=reason, values={"due_at": None})  # fmt: skip
                return str(_D.MANUAL_REVIEW) if moved else "changed meanwhile"
            found = store.with_mandate(session, debit_id)
            if found is None:
                return "missing"
            debit, mandate = found
            gate = self._gate(debit, mandate, now, debits_at=now)
            if gate.verdict is Verdict.SKIP:  # the window passed meanwhile: it never goes
                return self._apply_gate(session, debit, state, gate, now)
            when = now + self.policy.recheck_previous
            store.hold(session, debit, state=state, until=when, reason=reason, at=now)
            return f"held: {reason}"

    def _local_checks(
        self, session: Session, debit: Debit, mandate: Mandate, state: DebitState, now: datetime
    ) -> tuple[str | None, datetime | None] | str:
        """The window and the mandate (`sending.may_send`) for the terms this try would be sent
        with; SKIP / HOLD / a new PDN are applied here. Returns the terms, or what was done."""
        terms = self._execution_terms(session, debit, now)
        if terms is None:
            # The day our PDN announced has passed (an outage): executing now would debit on a
            # date the customer was not told about. A new PDN first (SPEC §4).
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
        _notification_id, execution_date = terms
        debits_at = execution_instant(
            Flow(debit.flow),
            now=now,
            execution_date=execution_date,
            lead=self.policy.planning.execution_lead,
        )
        gate = self._gate(debit, mandate, now, debits_at=debits_at)
        if gate.verdict is Verdict.SEND:
            return terms
        return self._apply_gate(session, debit, state, gate, now)

    def _gate(self, debit: Debit, mandate: Mandate, now: datetime, *, debits_at: datetime) -> Gate:
        return may_send(
            mandate_status=MandateStatus(mandate.status),
            hold_reason=mandate.hold_reason,
            debits_at=debits_at,
            window_closes_at=debit.window_closes_at,
            now=now,
        )

    def _apply_gate(
        self, session: Session, debit: Debit, state: DebitState, gate: Gate, now: datetime
    ) -> str:
        if gate.verdict is Verdict.SKIP:
            store.move(session, debit.id, expected=state, target=_D.SKIPPED, at=now,
                       cause=gate.reason, values={"due_at": None})  # fmt: skip
            return f"skipped: {gate.reason}"
        until = now + self.policy.paused_recheck
        store.hold(session, debit, state=state, until=until, reason=gate.reason, at=now)
        return gate.reason

    def _execution_terms(
        self, session: Session, debit: Debit, now: datetime
    ) -> tuple[str | None, datetime | None] | None:
        """(notification_id, execution_date) to send with the order, per flow (SPEC §4); None
        when the merchant flow's PDN no longer covers today (a new PDN is due)."""
        if debit.flow == Flow.MERCHANT:
            notification = session.scalars(
                select(Notification)
                .where(Notification.debit_id == debit.id, Notification.status == "SUCCESS")
                .order_by(Notification.id.desc())
                .limit(1)
            ).first()
            if notification is None:
                return None
            execute_at = max(now, notification.txn_date)
            cal = self.policy.planning.calendar
            if cal.local_date(execute_at) != cal.local_date(notification.txn_date):
                return None  # the PDN announced another day: it no longer covers this
            return notification.reference, execute_at
        if debit.flow == Flow.JUSPAY:
            # Juspay notifies, waits its 24 h, then debits on this date.
            return None, max(debit.planned_at, now + self.policy.planning.execution_lead)
        return None, None

    def resend_checks(self, order_id: str) -> str | None:
        """Before resending an order Juspay never received: the same window and mandate checks.

        None = send it again. SKIP: the debit (UNKNOWN) is SKIPPED and the order NOT_FOUND;
        HOLD: the order is looked at again later, still UNKNOWN.
        """
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = session.execute(
                select(Order, Debit, Mandate)
                .join(Debit, Debit.id == Order.debit_id)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .where(Order.order_id == order_id)
            ).one()
            order, debit, mandate = found
            debits_at = execution_instant(
                Flow(debit.flow),
                now=now,
                execution_date=order.execution_date,
                lead=self.policy.planning.execution_lead,
            )
            gate = self._gate(debit, mandate, now, debits_at=debits_at)
            if gate.verdict is Verdict.SEND:
                return None
            if gate.verdict is Verdict.HOLD:
                order.next_check_at = now + self.policy.paused_recheck
                return f"not resent: {gate.reason}"
            order.state, order.next_check_at, order.settled_at = "NOT_FOUND", None, now
            store.move(session, debit.id, expected=_D.UNKNOWN, target=_D.SKIPPED, at=now,
                       cause=f"{gate.reason}; order {order_id} never reached Juspay",
                       order_id=order_id)  # fmt: skip
            return f"skipped: {gate.reason}"

    def send(self, order_id: str) -> str:
        """Send a recorded order to Juspay and settle the debit from the answer."""
        with self.sessions() as session:
            order, mandate_id, customer_id = session.execute(
                select(Order, Mandate.mandate_id, Mandate.customer_id)
                .join(Debit, Debit.id == Order.debit_id)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
                .where(Order.order_id == order_id)
            ).one()
            to_send = OrderToSend(
                order.order_id,
                order.amount,
                order.currency,
                customer_id,
                mandate_id,
                order.execution_date,
                order.notification_id,
                debit_id=order.debit_id,
                try_number=order.try_number,
            )
        return self.settlement.settle_many([self.sender.send_one(to_send)])[0]

    # -- settle (delegated: the same rules for every source of truth) ----------------------

    def settle_unknown(self, order_id: str, cause: str) -> str:
        return self.settlement.settle_unknown(order_id, cause)

    def settle_from_status(
        self,
        order_id: str,
        status: OrderStatusResult,
        *,
        source: str,
        at: datetime | None = None,
    ) -> str:
        return self.settlement.settle_from_status(order_id, status, source=source, at=at)


def _not_ready(debit: Debit, state: DebitState, now: datetime) -> str | None:
    """Why a debit is not due for execution now, or None."""
    if state not in EXECUTABLE or (state is _D.PLANNED and debit.flow == Flow.MERCHANT):
        return f"not executable ({state})"
    if debit.due_at is None or debit.due_at > now:
        return "not due"
    return None


# States a debit can be cancelled from without asking Juspay: nothing was sent for it yet (a
# PDN in flight is no money: it is left to end at Juspay).
CANCELLABLE_LOCALLY = (_D.PLANNED, _D.NOTIFYING, _D.NOTIFIED, _D.RETRY_SCHEDULED)
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
    only Juspay's yes cancels it. Anything else (in flight, settled) cannot be cancelled.

    Reports only what is true: a debit that moved meanwhile (a webhook, a poll) is a
    `ServiceError` naming its state, never "CANCELLED".
    """
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
            if not moved:
                raise ServiceError(
                    f"debit {debit_id} is {_state_of(session, debit_id)}: it moved while being "
                    "cancelled; nothing was cancelled"
                )
            return "CANCELLED"
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
        moved = store.move(
            session,
            debit_id,
            expected=_D.PENDING,
            target=_D.CANCELLED,
            at=now,
            cause=f"cancelled by the merchant; Juspay cancelled order {order_id}",
            order_id=order_id,
        )
        if not moved:
            # The order's own news (its ORDER_FAILED, a poll) settled the debit first.
            raise ServiceError(
                f"debit {debit_id} is {_state_of(session, debit_id)}: Juspay cancelled order "
                f"{order_id}, but the debit had moved meanwhile and was not cancelled"
            )
        order_row = session.scalars(select(Order).where(Order.order_id == order_id)).one()
        order_row.next_check_at = None
        order_row.error_code = "MERCHANT_CANCELLED"
        order_row.state = "SETTLED"
        order_row.settled_at = now
    return "CANCELLED"


def _state_of(session: Session, debit_id: int) -> str:
    return session.scalars(select(Debit.state).where(Debit.id == debit_id)).one()
