"""Processing one stored event: claim it, apply it through the services that own the records.

Handlers go through the registry's and the debits' own rules (`apply_status`,
`Debits.settle_from_status`, `Notifications.record`), so a webhook moves a record exactly as a
poll or an import would, and a repeated or stale event changes nothing.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.errors import InvalidField
from billing.domain.mandate import MandateStatus
from billing.domain.schedule import DebitCalendar
from billing.gateway.results import MandateInfo, NotificationResult, OrderStatusResult
from billing.services import Clock, NotFoundError
from billing.services.debits.execution import Debits
from billing.services.debits.notifications import Notifications
from billing.services.mandates.registry import RowError, apply_status, import_mandates
from billing.services.webhook_events.content import (
    MANDATE_EVENTS,
    PAYOUT,
    PAYOUT_LABELS,
    UnusableEventError,
    content_of,
    decode_body,
)
from billing.services.webhook_events.inbox import (
    CLAIM_LEASE,
    IGNORED,
    POISONED,
    PROCESSED,
    RECEIVED,
    UNMATCHED,
    sweep_unprocessed,
)
from billing.store import mandates as mandate_store
from billing.store.models import Notification, Order, WebhookEvent

log = logging.getLogger("billing.webhooks")

MAX_ATTEMPTS = 5  # failed processings before an event is POISONED
# Waits (seconds) before trying an event again in the same task after a transient storage error
# (`is_transient`); past them it is left RECEIVED, uncounted, for the sweeper (every 2 min).
TRANSIENT_BACKOFF = (0.1, 0.5, 2.0)
DEBIT_ORDER = "EMANDATE_PAYMENT"  # txn_detail.txn_object_type of a mandate execution


@dataclass(frozen=True, slots=True)
class Handled:
    state: str  # PROCESSED, IGNORED, UNMATCHED (for review), or POISONED (content unusable)
    outcome: str


@dataclass(frozen=True, slots=True)
class _Claim:
    pk: int
    kind: str
    event_id: str
    event_name: str
    event_at: datetime | None
    body: str
    attempts: int
    failures: int
    claimed_at: datetime

    def __str__(self) -> str:
        return f"{self.kind} event {self.event_id} ({self.event_name})"


class WebhookEvents:
    """Processing of stored events; safe to run twice or concurrently on the same event."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock,
        calendar: DebitCalendar,
        debits: Callable[[], Debits],
        notifications: Callable[[], Notifications],
        max_attempts: int = MAX_ATTEMPTS,
        claim_lease: timedelta = CLAIM_LEASE,
        transient_backoff: Sequence[float] = TRANSIENT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.calendar = calendar
        self.debits = debits  # built on first use: only debit-order events need the gateway
        self.notifications = notifications
        self.max_attempts = max_attempts
        self.claim_lease = claim_lease
        self.transient_backoff = tuple(transient_backoff)
        self.sleep = sleep

    def process(self, event_pk: int, *, replay: bool = False, force: bool = False) -> str:
        """Claim a RECEIVED event and apply it; returns what happened, in one line.

        `replay` also takes POISONED and IGNORED events (`billing webhooks replay`), `force` a
        PROCESSED one too. A handler's error is recorded on the event (retried by the sweeper,
        POISONED after `max_attempts` of them) and raised. A transient storage error (the
        database busy or unreachable) says nothing about the event: it is tried again after
        `transient_backoff`, then left RECEIVED for the sweeper, never counted.
        """
        allowed = {RECEIVED} | ({POISONED, IGNORED, UNMATCHED} if replay else set())
        claim = self._claim(event_pk, allowed | ({PROCESSED} if force else set()))
        if isinstance(claim, str):
            return claim
        waits = iter(self.transient_backoff)
        while True:
            try:
                handled = self._apply(claim)
                break
            except Exception as exc:
                if not is_transient(exc):
                    self._failed(claim, exc)
                    raise
                wait = next(waits, None)
                if wait is None:
                    self._released(claim, exc)
                    raise
                log.info("%s: storage unavailable (%s); again in %.1f s", claim, exc, wait)
                self.sleep(wait)
        if handled.state == POISONED:
            log.error("%s poisoned: %s", claim, handled.outcome)
            self._finish(claim, POISONED, last_error=handled.outcome)
        else:
            log.info("%s: %s", claim, handled.outcome)
            self._finish(claim, handled.state, outcome=handled.outcome)
        return f"{handled.state}: {handled.outcome}"

    def _claim(self, pk: int, allowed: set[str]) -> _Claim | str:
        now = self.clock()
        with self.sessions() as session, session.begin():
            row = session.get(WebhookEvent, pk)
            if row is None:
                return "missing"
            if row.state not in allowed:
                return f"already {row.state}"
            if row.claimed_at is not None and row.claimed_at > now - self.claim_lease:
                return "being processed elsewhere"
            # `attempts` is the row's version: of two claimers reading it, one UPDATE matches.
            claimed = session.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.id == pk,
                    WebhookEvent.state == row.state,
                    WebhookEvent.attempts == row.attempts,
                )
                .values(state=RECEIVED, attempts=row.attempts + 1, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "being processed elsewhere"
            return _Claim(
                pk, row.kind, row.event_id, row.event_name, row.event_at, row.body,
                row.attempts + 1, row.failures, now,
            )  # fmt: skip

    def _finish(
        self,
        claim: _Claim,
        state: str,
        *,
        outcome: str | None = None,
        last_error: str | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        values: dict[str, object] = {"state": state, "claimed_at": None, **(extra or {})}
        if state in (PROCESSED, IGNORED, UNMATCHED):
            values.update(outcome=(outcome or "")[:255], processed_at=self.clock())
        if last_error is not None:
            values["last_error"] = last_error[:255]
        with self.sessions() as session, session.begin():
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == claim.pk, WebhookEvent.claimed_at == claim.claimed_at)
                .values(values)
            )

    def _failed(self, claim: _Claim, exc: Exception) -> None:
        """An error of the event's content or of its handler: counted toward poisoning."""
        error = f"{type(exc).__name__}: {exc}"
        failures = claim.failures + 1
        counted: dict[str, object] = {"failures": failures}
        if failures >= self.max_attempts:
            log.error("%s poisoned after %s failures: %s", claim, failures, error,
                      exc_info=exc)  # fmt: skip
            self._finish(claim, POISONED, last_error=error, extra=counted)
        else:
            log.warning("%s failed (%s of %s): %s", claim, failures, self.max_attempts, error,
                        exc_info=exc)  # fmt: skip
            self._finish(claim, RECEIVED, last_error=error, extra=counted)

    def _released(self, claim: _Claim, exc: Exception) -> None:
        """Storage still unavailable after the back-off: left RECEIVED for the sweeper, not
        counted. If even this write fails, the claim's lease runs out and the sweeper takes it."""
        error = f"transient, not counted: {type(exc).__name__}: {exc}"
        log.warning("%s: %s; left for the sweeper", claim, error)
        try:
            self._finish(claim, RECEIVED, last_error=error)
        except Exception as again:
            if not is_transient(again):
                raise
            log.warning("%s: could not record the transient error (%s)", claim, again)

    def _apply(self, event: _Claim) -> Handled:
        try:
            if event.kind == PAYOUT:
                return self._payout(event)
            content = content_of(event.event_name, event.body)
            if content.mandate is not None:
                target = MANDATE_EVENTS[event.event_name]
                return self._mandate(event, content.mandate, target, "content.mandate")
            if content.order is not None:
                succeeded = event.event_name == "ORDER_SUCCEEDED"
                return self._order(event, content.order, succeeded=succeeded)
            if content.notification is not None:
                return self._notification(event, content.notification)
        except UnusableEventError as exc:
            return Handled(POISONED, str(exc))
        return Handled(IGNORED, f"{event.event_name} is not an event billing acts on")

    # -- handlers ------------------------------------------------------------------------------

    def _mandate(
        self, event: _Claim, info: MandateInfo, target: MandateStatus, prefix: str
    ) -> Handled:
        """Move a known mandate by `apply_status` at the event's time; register a new one."""
        mandate_id = info.mandate_id
        created = not self._known(mandate_id)
        if created:
            problem = self._register(info, target)
            if problem is not None:
                if not self._known(mandate_id):
                    raise UnusableEventError(f"{prefix}.{problem.field}: {problem.reason}")
                created = False  # registered meanwhile by another event: only move it
        with self.sessions() as session, session.begin():
            mandate = mandate_store.get(session, mandate_id, for_update=True)
            if mandate is None:  # pragma: no cover - registered just above
                raise NotFoundError(f"mandate {mandate_id!r} vanished")
            # Also for one just registered: a repeated status only records the event's time.
            moved = apply_status(
                session, mandate, target, now=self.clock(), calendar=self.calendar,
                source="webhook", event_at=event.event_at,
            )  # fmt: skip
            status = mandate.status
        if created:
            return Handled(PROCESSED, f"mandate {mandate_id} registered {status}")
        if moved:
            return Handled(PROCESSED, f"mandate {mandate_id} {status}")
        return Handled(PROCESSED, f"mandate {mandate_id} stays {status} ({target} not applied)")

    def _known(self, mandate_id: str) -> bool:
        with self.sessions() as session:
            return mandate_store.get(session, mandate_id) is not None

    def _register(self, info: MandateInfo, status: MandateStatus) -> RowError | None:
        """A mandate new to the registry, with the terms Juspay sent (lenient gateway mode);
        the first problem with them, if any.

        A VARIABLE mandate comes without a plan amount: registered, not scheduled (SPEC §2).
        """
        fields: dict[str, object] = {
            "mandate_id": info.mandate_id,
            "customer_id": info.customer_id,
            "frequency": info.frequency,
            "rule_type": info.rule_type,
            "rule_value": info.rule_value,
            "amount_rule": info.amount_rule,
            "max_amount": info.max_amount,
            "currency": info.currency,
            "start_date": info.start_date,
            "end_date": info.end_date,
            "payment_method_type": info.payment_method_type,
            "status": status.value,
        }
        report = import_mandates(
            self.sessions, [(1, fields)], now=self.clock(), calendar=self.calendar,
            source="webhook", from_gateway=True,
        )  # fmt: skip
        return report.errors[0] if report.errors else None

    def _order(self, event: _Claim, order: OrderStatusResult, *, succeeded: bool) -> Handled:
        with self.sessions() as session:
            ours = session.scalar(select(Order.id).where(Order.order_id == order.order_id))
        if ours is not None:  # a debit order: the order_id, amount and date checks are in there
            result = self.debits().settle_from_status(
                order.order_id, order, source="webhook", at=event.event_at
            )
            return Handled(PROCESSED, f"order {order.order_id}: {result}")
        if order.txn_object_type == DEBIT_ORDER:
            return Handled(IGNORED, f"order {order.order_id} is not one of our debit orders")
        if order.mandate is None:
            return Handled(IGNORED, f"order {order.order_id} carries no mandate")
        # A registration: EMANDATE_REGISTER, or a mandate order that is not one of ours.
        status = order.mandate.status
        try:
            if status:
                target = MandateStatus(status.strip().upper())
            else:
                target = MandateStatus.ACTIVE if succeeded else MandateStatus.FAILURE
        except ValueError:
            field = "content.order.mandate.mandate_status"
            raise UnusableEventError(f"{field}: not a mandate status: {status!r}") from None
        return self._mandate(event, order.mandate, target, "content.order.mandate")

    def _notification(self, event: _Claim, notification: NotificationResult) -> Handled:
        reference = notification.object_reference_id
        with self.sessions() as session:
            ours = session.scalar(
                select(Notification.id).where(Notification.reference == reference)
            )
        if ours is not None:  # our PDN (merchant flow)
            result = self.notifications().record(
                reference, notification.status, source="webhook", at=event.event_at
            )
            return Handled(PROCESSED, f"notification {reference}: {result}")
        juspays = f"Juspay's notification {reference}"
        if notification.status != "FAILURE":
            return Handled(PROCESSED, f"{juspays} {notification.status}: nothing to do")
        mandate_id = notification.mandate_id
        if mandate_id is None:
            return Handled(UNMATCHED, f"{juspays} failed but names no mandate: for review")
        matched = self.notifications().juspay_notification_failed(
            mandate_id, amount=notification.amount, txn_date=notification.txn_date
        )
        if matched is None:
            return Handled(
                UNMATCHED,
                f"{juspays} failed, matching no order of mandate {mandate_id} on that day "
                "for that amount: for review",
            )
        return Handled(PROCESSED, f"{juspays} failed: {matched}")

    def _payout(self, event: _Claim) -> Handled:
        if event.event_name.upper() not in PAYOUT_LABELS:
            return Handled(IGNORED, f"payout {event.event_name} is not an event billing acts on")
        apply = payout_handler()
        if apply is None:
            return Handled(IGNORED, "payouts not available")
        try:
            result = apply(self.sessions, decode_body(event.body), now=self.clock())
        except (InvalidField, ArithmeticError) as exc:  # a field the payout service cannot use
            # (ArithmeticError: parse_amount lets Decimal's InvalidOperation out for e.g. 1e17)
            raise UnusableEventError(f"{type(exc).__name__}: {exc}") from None
        # The payouts service answers "ignored: ..." for events about what it does not track.
        return Handled(IGNORED if result.startswith("ignored") else PROCESSED, result)


