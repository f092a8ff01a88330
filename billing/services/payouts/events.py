"""Applying payout evidence (SPEC §8): a status read (track, refresh) or a payout webhook.

Every reading of a fulfillment goes through `observe_fulfillment` (its transactions are
recorded, its status taken unless older than what is held: domain.payout.should_apply), then
`evaluate` (what the attempt state becomes: domain.payout.on_status, which reads an open
attempt's outcome only from evidence newer than it), which `settle_order` runs for each
fulfillment before planning the order's next status read. The order and its fulfillment rows
are locked while that happens, so a webhook, a poll and an attempt's claim never overwrite
each other.

Webhooks (`{id, category, label, value, info}`) go through the same functions:
FULFILLMENT_ORDER is a fulfillment reading, FULFILLMENT_TXN one transaction, ORDER the order's
status (its fulfillments are then read now); VALIDATION_V2 and other labels are not ours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from billing.domain.payout import (
    AttemptAnswer,
    AttemptState,
    FulfillmentView,
    Observation,
    OpenAttempt,
    TxnView,
    attempt_threshold,
    is_stale,
    needs_polling,
    next_poll_at,
    on_status,
    should_apply,
)
from billing.gateway import (
    FulfillmentResult,
    PayoutOrderResult,
    PayoutOrderSummary,
    PayoutTransaction,
    loose,
    parse_payout_event,
)
from billing.store import payouts as store
from billing.store.models import Fulfillment, FulfillmentTransaction, PayoutAttempt, PayoutOrder

log = logging.getLogger("billing.payouts")

_S = AttemptState
_EARLIEST = datetime.min.replace(tzinfo=UTC)

__all__ = ["apply_payout_event", "evaluate", "observe_order", "settle_order"]


# --- taking in evidence (shared by track, refresh, resume and webhooks) -----------------------


def record_transaction(
    session: Session, fulfillment: Fulfillment, txn: PayoutTransaction, *, now: datetime
) -> FulfillmentTransaction:
    """Add a transaction we had not seen, or update the one we hold unless this reading of it
    is older (by its `updatedAt`)."""
    held = next(
        (t for t in store.transactions_of(session, fulfillment.id) if t.ref == txn.ref), None
    )
    if held is None:
        held = FulfillmentTransaction(
            fulfillment_pk=fulfillment.id,
            ref=txn.ref[:64],
            status=txn.status,
            learnt_at=now,
        )
        session.add(held)
    elif (
        txn.updated_at is not None
        and held.juspay_updated_at is not None
        and txn.updated_at < held.juspay_updated_at
    ):
        return held
    held.status = txn.status
    held.rail = txn.rail or held.rail
    held.response_code = txn.response_code
    held.response_message = (txn.response_message or "")[:255] or None
    held.amount = txn.amount if txn.amount is not None else held.amount
    held.juspay_created_at = txn.created_at or held.juspay_created_at
    held.juspay_updated_at = txn.updated_at or held.juspay_updated_at
    session.flush()
    return held


def observe_fulfillment(
    session: Session, fulfillment: Fulfillment, result: FulfillmentResult, *, now: datetime
) -> bool:
    """Take in one reading of a fulfillment; True if its status was taken (not stale)."""
    known = store.transactions_of(session, fulfillment.id)
    listed = None if result.transactions is None else len(result.transactions)
    held = Observation(fulfillment.status, fulfillment.status_at, len(known))
    new = Observation(result.status, result.status_at, listed)
    for txn in result.transactions or ():
        record_transaction(session, fulfillment, txn, now=now)
    fulfillment.beneficiary_type = result.beneficiary_type or fulfillment.beneficiary_type
    if result.is_retriable is not None:
        fulfillment.is_retriable = result.is_retriable
    if result.attempt_threshold is not None:
        fulfillment.attempt_threshold = result.attempt_threshold
    fulfillment.amount = result.amount if result.amount is not None else fulfillment.amount
    newest = _newest(store.transactions_of(session, fulfillment.id))
    fulfillment.rail = (newest.rail if newest else None) or result.rail or fulfillment.rail
    taken = should_apply(new, held) or (new.status == held.status and not is_stale(new, held))
    if taken:
        fulfillment.status = result.status
        if result.status_at is not None and (
            fulfillment.status_at is None or result.status_at > fulfillment.status_at
        ):
            fulfillment.status_at = result.status_at
    if fulfillment.status == "FAILURE" and newest is not None:
        fulfillment.failure_code = newest.response_code
        fulfillment.failure_message = newest.response_message
    return taken


def _newest(transactions: Iterable[FulfillmentTransaction]) -> FulfillmentTransaction | None:
    """The newest transaction by Juspay's createdAt; among equal dates, the later learnt."""
    return max(transactions, key=lambda t: (t.juspay_created_at or _EARLIEST, t.id), default=None)


