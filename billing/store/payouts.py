"""Named queries on payout orders, fulfillments and attempts.

Every change of a fulfillment's attempt state that decides who sends goes through `move`: a
conditional UPDATE (`WHERE id = :id AND attempt_state = :expected`); a rowcount of 0 means
another worker (or a webhook) got there first and the caller must leave the row alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from billing.store.models import Fulfillment, FulfillmentTransaction, PayoutAttempt, PayoutOrder

OPEN_ANSWERS = ("SENDING", "ACK", "UNKNOWN")


def find_order(session: Session, order_id: str, *, for_update: bool = False) -> PayoutOrder | None:
    statement = select(PayoutOrder).where(PayoutOrder.order_id == order_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def fulfillments_of(
    session: Session, order_pk: int, *, for_update: bool = False
) -> list[Fulfillment]:
    statement = (
        select(Fulfillment).where(Fulfillment.payout_order_pk == order_pk).order_by(Fulfillment.id)
    )
    if for_update:
        statement = statement.with_for_update()
    return list(session.scalars(statement))


def find_fulfillment(
    session: Session, fulfillment_id: str, *, for_update: bool = False
) -> tuple[Fulfillment, PayoutOrder] | None:
    statement = (
        select(Fulfillment, PayoutOrder)
        .join(PayoutOrder, PayoutOrder.id == Fulfillment.payout_order_pk)
        .where(Fulfillment.fulfillment_id == fulfillment_id)
    )
    if for_update:
        statement = statement.with_for_update(of=Fulfillment)
    row = session.execute(statement).one_or_none()
    return None if row is None else (row[0], row[1])


def lock_fulfillment(
    session: Session, *, fulfillment_id: str | None = None, pk: int | None = None
) -> tuple[Fulfillment, PayoutOrder] | None:
    """Lock a fulfillment and its order, the order first: every writer takes the locks in
    the order payout order -> fulfillment -> attempt, so two of them never deadlock."""
    key = Fulfillment.id == pk if pk is not None else Fulfillment.fulfillment_id == fulfillment_id
    order_pk = session.scalar(select(Fulfillment.payout_order_pk).where(key))
    if order_pk is None:
        return None
    order = session.scalars(
        select(PayoutOrder).where(PayoutOrder.id == order_pk).with_for_update()
    ).one()
    fulfillment = session.scalars(
        select(Fulfillment).where(key).with_for_update().execution_options(populate_existing=True)
    ).one()
    return fulfillment, order


def attempts_of(session: Session, fulfillment_pk: int) -> list[PayoutAttempt]:
    return list(
        session.scalars(
            select(PayoutAttempt)
            .where(PayoutAttempt.fulfillment_pk == fulfillment_pk)
            .order_by(PayoutAttempt.number)
        )
    )


def open_attempt(session: Session, fulfillment_pk: int) -> PayoutAttempt | None:
    """The latest counted attempt whose result is not known yet, if any."""
    return session.scalars(
        select(PayoutAttempt)
        .where(
            PayoutAttempt.fulfillment_pk == fulfillment_pk,
            PayoutAttempt.counted.is_(True),
            PayoutAttempt.outcome.is_(None),
            PayoutAttempt.state.in_(OPEN_ANSWERS),
        )
        .order_by(PayoutAttempt.number.desc())
        .limit(1)
    ).first()


def transactions_of(session: Session, fulfillment_pk: int) -> list[FulfillmentTransaction]:
    """A fulfillment's transactions in the order we learnt of them."""
    return list(
        session.scalars(
            select(FulfillmentTransaction)
            .where(FulfillmentTransaction.fulfillment_pk == fulfillment_pk)
            .order_by(FulfillmentTransaction.id)
        )
    )


def newest_transaction_pk(session: Session, fulfillment_pk: int) -> int:
    """The row id of the transaction learnt last (0: none yet): an attempt's baseline."""
    highest = session.scalar(
        select(func.max(FulfillmentTransaction.id)).where(
            FulfillmentTransaction.fulfillment_pk == fulfillment_pk
        )
    )
    return int(highest or 0)


def next_attempt_number(session: Session, fulfillment_pk: int) -> int:
    highest = session.scalar(
        select(func.max(PayoutAttempt.number)).where(PayoutAttempt.fulfillment_pk == fulfillment_pk)
    )
    return int(highest or 0) + 1


def consecutive_unsent(session: Session, fulfillment_pk: int) -> int:
    """How many of the latest calls in a row never reached Juspay."""
    count = 0
    for state in session.scalars(
        select(PayoutAttempt.state)
        .where(PayoutAttempt.fulfillment_pk == fulfillment_pk)
        .order_by(PayoutAttempt.number.desc())
        .limit(20)
    ):
        if state != "UNSENT":
            break
        count += 1
    return count