def is_transient(exc: BaseException) -> bool:
    """A storage error that says nothing about the event: the database locked or busy
    (SQLite `database is locked`), a connection lost or refused (PostgreSQL terminated, down),
    the pool exhausted. Found anywhere in the error's chain (a handler may wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (DisconnectionError, PoolTimeout, OperationalError, InterfaceError)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


PayoutHandler = Callable[..., str]


def payout_handler() -> PayoutHandler | None:
    """`services.payouts.service.apply_payout_event(sessions, event, *, now) -> str` if present.

    Looked up at call time: payouts land in their own issue. Until then payout events are
    stored, acknowledged and IGNORED ("payouts not available"), and can be replayed later.
    """
    try:
        module = importlib.import_module("billing.services.payouts.service")
    except ModuleNotFoundError as exc:
        if exc.name != "billing.services.payouts.service":
            raise
        return None
    handler = getattr(module, "apply_payout_event", None)
    return handler if callable(handler) else None


def process_pending(
    sessions: sessionmaker[Session],
    events: WebhookEvents,
    *,
    now: datetime,
    older_than: timedelta = timedelta(0),
    limit: int = 500,
) -> int:
    """Process unprocessed events synchronously (for `billing tick`); returns how many were.

    A failing event is recorded on its row by `process` (swept again later, POISONED after
    MAX_ATTEMPTS) and does not stop the others.
    """
    done = 0
    for pk in sweep_unprocessed(sessions, now=now, older_than=older_than, limit=limit):
        try:
            events.process(pk)
        except Exception:
            log.warning("webhook event %s failed; it stays RECEIVED", pk, exc_info=True)
            continue
        done += 1
    return done