def observe_order(
    session: Session, order: PayoutOrder, result: PayoutOrderResult, *, now: datetime
) -> list[Fulfillment]:
    """Take in a whole payout order reading; returns its fulfillments, locked."""
    if result.updated_at is None or order.status_at is None or result.updated_at >= order.status_at:
        order.status = result.status
        order.status_at = result.updated_at or order.status_at
    if result.amount is not None:
        order.amount = result.amount
    held = {f.fulfillment_id: f for f in store.fulfillments_of(session, order.id, for_update=True)}
    for item in result.fulfillments:
        fulfillment = held.get(item.id)
        if fulfillment is None:
            fulfillment = _new_fulfillment(session, order, item, now=now)
            held[item.id] = fulfillment
        observe_fulfillment(session, fulfillment, item, now=now)
    return list(held.values())


def _new_fulfillment(
    session: Session, order: PayoutOrder, item: FulfillmentResult, *, now: datetime
) -> Fulfillment:
    fulfillment = Fulfillment(
        fulfillment_id=item.id,
        payout_order_pk=order.id,
        status=item.status,
        status_at=item.status_at,
        attempt_state=_S.IDLE,
        attempts_made=0,
        max_attempts=3,
        needs_cvv=False,
        created_at=now,
        updated_at=now,
    )
    session.add(fulfillment)
    session.flush()
    return fulfillment


# --- deciding -----------------------------------------------------------------------------------


def evaluate(session: Session, fulfillment: Fulfillment, *, now: datetime) -> None:
    """Move the fulfillment's attempt state for what it holds now (domain.on_status)."""
    attempt = store.open_attempt(session, fulfillment.id)
    open_attempt: OpenAttempt | None = None
    new_txns: tuple[TxnView, ...] = ()
    if attempt is not None:
        open_attempt = OpenAttempt(
            number=attempt.number,
            answer=AttemptAnswer(attempt.state),
            sent_at=attempt.created_at,
            baseline_status_at=attempt.baseline_status_at,
        )
        later = [
            t for t in store.transactions_of(session, fulfillment.id)
            if t.id > attempt.baseline_txn_pk
        ]  # fmt: skip
        later.sort(key=lambda t: (t.juspay_created_at or _EARLIEST, t.id))
        new_txns = tuple(TxnView(t.status, t.juspay_created_at) for t in later)
    step = on_status(
        FulfillmentView(
            status=fulfillment.status,
            status_at=fulfillment.status_at,
            beneficiary_type=fulfillment.beneficiary_type,
            failure_code=fulfillment.failure_code,
            is_retriable=fulfillment.is_retriable,
            attempt_state=_S(fulfillment.attempt_state),
            attempts_made=fulfillment.attempts_made,
            max_attempts=fulfillment.max_attempts,
            has_card=fulfillment.card_ciphertext is not None,
            next_attempt_at=fulfillment.next_attempt_at,
            open_attempt=open_attempt,
            new_txns=new_txns,
            threshold=attempt_threshold(fulfillment.attempt_threshold),
            stop_reason=fulfillment.stop_reason,
        ),
        now=now,
    )
    if step.attempt_outcome is not None and attempt is not None:
        attempt.outcome = step.attempt_outcome
        attempt.settled_at = now
        log.info(
            "payout %s attempt %s: %s",
            fulfillment.fulfillment_id,
            attempt.number,
            step.attempt_outcome,
        )
    changed = (step.attempt_state, step.next_attempt_at, step.stop_reason) != (
        fulfillment.attempt_state,
        fulfillment.next_attempt_at,
        fulfillment.stop_reason,
    )
    if changed:
        if step.attempt_state is _S.DUE and fulfillment.attempt_state != _S.DUE:
            fulfillment.dispatched_at = None
        if step.attempt_state is _S.REVIEW and fulfillment.attempt_state != _S.REVIEW:
            log.warning("payout %s to review: %s", fulfillment.fulfillment_id, step.stop_reason)
        fulfillment.attempt_state = step.attempt_state
        fulfillment.next_attempt_at = step.next_attempt_at
        fulfillment.stop_reason = (step.stop_reason or "")[:255] or None
        fulfillment.updated_at = now


def settle_order(
    session: Session,
    order: PayoutOrder,
    fulfillments: list[Fulfillment],
    *,
    now: datetime,
    replan: bool,
) -> str:
    """Evaluate every fulfillment, then decide when the order is read again (None: settled)."""
    for fulfillment in fulfillments:
        evaluate(session, fulfillment, now=now)
    order.updated_at = now
    open_ = [f for f in fulfillments if needs_polling(f.status, _S(f.attempt_state))]
    if not open_:
        order.next_check_at = None
    else:
        planned = [when for f in open_ if (when := _next_read(session, order, f, now)) is not None]
        if replan:  # after a status read: the back-off counts from the latest attempt
            order.next_check_at = min(planned, default=None)
        elif order.next_check_at is None:  # an event opened it: start reading it
            order.next_check_at = min(planned, default=None) or next_poll_at(now, anchor=now)
        else:  # never later than a waiting attempt's threshold
            store.schedule_check(order, min(planned, default=None))
        if order.next_check_at is None:
            log.warning(
                "payout %s: open past its polling age; waiting for webhooks", order.order_id
            )
    order.dispatched_at = None if order.next_check_at is None else order.dispatched_at
    states = ", ".join(f"{f.fulfillment_id} {f.status}/{f.attempt_state}" for f in fulfillments)
    return f"{order.status}: {states}"


