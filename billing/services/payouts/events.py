"""Applying payout status evidence (SPEC §8): a status read (track, refresh) or a webhook.

Every reading goes through `_observe` (is it newer than what we hold? domain.payout.should_apply)
and then `evaluate` (what the attempt state becomes: domain.payout.on_status), which
`settle_order` runs for each fulfillment before planning the order's next status read. The
fulfillment rows are locked while that happens, so a webhook, a poll and an attempt's claim
never overwrite each other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.payout import (
    AttemptAnswer,
    AttemptState,
    FulfillmentView,
    Observation,
    OpenAttempt,
    is_stale,
    needs_polling,
    next_poll_at,
    on_status,
    should_apply,
)
from billing.gateway import FulfillmentResult, PayoutOrderResult, loose, parse_payout_order
from billing.gateway.results import parse_fulfillment
from billing.store import payouts as store
from billing.store.models import Fulfillment, PayoutAttempt, PayoutOrder

log = logging.getLogger("billing.payouts")

_S = AttemptState

__all__ = ["apply_payout_event", "evaluate", "observe_order", "settle_order"]


# --- applying evidence (shared by track, refresh, resume and webhooks) ------------------------


def _observe(
    fulfillment: Fulfillment, result: FulfillmentResult, *, at: datetime | None, txns: int | None
) -> bool:
    """Take in one status reading unless it is older than what is held; True if taken."""
    held = Observation(fulfillment.status, fulfillment.status_at, fulfillment.txn_count)
    new = Observation(result.status, at, txns)
    if not should_apply(new, held) and (new.status != held.status or is_stale(new, held)):
        return False
    fulfillment.status = result.status
    if result.status == "FAILURE":
        fulfillment.failure_code = result.failure_code
        fulfillment.failure_message = (result.failure_message or "")[:255] or None
    if result.is_retriable is not None:
        fulfillment.is_retriable = result.is_retriable
    fulfillment.amount = result.amount if result.amount is not None else fulfillment.amount
    fulfillment.method = result.method or fulfillment.method
    fulfillment.beneficiary_type = result.beneficiary_type or fulfillment.beneficiary_type
    if at is not None and (fulfillment.status_at is None or at > fulfillment.status_at):
        fulfillment.status_at = at
    if txns is not None and (fulfillment.txn_count is None or txns > fulfillment.txn_count):
        fulfillment.txn_count = txns
    return True


def observe_order(
    session: Session,
    order: PayoutOrder,
    result: PayoutOrderResult,
    *,
    at: datetime | None,
    txns: Mapping[str, int],
) -> tuple[list[Fulfillment], dict[str, str]]:
    """Apply a whole payout order reading; returns its fulfillments and their prior statuses."""
    if at is not None and (order.status_at is None or at >= order.status_at):
        order.status, order.status_at = result.status, at
    if result.amount is not None:
        order.amount = result.amount
    held = {f.fulfillment_id: f for f in store.fulfillments_of(session, order.id, for_update=True)}
    previous = {fid: f.status for fid, f in held.items()}
    for item in result.fulfillments:
        fulfillment = held.get(item.id)
        if fulfillment is None:
            fulfillment = _new_fulfillment(session, order, item, at=at)
            held[item.id] = fulfillment
            previous[item.id] = item.status
        _observe(fulfillment, item, at=at, txns=txns.get(item.id))
    return list(held.values()), previous


def _new_fulfillment(
    session: Session, order: PayoutOrder, item: FulfillmentResult, *, at: datetime | None
) -> Fulfillment:
    now = at or order.updated_at
    fulfillment = Fulfillment(
        fulfillment_id=item.id,
        payout_order_pk=order.id,
        status=item.status,
        status_at=at,
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


def evaluate(session: Session, fulfillment: Fulfillment, previous: str, *, now: datetime) -> None:
    """Move the fulfillment's attempt state for the status it holds now (domain.on_status)."""
    attempt = store.open_attempt(session, fulfillment.id)
    step = on_status(
        FulfillmentView(
            status=fulfillment.status,
            previous_status=previous,
            method=fulfillment.method,
            failure_code=fulfillment.failure_code,
            is_retriable=fulfillment.is_retriable,
            attempt_state=_S(fulfillment.attempt_state),
            attempts_made=fulfillment.attempts_made,
            max_attempts=fulfillment.max_attempts,
            has_card=fulfillment.card_ciphertext is not None,
            next_attempt_at=fulfillment.next_attempt_at,
            open_attempt=None
            if attempt is None
            else OpenAttempt(
                AttemptAnswer(attempt.state), attempt.answered_at or attempt.created_at
            ),
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
        fulfillment.attempt_state = step.attempt_state
        fulfillment.next_attempt_at = step.next_attempt_at
        fulfillment.stop_reason = (step.stop_reason or "")[:255] or None
        fulfillment.updated_at = now


def settle_order(
    session: Session,
    order: PayoutOrder,
    fulfillments: list[Fulfillment],
    previous: Mapping[str, str],
    *,
    now: datetime,
    replan: bool,
) -> str:
    """Evaluate every fulfillment, then decide when the order is read again (None: settled)."""
    for fulfillment in fulfillments:
        evaluate(
            session,
            fulfillment,
            previous.get(fulfillment.fulfillment_id, fulfillment.status),
            now=now,
        )
    order.updated_at = now
    open_ = [f for f in fulfillments if needs_polling(f.status, _S(f.attempt_state))]
    if not open_:
        order.next_check_at = None
    elif replan:  # after a status read: the back-off counts from the latest attempt
        anchor = session.scalar(
            select(PayoutAttempt.created_at)
            .where(PayoutAttempt.fulfillment_pk.in_([f.id for f in open_]))
            .order_by(PayoutAttempt.created_at.desc())
            .limit(1)
        )
        order.next_check_at = next_poll_at(now, anchor=anchor or order.created_at)
    elif order.next_check_at is None:  # an event opened it: start reading it from now
        order.next_check_at = next_poll_at(now, anchor=now)
    if open_ and order.next_check_at is None:
        log.warning("payout %s: open past its polling age; waiting for webhooks", order.order_id)
    order.dispatched_at = None if order.next_check_at is None else order.dispatched_at
    states = ", ".join(f"{f.fulfillment_id} {f.status}/{f.attempt_state}" for f in fulfillments)
    return f"{order.status}: {states}"


# --- webhooks ---------------------------------------------------------------------------------


def apply_payout_event(
    sessions: sessionmaker[Session], event: Mapping[str, object], *, now: datetime
) -> str:
    """Apply a stored payout webhook (`{id, category, label, value, info{createdAt}}`).

    FULFILLMENT_ORDER (one fulfillment) and ORDER (the whole order) update what we hold when
    they are newer (an older event never moves a fulfillment back; SUCCESS is never left) and
    may make a failed PLAIN_CARD fulfillment due for an attempt. FULFILLMENT_TXN and undated
    events are hints: the order is read again now. Events for orders we do not track are
    ignored. A malformed event raises `InvalidField` naming the field. Safe to apply twice.
    """
    category = loose.required_text(event.get("category"), "category").upper()
    value = loose.mapping(event.get("value"), "value") or {}
    info = loose.mapping(event.get("info"), "info") or {}
    at = loose.instant(info.get("createdAt"), "info.createdAt")
    if category == "FULFILLMENT_ORDER":
        item = parse_fulfillment(value, prefix="value")
        order_id = loose.text(value.get("orderId"), "value.orderId")
        return _apply_fulfillment_event(
            sessions, order_id, item, at=at, txns=_txn_count(value), now=now
        )
    if category == "ORDER":
        result = parse_payout_order(value)
        raw = value.get("fulfillments")
        txns = {}
        for entry in raw if isinstance(raw, list) else []:
            count = _txn_count(entry) if isinstance(entry, Mapping) else None
            if count is not None and entry.get("id"):
                txns[str(entry["id"])] = count
        return _apply_order_event(sessions, result, at=at, txns=txns, now=now)
    if category == "FULFILLMENT_TXN":
        order_id = loose.text(value.get("orderId"), "value.orderId")
        return _hint(sessions, order_id, now=now, why="transaction event")
    return f"ignored: category {category}"


def _txn_count(value: Mapping[str, Any]) -> int | None:
    transactions = value.get("transactions")
    return len(transactions) if isinstance(transactions, list) else None


def _apply_fulfillment_event(
    sessions: sessionmaker[Session],
    order_id: str | None,
    item: FulfillmentResult,
    *,
    at: datetime | None,
    txns: int | None,
    now: datetime,
) -> str:
    if at is None:
        return _hint(sessions, order_id, now=now, why="undated event")
    with sessions() as session, session.begin():
        found = store.find_fulfillment(session, item.id)
        if found is None:
            known = order_id is not None and store.find_order(session, order_id) is not None
            if not known:
                return f"ignored: fulfillment {item.id} is not tracked"
        else:
            order_id = found[1].order_id
        assert order_id is not None
        order = store.find_order(session, order_id, for_update=True)
        assert order is not None
        fulfillments = store.fulfillments_of(session, order.id, for_update=True)
        target = next((f for f in fulfillments if f.fulfillment_id == item.id), None)
        if target is None:
            target = _new_fulfillment(session, order, item, at=at)
            fulfillments.append(target)
        previous = {f.fulfillment_id: f.status for f in fulfillments}
        taken = _observe(target, item, at=at, txns=txns)
        settle_order(session, order, fulfillments, previous, now=now, replan=False)
        verdict = "applied" if taken else "stale"
        return f"{verdict}: {item.id} {target.status}/{target.attempt_state}"


def _apply_order_event(
    sessions: sessionmaker[Session],
    result: PayoutOrderResult,
    *,
    at: datetime | None,
    txns: Mapping[str, int],
    now: datetime,
) -> str:
    if at is None:
        return _hint(sessions, result.order_id, now=now, why="undated event")
    with sessions() as session, session.begin():
        order = store.find_order(session, result.order_id, for_update=True)
        if order is None:
            return f"ignored: payout order {result.order_id} is not tracked"
        fulfillments, previous = observe_order(session, order, result, at=at, txns=txns)
        return "applied: " + settle_order(
            session, order, fulfillments, previous, now=now, replan=False
        )


def _hint(sessions: sessionmaker[Session], order_id: str | None, *, now: datetime, why: str) -> str:
    if order_id is None:
        return f"ignored: {why} without orderId"
    with sessions() as session, session.begin():
        order = store.find_order(session, order_id, for_update=True)
        if order is None:
            return f"ignored: payout order {order_id} is not tracked"
        store.schedule_check(order, now)
    return f"{why}: order {order_id} will be read now"
