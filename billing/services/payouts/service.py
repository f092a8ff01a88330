"""Payout orders and the retries of their failed PLAIN_CARD fulfillments (SPEC §8).

    track / import_rows   register an order from Juspay's payout status (registry.py)
    refresh               read an open order's status once (beat, on the polling back-off)
    apply_payout_event    the same application from a stored payout webhook (events.py)
    attempt               one Attempt API call (attempts.py)
    run_due               what beat does, synchronously: for `billing tick`

`Payouts` is the one object the entrypoints hold; this module re-exports what they use from the
others, and the webhook processing looks `apply_payout_event` up here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.errors import InvalidField
from billing.domain.payout import AttemptOutcome, AttemptState
from billing.gateway import GatewayError
from billing.services import Clock, NotFoundError
from billing.services.payouts.attempts import PayoutAttempts, PayoutPolicy
from billing.services.payouts.cards import CvvProvider
from billing.services.payouts.events import (
    apply_payout_event,
    evaluate,
    observe_order,
    settle_order,
)
from billing.services.payouts.registry import (
    ImportReport,
    PayoutRegistry,
    Registration,
    TrackReport,
    parse_registration,
    read_registrations,
)
from billing.services.ports import PayoutGateway
from billing.store import payouts as store
from billing.store.leases import claim_ids
from billing.store.models import Fulfillment, PayoutOrder
from billing.store.vault import CardVault

log = logging.getLogger("billing.payouts")

_S = AttemptState
CHECK_LEASE = timedelta(minutes=2)  # how long one status read holds an order
FAILED_CHECK_RETRY = timedelta(minutes=15)

# Re-exported for the entrypoints; webhook processing looks up `apply_payout_event` here.
__all__ = [
    "CvvProvider",
    "PayoutPolicy",
    "Payouts",
    "Registration",
    "apply_payout_event",
    "claim_due_payouts",
    "describe",
    "parse_registration",
    "payout_halt",
    "read_registrations",
    "resume",
]


class Payouts:
    """The payout registry and its retries; every method is safe to run twice or concurrently."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: PayoutGateway,
        clock: Clock,
        *,
        policy: PayoutPolicy,
        vault: CardVault | None,
        cvv_provider: CvvProvider | None = None,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.clock = clock
        self.policy = policy
        self.vault = vault
        self.registry = PayoutRegistry(sessions, gateway, clock, policy=policy, vault=vault)
        self.attempts = PayoutAttempts(
            sessions, gateway, clock, policy=policy, vault=vault, cvv_provider=cvv_provider
        )

    # -- registry (registry.py) ------------------------------------------------------

    def track(self, registration: Registration) -> TrackReport:
        return self.registry.track(registration)

    def import_rows(self, rows: Iterable[tuple[int, Registration | InvalidField]]) -> ImportReport:
        return self.registry.import_rows(rows)

    # -- status -----------------------------------------------------------------------------

    def refresh(self, order_id: str) -> str:
        """Read a due order's payout status once and apply it; a no-op when it is not due."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            order = store.find_order(session, order_id)
            if order is None:
                return "missing"
            if order.next_check_at is None or order.next_check_at > now:
                return "not due"
            claimed = session.execute(
                update(PayoutOrder)
                .where(
                    PayoutOrder.id == order.id,
                    PayoutOrder.next_check_at == order.next_check_at,
                )
                .values(
                    next_check_at=now + CHECK_LEASE,
                    checks=PayoutOrder.checks + 1,
                    dispatched_at=None,
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "checked elsewhere"
            customer_id = order.customer_id
        try:
            result = self.gateway.payout_order_status(order_id, customer_id=customer_id)
        except GatewayError as exc:
            return self._check_failed(order_id, exc)
        with self.sessions() as session, session.begin():
            order = store.find_order(session, order_id, for_update=True)
            assert order is not None
            fulfillments = observe_order(session, order, result, now=now)
            order.last_error = None
            return settle_order(session, order, fulfillments, now=now, replan=True)

    def _check_failed(self, order_id: str, error: GatewayError) -> str:
        now = self.clock()
        level = logging.ERROR if error.http_status == 401 else logging.WARNING
        log.log(level, "payout %s: status read failed: %s", order_id, error)
        with self.sessions() as session, session.begin():
            order = store.find_order(session, order_id, for_update=True)
            assert order is not None
            order.last_error = f"status read failed: {error}"[:255]
            order.next_check_at = now + FAILED_CHECK_RETRY
            order.dispatched_at = None
        return "check failed; will retry"

    # -- attempts and the pass ---------------------------------------------------------------

    def attempt(self, fulfillment_id: str) -> str:
        return self.attempts.attempt(fulfillment_id)

    def run_due(self, *, max_rounds: int = 20) -> int:
        """Reclaim, then attempt / refresh everything due now until nothing is: `billing tick`."""
        steps = self.attempts.reclaim_stale()
        for _ in range(max_rounds):
            work = claim_due_payouts(
                self.sessions,
                now=self.clock(),
                lease=self.policy.dispatch_lease,
                attempts=self.policy.attempts_disabled is None,
            )
            if not work:
                break
            for fulfillment_id in work.attempts:
                log.info("payout %s: %s", fulfillment_id, self.attempt(fulfillment_id))
                steps += 1
            for order_id in work.refreshes:
                log.info("payout order %s: %s", order_id, self.refresh(order_id))
                steps += 1
        return steps


# --- beat's selection, resume, views -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DuePayouts:
    attempts: list[str]  # fulfillment ids for billing.payouts.attempt
    refreshes: list[str]  # order ids for billing.payouts.refresh

    def __bool__(self) -> bool:
        return bool(self.attempts or self.refreshes)


def claim_due_payouts(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    lease: timedelta,
    limit: int = 500,
    attempts: bool = True,
) -> DuePayouts:
    """Due attempts (none while HALTED) and due status reads, leased to the caller."""
    with sessions() as session, session.begin():
        due_attempts: list[str] = []
        if attempts and store.halted(session) is None:
            due_attempts = claim_ids(
                session,
                Fulfillment.fulfillment_id,
                Fulfillment,
                [Fulfillment.attempt_state == _S.DUE, Fulfillment.next_attempt_at <= now],
                Fulfillment.next_attempt_at,
                now=now,
                limit=limit,
                lease=lease,
            )
        refreshes = claim_ids(
            session,
            PayoutOrder.order_id,
            PayoutOrder,
            [PayoutOrder.next_check_at <= now],
            PayoutOrder.next_check_at,
            now=now,
            limit=limit,
            lease=lease,
        )
    return DuePayouts(due_attempts, refreshes)


def resume(sessions: sessionmaker[Session], *, now: datetime, order_id: str | None = None) -> int:
    """Lift a 401 halt (every HALTED fulfillment is due now) or, for one order, re-arm its
    STOPPED fulfillments that may still be attempted (after fixing their card or the CVV
    provider) and those in REVIEW: resuming one whose attempt's outcome never came is the
    operator saying, after checking with Juspay, that it did not land (NOT_LANDED), so it may
    be attempted again. Returns how many fulfillments are due again."""
    states = [_S.HALTED] + ([_S.STOPPED, _S.REVIEW] if order_id else [])
    with sessions() as session, session.begin():
        statement = select(Fulfillment).where(Fulfillment.attempt_state.in_(states))
        if order_id is not None:
            order = store.find_order(session, order_id, for_update=True)
            if order is None:
                raise NotFoundError(f"payout order {order_id} is not tracked")
            statement = statement.where(Fulfillment.payout_order_pk == order.id)
        resumed = 0
        for fulfillment in session.scalars(statement.with_for_update()):
            if fulfillment.attempt_state == _S.REVIEW:
                attempt = store.open_attempt(session, fulfillment.id)
                if attempt is not None:
                    attempt.outcome, attempt.settled_at = AttemptOutcome.NOT_LANDED, now
                    log.warning(
                        "payout %s attempt %s: NOT_LANDED, on the operator's word",
                        fulfillment.fulfillment_id,
                        attempt.number,
                    )
            fulfillment.attempt_state = _S.IDLE
            fulfillment.next_attempt_at = None
            fulfillment.stop_reason = None
            evaluate(session, fulfillment, now=now)
            resumed += int(fulfillment.attempt_state == _S.DUE)
    log.warning("payout attempts resumed: %s fulfillments due again", resumed)
    return resumed


def payout_halt(sessions: sessionmaker[Session]) -> str | None:
    """Why payout attempts are halted (a 401 from the Attempt API), or None: for status views."""
    with sessions() as session:
        halted = store.halted(session)
        if halted is None:
            return None
        return f"since {halted.updated_at:%Y-%m-%d %H:%M} UTC: {halted.stop_reason}"


def describe(sessions: sessionmaker[Session], order_id: str | None = None) -> list[dict[str, Any]]:
    """Orders with their fulfillments and attempts, for listings: the card only as ****1234."""
    with sessions() as session:
        views = store.order_views(session, order_id)
    if order_id is not None and not views:
        raise NotFoundError(f"payout order {order_id} is not tracked")
    return views
