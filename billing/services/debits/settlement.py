"""Settling debits from what the gateway says: one order's outcome -> the debit's next state.

Every source of truth goes through `Settlement.settle`: the answer to the execution call, a
status poll, reconciliation, the read before a next try, a webhook's `content.order`. It
believes a status only when its order_id and amount match what was sent, never lets news older
than what it already learned of that order move it (SPEC §7, per order), keeps a debit PENDING
while Juspay retries silently, lets the domain's `decide` (or `reconsider`, between tries)
choose the next state, and never lets a late charge of an earlier try pass unnoticed. A
refusal that concerns the mandate has its status read from Juspay (`check_mandate`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import AWAITING_OUTCOME, NOT_SENT, DebitState, decide, reconsider
from billing.domain.mandate import FINAL_MANDATE_STATUSES, MandateStatus
from billing.domain.ordering import held_at, order_news_applies
from billing.domain.outcomes import (
    Outcome,
    classify_order,
    classify_rejection,
    concerns_mandate,
    juspay_still_retrying,
)
from billing.domain.polling import next_check_at
from billing.gateway import OrderStatusResult, Rejected
from billing.services import Clock
from billing.services.debits.policy import DebitPolicy
from billing.services.mandates.actions import refresh_after_refusal
from billing.services.ports import MandateStatusReader
from billing.store import debits as store
from billing.store.models import Debit, Mandate, Order
from billing.telemetry import logs

log = logging.getLogger("billing.debits")

_D = DebitState
MandateCheck = Callable[[str, str], str]
"""(mandate_id, why) -> what was learnt: reads the mandate's status from Juspay and records it."""


def mandate_check(
    sessions: sessionmaker[Session], gateway: MandateStatusReader, policy: DebitPolicy, clock: Clock
) -> MandateCheck:
    """The read-back of a mandate Juspay refused a debit or a PDN for (SPEC §2, §5)."""

    def check(mandate_id: str, why: str) -> str:
        return refresh_after_refusal(
            sessions, gateway, mandate_id, reason=why, now=clock(),
            calendar=policy.planning.calendar,
        )  # fmt: skip

    return check


# A mandate to read back after the transaction: (mandate_id, why).
_Check = tuple[str, str] | None


def order_outcome(status: OrderStatusResult) -> tuple[Outcome, bool]:
    """The outcome of an order status read, and whether Juspay is still retrying it silently
    (then the outcome is PENDING: our own retry must not race Juspay's)."""
    outcome = classify_order(
        status.status, error_code=status.error_code, error_message=status.error_message
    )
    info = status.retry_info
    if info is not None and juspay_still_retrying(
        outcome, info.retries_done_count, info.allowed_retry
    ):
        return Outcome.PENDING, True
    return outcome, False


@dataclass(frozen=True, slots=True)
class News:
    """One outcome of one order, learnt at `at` (default: when it is applied)."""

    order_id: str
    outcome: Outcome
    cause: str
    at: datetime | None = None
    order_state: str | None = None
    gateway_status: str | None = None
    gateway_status_id: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    txn_id: str | None = None
    txn_uuid: str | None = None
    evidence: OrderStatusResult | None = None


