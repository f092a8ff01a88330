"""Selecting due work for beat (and `billing tick`): ids only, never the work itself.

Each selection marks its rows `dispatched_at = now` in the same transaction, so a second beat
running at the same moment (or the next beat while the queue is still busy) does not enqueue
them again within the lease; a task lost with its worker is enqueued again after it. The
per-item task still claims its row with a guarded transition: the lease only saves work, it
does not decide who charges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.debit import DebitState
from billing.domain.timing import Flow
from billing.store import debits as debit_store
from billing.store.leases import claim_ids
from billing.store.models import Debit, Notification, Order

_D = DebitState
DISPATCH_LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DueWork:
    executions: Sequence[int]  # debit ids for billing.debits.execute
    notifications: Sequence[int]  # debit ids for billing.notifications.send (merchant flow)
    order_checks: Sequence[str]  # order ids for billing.orders.check
    notification_checks: Sequence[str]  # references for billing.notifications.check

    def __bool__(self) -> bool:
        return bool(
            self.executions or self.notifications or self.order_checks or self.notification_checks
        )


def claim_due_work(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    limit: int = 500,
    lease: timedelta = DISPATCH_LEASE,
) -> DueWork:
    """Everything due at `now`, up to `limit` of each kind, leased to the caller."""
    with sessions() as session, session.begin():
        executions = claim_ids(
            session,
            Debit.id,
            Debit,
            [
                Debit.due_at <= now,
                or_(
                    Debit.state == _D.NOTIFIED,
                    (Debit.state.in_([_D.PLANNED, _D.RETRY_SCHEDULED]))
                    & (Debit.flow != Flow.MERCHANT),
                ),
            ],
            Debit.due_at,
            now=now,
            limit=limit,
            lease=lease,
        )
        notifications = claim_ids(
            session,
            Debit.id,
            Debit,
            [
                Debit.due_at <= now,
                Debit.state.in_([_D.PLANNED, _D.RETRY_SCHEDULED]),
                Debit.flow == Flow.MERCHANT,
            ],
            Debit.due_at,
            now=now,
            limit=limit,
            lease=lease,
        )
        order_checks = claim_ids(
            session,
            Order.order_id,
            Order,
            [Order.next_check_at <= now],
            Order.next_check_at,
            now=now,
            limit=limit,
            lease=lease,
        )
        notification_checks = claim_ids(
            session,
            Notification.reference,
            Notification,
            [Notification.next_check_at <= now],
            Notification.next_check_at,
            now=now,
            limit=limit,
            lease=lease,
        )
    return DueWork(executions, notifications, order_checks, notification_checks)


def reclaim_stale(sessions: sessionmaker[Session], *, now: datetime, stale_after: timedelta) -> int:
    """Debits left EXECUTING by a worker that died after committing its order go to UNKNOWN.

    Whether that order reached Juspay is unknown, so it is reconciled by order status like
    any timeout: found -> adopt its status; not found -> the same order_id is sent again.
    """
    reclaimed = 0
    with sessions() as session, session.begin():
        stale = session.execute(
            select(Debit.id, Order.order_id)
            .join(Order, (Order.debit_id == Debit.id) & (Order.try_number == Debit.tries))
            .where(Debit.state == _D.EXECUTING, Debit.claimed_at < now - stale_after)
        ).all()
        for debit_id, order_id in stale:
            moved = debit_store.move(
                session,
                debit_id,
                expected=_D.EXECUTING,
                target=_D.UNKNOWN,
                at=now,
                cause="claimed but not settled in time (worker lost?): reconciling",
                order_id=order_id,
            )
            if moved:
                session.execute(
                    update(Order)
                    .where(Order.order_id == order_id)
                    .values(next_check_at=now, dispatched_at=None)
                )
                reclaimed += 1
        # A PDN recorded but never answered: check its status (a 404 resends the same ref).
        session.execute(
            update(Notification)
            .where(
                Notification.status == "RECORDED",
                Notification.next_check_at.is_(None),
                Notification.created_at < now - stale_after,
            )
            .values(next_check_at=now)
        )
    return reclaimed