def _next_read(
    session: Session, order: PayoutOrder, fulfillment: Fulfillment, now: datetime
) -> datetime | None:
    attempts = store.attempts_of(session, fulfillment.id)
    latest: PayoutAttempt | None = attempts[-1] if attempts else None
    waiting = None
    if fulfillment.attempt_state == _S.WAITING:
        open_attempt = store.open_attempt(session, fulfillment.id)
        waiting = None if open_attempt is None else open_attempt.created_at
    return next_poll_at(
        now,
        anchor=latest.created_at if latest is not None else order.created_at,
        waiting_since=waiting,
        threshold=attempt_threshold(fulfillment.attempt_threshold),
    )


# --- webhooks ---------------------------------------------------------------------------------


def apply_payout_event(
    sessions: sessionmaker[Session], event: Mapping[str, object], *, now: datetime
) -> str:
    """Apply a stored payout webhook (`{id, category, label, value, info}`) like a status read.

    FULFILLMENT_ORDER updates the fulfillment when it is newer (an older event never moves it
    back; SUCCESS is never left); FULFILLMENT_TXN records a transaction, which may be the
    outcome of an attempt; ORDER updates the order's status and has its open fulfillments read
    now. Events about what we do not track are ignored. A malformed event raises `InvalidField`
    naming the field. Safe to apply twice.
    """
    label = loose.required_text(event.get("label"), "label").upper()
    value = loose.required_text(event.get("value"), "value")
    info = loose.mapping(event.get("info"), "info")
    if info is None:
        return f"ignored: {label} without info"
    content = parse_payout_event(label, value, info)
    if content.fulfillment is not None:
        return _apply_fulfillment(sessions, content.fulfillment, now=now)
    if content.transaction is not None:
        return _apply_transaction(sessions, content.transaction, now=now)
    if content.order is not None:
        return _apply_order(sessions, content.order, now=now)
    if label == "VALIDATION_V2":
        return f"ignored: beneficiary validation {value}: billing tracks no validations"
    return f"ignored: label {label}"


def _locked(
    session: Session, fulfillment_id: str
) -> tuple[Fulfillment, PayoutOrder, list[Fulfillment]] | None:
    found = store.lock_fulfillment(session, fulfillment_id=fulfillment_id)
    if found is None:
        return None
    fulfillment, order = found
    return fulfillment, order, store.fulfillments_of(session, order.id, for_update=True)


def _apply_fulfillment(
    sessions: sessionmaker[Session], item: FulfillmentResult, *, now: datetime
) -> str:
    with sessions() as session, session.begin():
        found = _locked(session, item.id)
        if found is None:
            return f"ignored: fulfillment {item.id} is not tracked"
        fulfillment, order, fulfillments = found
        if item.status_at is None:  # undated: a hint, the order is read now
            store.schedule_check(order, now)
            return f"undated event: order {order.order_id} will be read now"
        taken = observe_fulfillment(session, fulfillment, item, now=now)
        settle_order(session, order, fulfillments, now=now, replan=False)
        verdict = "applied" if taken else "stale"
        return f"{verdict}: {item.id} {fulfillment.status}/{fulfillment.attempt_state}"


def _apply_transaction(
    sessions: sessionmaker[Session], txn: PayoutTransaction, *, now: datetime
) -> str:
    assert txn.fulfillment_id is not None  # required in a FULFILLMENT_TXN
    with sessions() as session, session.begin():
        found = _locked(session, txn.fulfillment_id)
        if found is None:
            return f"ignored: fulfillment {txn.fulfillment_id} is not tracked"
        fulfillment, order, fulfillments = found
        record_transaction(session, fulfillment, txn, now=now)
        settle_order(session, order, fulfillments, now=now, replan=False)
        return (
            f"applied: {fulfillment.fulfillment_id} transaction {txn.ref} {txn.status}; "
            f"{fulfillment.status}/{fulfillment.attempt_state}"
        )


def _apply_order(
    sessions: sessionmaker[Session], summary: PayoutOrderSummary, *, now: datetime
) -> str:
    with sessions() as session, session.begin():
        order = store.find_order(session, summary.order_id, for_update=True)
        if order is None:
            return f"ignored: payout order {summary.order_id} is not tracked"
        at = summary.updated_at
        if at is not None and order.status_at is not None and at < order.status_at:
            return f"stale: order {order.order_id} {summary.status}"
        order.status, order.status_at = summary.status, at or order.status_at
        fulfillments = store.fulfillments_of(session, order.id, for_update=True)
        if any(needs_polling(f.status, _S(f.attempt_state)) for f in fulfillments):
            store.schedule_check(order, now)  # what moved is in the fulfillments: read them
            return f"applied: order {order.order_id} {summary.status}; read now"
        return f"applied: order {order.order_id} {summary.status}"