class Settlement:
    """Applies order outcomes to debits; safe to call twice or concurrently for one order."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: DebitPolicy,
        clock: Clock,
        check_mandate: MandateCheck | None = None,
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.clock = clock
        self.check_mandate = check_mandate

    def settle_unknown(self, order_id: str, cause: str) -> str:
        return self.settle(order_id, Outcome.UNKNOWN, cause=cause)

    def settle_from_status(
        self,
        order_id: str,
        status: OrderStatusResult,
        *,
        source: str,
        at: datetime | None = None,
    ) -> str:
        """Settle from an order status read (poll, reconciliation, the read before a next try,
        or a webhook's content.order dated `at`).

        The status is believed only if its order_id and amount match what we sent; a
        mismatch sends the debit to MANUAL_REVIEW instead of guessing.
        """
        outcome, retrying = order_outcome(status)
        return self.settle(
            order_id,
            outcome,
            cause=f"{source}: order {status.status}" + (" (Juspay retry running)" * retrying),
            at=at,
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
        at: datetime | None = None,
        order_state: str | None = None,
        gateway_status: str | None = None,
        gateway_status_id: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        txn_id: str | None = None,
        txn_uuid: str | None = None,
        evidence: OrderStatusResult | None = None,
    ) -> str:
        """Apply one outcome of one order, learnt at `at` (default now), to its debit."""
        news = News(order_id, outcome, cause=cause, at=at, order_state=order_state,
                    gateway_status=gateway_status, gateway_status_id=gateway_status_id,
                    error_code=error_code, error_message=error_message, txn_id=txn_id,
                    txn_uuid=txn_uuid, evidence=evidence)  # fmt: skip
        return self.settle_many([news])[0]

    def settle_many(self, news: Sequence[News]) -> list[str]:
        """Apply the news of several orders of distinct debits in one transaction (a batch's
        answers): the orders and debits are locked together, each is decided on its own, the
        debits' moves are written in bulk. Returns what happened to each, in order."""
        if len({n.order_id for n in news}) != len(news):
            raise ValueError("settle_many: one piece of news per order")
        now = self.clock()
        checks: list[tuple[str, str]] = []
        results: list[str] = []
        with self.sessions() as session, session.begin():
            orders = {
                o.order_id: o
                for o in session.scalars(
                    select(Order)
                    .where(Order.order_id.in_([n.order_id for n in news]))
                    .order_by(Order.order_id)
                    .with_for_update()
                )
            }
            debit_ids = sorted({orders[n.order_id].debit_id for n in news})
            if len(debit_ids) != len(news):
                raise ValueError("settle_many: one order per debit")
            debits = {
                d.id: d
                for d in session.scalars(
                    select(Debit)
                    .where(Debit.id.in_(debit_ids))
                    .order_by(Debit.id)
                    .with_for_update()
                )
            }
            moves: list[store.Move] = []
            for item in news:
                order = orders[item.order_id]
                debit = debits[order.debit_id]
                if len(news) == 1:  # a poll's or a webhook's: its later lines carry the ids too
                    _bind_ids(session, debit, order)
                with logs.bound(
                    debit_id=debit.id, order_id=order.order_id, try_number=order.try_number
                ):
                    result, check = self._settle_locked(session, order, debit, item, now, moves)
                results.append(result)
                if check is not None:
                    checks.append(check)
            store.move_many(session, moves, at=now)
        if self.check_mandate is not None:
            for check in checks:
                log.info("mandate %s: %s", check[0], self.check_mandate(*check))
        return results

    def _settle_locked(
        self,
        session: Session,
        order: Order,
        debit: Debit,
        news: News,
        now: datetime,
        moves: list[store.Move],
    ) -> tuple[str, _Check]:
        learnt_at = news.at or now
        if not order_news_applies(
            order.status_at, learnt_at, charged=news.outcome is Outcome.CHARGED
        ):
            return (
                f"stale: dated {learnt_at:%Y-%m-%d %H:%M:%S}, before the status read at "
                f"{order.status_at:%Y-%m-%d %H:%M:%S}; ignored"
            ), None
        order.status_at = held_at(order.status_at, learnt_at)
        order.state = news.order_state or order.state
        order.gateway_status = news.gateway_status or order.gateway_status
        order.gateway_status_id = news.gateway_status_id or order.gateway_status_id
        order.error_code = news.error_code or order.error_code
        order.error_message = (news.error_message or order.error_message or "")[:255] or None
        order.txn_id = news.txn_id or order.txn_id
        order.txn_uuid = news.txn_uuid or order.txn_uuid
        if order.state == "SENT" and order.sent_at is None:
            order.sent_at = now
        return self._apply(
            session, debit, order, news.outcome, now, news.cause, news.evidence, moves
        )

    def _apply(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        outcome: Outcome,
        now: datetime,
        cause: str,
        evidence: OrderStatusResult | None,
        moves: list[store.Move],
    ) -> tuple[str, _Check]:
        state = DebitState(debit.state)
        if evidence is not None and (
            evidence.order_id != order.order_id or evidence.amount != order.amount
        ):
            reason = (
                f"gateway reports order {evidence.order_id} for {evidence.amount}, "
                f"sent {order.order_id} for {order.amount}"
            )
            return self._to_review(session, debit, order, state, now, reason), None
        if order.try_number != debit.tries:
            return self._late_order(session, debit, order, state, outcome, now), None
        if state in NOT_SENT:
            return self._between_tries(session, debit, order, state, outcome, now, cause, moves)
        if state not in AWAITING_OUTCOME:
            order.next_check_at = None
            if outcome is not Outcome.CHARGED or state is _D.CHARGED:
                return f"already {state}", None
            reason = f"order {order.order_id} charged while {state}"
            return self._to_review(session, debit, order, state, now, reason), None
        return self._decide(session, debit, order, state, outcome, now, cause, moves)

    def _decide(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        outcome: Outcome,
        now: datetime,
        cause: str,
        moves: list[store.Move],
    ) -> tuple[str, _Check]:
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
                waited = (
                    f"still {order.gateway_status or target} after {self.policy.pending_max_age}"
                )
                return self._to_review(session, debit, order, state, now, waited), None
            order.next_check_at = when
        else:
            self._settled(order, now)
        if target == state:
            return f"still {state}", None
        reason = f"{cause}; {decision.reason}" if decision.reason else cause
        return self._move(moves, session, debit, order, state, target, outcome, now, reason,
                          due_at=decision.retry_at)  # fmt: skip

    def _between_tries(
        self,
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        outcome: Outcome,
        now: datetime,
        cause: str,
        moves: list[store.Move],
    ) -> tuple[str, _Check]:
        """News of the previous order of a debit not yet sending its next one (`reconsider`)."""
        decision = reconsider(state, outcome)
        target = decision.state
        if target == state:
            self._settled(order, now)
            return f"still {state}: the next try goes as planned", None
        if target is _D.PENDING:
            when = self._next_check(order, now, unknown=False)
            if when is None:
                waited = f"order {order.order_id} pending again after {self.policy.pending_max_age}"
                return self._to_review(session, debit, order, state, now, waited), None
            order.state, order.settled_at, order.next_check_at = "SENT", None, when
        else:
            self._settled(order, now)
        reason = f"{cause}; {decision.reason}"
        return self._move(
            moves, session, debit, order, state, target, outcome, now, reason, due_at=None
        )

    def _move(
        self,
        moves: list[store.Move],
        session: Session,
        debit: Debit,
        order: Order,
        state: DebitState,
        target: DebitState,
        outcome: Outcome,
        now: datetime,
        cause: str,
        *,
        due_at: datetime | None,
    ) -> tuple[str, _Check]:
        """Move the debit as decided; a hard failure about the mandate has it read back."""
        # Under the debit's row lock: the guard holds; written in bulk by `settle_many`.
        moves.append(
            store.Move(
                debit.id,
                expected=state,
                target=target,
                cause=cause,
                order_id=order.order_id,
                values=(
                    ("due_at", due_at),
                    ("last_error", order.error_code or None),
                    ("dispatched_at", None),
                ),
            )
        )
        return str(target), self._mandate_to_check(session, debit, order, outcome)

    def _settled(self, order: Order, now: datetime) -> None:
        order.next_check_at = None
        if order.state != "REJECTED":
            order.state = "SETTLED"
        order.settled_at = now

    def _next_check(self, order: Order, now: datetime, *, unknown: bool) -> datetime | None:
        if unknown and order.checks == 0:
            return now + self.policy.reconcile_after
        return next_check_at(
            now,
            sent_at=order.sent_at or order.created_at,
            execution_date=order.execution_date,
            max_age=self.policy.pending_max_age,
        )

    def _mandate_to_check(
        self, session: Session, debit: Debit, order: Order, outcome: Outcome
    ) -> _Check:
        """A hard failure that concerns the mandate: read it back from Juspay after the commit
        (SPEC §5: "a hard failure that says the mandate is gone updates the mandate's status")."""
        if outcome is not Outcome.FAILED_HARD:
            return None
        if not concerns_mandate(order.error_code, order.error_message):
            return None
        mandate = session.get_one(Mandate, debit.mandate_pk)
        if MandateStatus(mandate.status) in FINAL_MANDATE_STATUSES:
            return None  # already ended here: nothing a read could change
        why = f"Juspay refused order {order.order_id}: {order.error_code} {order.error_message}"
        return mandate.mandate_id, why.strip()

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
        """MANUAL_REVIEW for a debit not final (a next try must not be sent either); a note in
        the history of a final one."""
        order.next_check_at = None
        log.warning("debit %s needs review: %s", debit.id, reason)
        if state in AWAITING_OUTCOME or state in NOT_SENT:
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


def _bind_ids(session: Session, debit: Debit, order: Order) -> None:
    """The debit's ids on the lines that follow (a poll or a webhook knew only the order)."""
    logs.bind(debit_id=debit.id, order_id=order.order_id, try_number=order.try_number)
    if not logs.has("mandate_id") and logs.has("debit_id"):
        logs.bind(mandate_id=session.get_one(Mandate, debit.mandate_pk).mandate_id)


def classify_rejection_outcome(error: Rejected) -> Outcome:
    return classify_rejection(error.code, error.message)