def move(
    session: Session,
    fulfillment_pk: int,
    *,
    expected: str,
    target: str,
    at: datetime,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """Guarded transition of `attempt_state`; True when this caller moved the row."""
    statement = (
        update(Fulfillment)
        .where(Fulfillment.id == fulfillment_pk, Fulfillment.attempt_state == expected)
        .values(attempt_state=target, updated_at=at, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


def halted(session: Session) -> Fulfillment | None:
    """A fulfillment HALTED by a 401, if any: while one is, no attempt is made anywhere."""
    return session.scalars(
        select(Fulfillment)
        .where(Fulfillment.attempt_state == "HALTED")
        .order_by(Fulfillment.updated_at)
        .limit(1)
    ).first()


def stale_sending(session: Session, *, before: datetime) -> list[tuple[int, int]]:
    """(attempt id, fulfillment pk) of attempts recorded SENDING before `before`: their
    worker died before the answer."""
    rows = session.execute(
        select(PayoutAttempt.id, PayoutAttempt.fulfillment_pk).where(
            PayoutAttempt.state == "SENDING", PayoutAttempt.created_at < before
        )
    )
    return [(attempt_id, fulfillment_pk) for attempt_id, fulfillment_pk in rows]


def answer_attempt(
    session: Session, attempt_id: int, *, expected: str, values: Mapping[str, Any]
) -> bool:
    """Guarded update of an attempt's answer; False when it was answered meanwhile."""
    statement = (
        update(PayoutAttempt)
        .where(PayoutAttempt.id == attempt_id, PayoutAttempt.state == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


def schedule_check(order: PayoutOrder, when: datetime | None) -> None:
    """Bring the order's next status read forward to `when` (never push it back)."""
    if when is None:
        return
    if order.next_check_at is None or when < order.next_check_at:
        order.next_check_at = when
        order.dispatched_at = None


def order_views(session: Session, order_id: str | None = None) -> list[dict[str, Any]]:
    """Orders (newest first) with their fulfillments and every attempt, as plain values for
    listings; card data only as its kind and last four digits."""
    statement = select(PayoutOrder).order_by(PayoutOrder.created_at.desc(), PayoutOrder.id)
    if order_id is not None:
        statement = statement.where(PayoutOrder.order_id == order_id)
    return [_order_view(session, order) for order in session.scalars(statement)]


def _order_view(session: Session, order: PayoutOrder) -> dict[str, Any]:
    fulfillments = []
    for f in fulfillments_of(session, order.id):
        card = None
        if f.card_kind is not None:
            shown = f"****{f.card_last4}" if f.card_last4 else "****"
            card = shown if f.card_kind == "NUMBER" else f"token {shown}"
        attempts = [
            {
                "number": a.number,
                "state": a.state,
                "counted": a.counted,
                "error_code": a.error_code,
                "error_message": a.error_message,
                "outcome": a.outcome,
                "at": a.created_at,
                "answered_at": a.answered_at,
                "settled_at": a.settled_at,
            }
            for a in attempts_of(session, f.id)
        ]
        transactions = [
            {
                "ref": t.ref,
                "status": t.status,
                "rail": t.rail,
                "response_code": t.response_code,
                "response_message": t.response_message,
                "created_at": t.juspay_created_at,
                "learnt_at": t.learnt_at,
            }
            for t in transactions_of(session, f.id)
        ]
        fulfillments.append(
            {
                "fulfillment_id": f.fulfillment_id,
                "beneficiary_type": f.beneficiary_type,
                "rail": f.rail,
                "amount": f.amount,
                "status": f.status,
                "status_at": f.status_at,
                "failure_code": f.failure_code,
                "failure_message": f.failure_message,
                "is_retriable": f.is_retriable,
                "attempt_threshold": f.attempt_threshold,
                "card": card,
                "sender_details": f.sender_ciphertext is not None,
                "needs_cvv": f.needs_cvv,
                "attempt_state": f.attempt_state,
                "attempts_made": f.attempts_made,
                "max_attempts": f.max_attempts,
                "next_attempt_at": f.next_attempt_at,
                "stop_reason": f.stop_reason,
                "attempts": attempts,
                "transactions": transactions,
            }
        )
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "amount": order.amount,
        "status": order.status,
        "next_check_at": order.next_check_at,
        "last_error": order.last_error,
        "tracked_at": order.created_at,
        "fulfillments": fulfillments,
    }
