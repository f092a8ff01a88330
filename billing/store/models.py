"""The schema: typed SQLAlchemy 2 models for everything SPEC names.

Idempotency lives in unique constraints, not in code paths that could race:
- one mandate per `mandate_id`;
- one debit per (mandate, cycle)                      SPEC §5 (the cycle number names its
  orders and is never reused; which period a debit collects is `period_first_day` /
  `period_last_day`, kept by planning: one live debit per period, see services/debits/planning)
- one order per `order_id`, one per (debit, try)       SPEC §5
- one notification per `reference` (object_reference_id)
- one stored webhook per event id and kind            SPEC §7
- one payout order per `order_id`, one fulfillment per id, one attempt per (fulfillment, n),
  one transaction per (fulfillment, transactionRef)   SPEC §8

States are stored as the domain's enum strings (Juspay's own where Juspay has them) in plain
VARCHAR columns: adding a state must not need an ALTER TYPE on a billing table at 2 a.m.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from billing.store.types import Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL (millions of debits a month add up); INTEGER on SQLite, whose rowid
# alias only works for the exact type INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Mandate(Base):
    """A customer's standing permission and its terms (SPEC §2)."""

    __tablename__ = "mandates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mandate_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(String(128), index=True)
    frequency: Mapped[str] = mapped_column(String(16))
    rule_type: Mapped[str | None] = mapped_column(String(8))
    rule_value: Mapped[int | None] = mapped_column(SmallInteger)
    amount_rule: Mapped[str] = mapped_column(String(8))
    max_amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    payment_method_type: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10))
    # Event time of the status we hold: an older webhook must not move it back (SPEC §7).
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when Juspay refused a debit for a reason about the mandate and its status could not
    # be read: the mandate's debits are held (not sent) until a sync from Juspay succeeds.
    hold_reason: Mapped[str | None] = mapped_column(String(255))
    # What the merchant debits per cycle; None for a VARIABLE mandate not yet given one.
    plan_amount: Mapped[Decimal | None] = mapped_column(Money)
    # Planning cursor: the next cycle not yet planned and the instant it becomes plannable.
    # Planning selects on (status, next_cycle_at) through the index below, so its cost follows
    # the debits it creates, not the size of the registry.
    next_cycle: Mapped[int | None] = mapped_column(Integer)
    next_cycle_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "status", "next_cycle_at"),)


class MandateChange(Base):
    """Append-only record of what changed on a mandate, when, and from which source."""

    __tablename__ = "mandate_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mandate_pk: Mapped[int] = mapped_column(ForeignKey("mandates.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))  # created, terms, status, plan_amount
    source: Mapped[str] = mapped_column(String(24))  # import, cli, webhook, sync, gateway
    detail: Mapped[str] = mapped_column(Text)  # JSON: {"field": [old, new], ...}


def _window(column: str) -> Callable[[Any], date]:
    """A debit written without its period (a presented one, a row made by hand): its window."""

    def default(context: Any) -> date:
        value: date = context.get_current_parameters()[column]
        return value

    return default


class Debit(Base):
    """The attempt to collect one cycle of one mandate; may take several orders (SPEC §5)."""

    __tablename__ = "debits"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mandate_pk: Mapped[int] = mapped_column(ForeignKey("mandates.id"))
    cycle: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    flow: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    # The billing period this debit collects (calendar days, mandate zone): its identity, which
    # no change of terms re-numbers. A presented debit's period is its day.
    period_first_day: Mapped[date] = mapped_column(Date, default=_window("window_first_day"))
    period_last_day: Mapped[date] = mapped_column(Date, default=_window("window_last_day"))
    window_first_day: Mapped[date] = mapped_column(Date)
    window_last_day: Mapped[date] = mapped_column(Date)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when a change of the mandate's terms ended this debit before any order of it was
    # recorded: its period no longer counts as taken and is planned again under the new terms.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the next step of this debit is due (PDN, execution, retry); swept by beat.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    # Set when a worker claims the row; a claim older than the stale timeout is reconciled.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when beat enqueued a task for the row: a doubled beat does not enqueue it again
    # within the lease, and a lost task is enqueued again after it.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    mandate: Mapped[Mandate] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint("mandate_pk", "cycle"),
        Index(None, "state", "due_at"),
        Index(None, "mandate_pk", "period_last_day"),
    )


class DebitHistory(Base):
    """Append-only: every state change of a debit with its time and cause."""

    __tablename__ = "debit_history"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    debit_id: Mapped[int] = mapped_column(ForeignKey("debits.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str] = mapped_column(String(255))
    order_id: Mapped[str | None] = mapped_column(String(20))


class Order(Base):
    """One Juspay order = one mandate-execution call. Written and committed before it is sent."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(20), unique=True)
    debit_id: Mapped[int] = mapped_column(ForeignKey("debits.id"))
    try_number: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    # Our side: RECORDED (not yet known to have reached Juspay), SENT, SETTLED, NOT_FOUND.
    state: Mapped[str] = mapped_column(String(10))
    # Juspay's side, as last read: `order.status` is the one authority (SPEC §6).
    gateway_status: Mapped[str | None] = mapped_column(String(24))
    gateway_status_id: Mapped[int | None] = mapped_column(Integer)
    txn_id: Mapped[str | None] = mapped_column(String(64))
    txn_uuid: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(255))
    # When its status was last learned (a poll, an answer, an event's date): news of the order
    # dated before it is stale and moves nothing (SPEC §7, per order).
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    notification_id: Mapped[str | None] = mapped_column(String(25))
    execution_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("debit_id", "try_number"),)


class Notification(Base):
    """A pre-debit notification we sent (merchant flow) or learnt of (SPEC §4)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reference: Mapped[str] = mapped_column(String(25), unique=True)
    mandate_pk: Mapped[int] = mapped_column(ForeignKey("mandates.id"), index=True)
    debit_id: Mapped[int | None] = mapped_column(ForeignKey("debits.id"), index=True)
    juspay_id: Mapped[str | None] = mapped_column(String(64))
    # RECORDED before sending, then Juspay's CREATED / PENDING / SUCCESS / FAILURE; ABANDONED
    # when it stalled past the day it announced and a new PDN replaced it.
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Money)
    txn_date: Mapped[datetime] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """A received webhook, stored raw and committed before we answer 200 (SPEC §7)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "ec" or "payout"
    event_id: Mapped[str] = mapped_column(String(128))
    event_name: Mapped[str] = mapped_column(String(64))
    event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)
    # One of RECEIVED, PROCESSED, IGNORED, POISONED, UNMATCHED (about something we cannot
    # match exactly, e.g. Juspay's PDN failing for no pending order's day: for review).
    state: Mapped[str] = mapped_column(String(10))
    # Claims of the event (also its row version); `failures` counts only the errors of its
    # content or handler (a transient storage error does not count): POISONED at MAX_ATTEMPTS.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255))
    # What processing did ("mandate m1 ACTIVE", "ignored: unknown debit order"), for support.
    outcome: Mapped[str | None] = mapped_column(String(255))
    # Set when processing was enqueued (receiver, sweeper): the sweeper's lease.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set while a worker processes the event: a redelivered task does not process it twice.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("kind", "event_id"), Index(None, "state", "received_at"))


class PayoutOrder(Base):
    """A Juspay payout order we track for PLAIN_CARD retries (SPEC §8)."""

    __tablename__ = "payout_orders"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(String(128), index=True)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(24))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Polling of an open order (in progress, or an attempt's result to read); swept by beat.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Fulfillment(Base):
    """One leg of a payout order. Card data only as ciphertext; the CVV never (SPEC §8, §13)."""

    __tablename__ = "fulfillments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fulfillment_id: Mapped[str] = mapped_column(String(64), unique=True)
    payout_order_pk: Mapped[int] = mapped_column(ForeignKey("payout_orders.id"), index=True)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    # beneficiaryDetails.type (PLAIN_CARD decides the Attempt API) and the rail it is paid on
    # (the latest transaction's fulfillmentMethod, else the method lists': DUMMY_VISADIRECT).
    beneficiary_type: Mapped[str | None] = mapped_column(String(32))
    rail: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    # The held status's time by Juspay's clock (statusUpdatedAt): orders the evidence.
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(255))
    is_retriable: Mapped[bool | None] = mapped_column(Boolean)
    # additionalInfo.attemptThreshold (minutes): how long an attempt's outcome is waited for.
    attempt_threshold: Mapped[int | None] = mapped_column(Integer)
    # The encrypted card (a compact JWE under BILLING_CARD_DATA_KEY), and what may be shown.
    card_ciphertext: Mapped[str | None] = mapped_column(Text)
    card_kind: Mapped[str | None] = mapped_column(String(8))  # NUMBER or TOKEN
    card_last4: Mapped[str | None] = mapped_column(String(4))
    sender_ciphertext: Mapped[str | None] = mapped_column(Text)
    # The rail wants cardSecurityCode: asked of the CVV provider at attempt time, never stored.
    needs_cvv: Mapped[bool] = mapped_column(Boolean, default=False)
    # One of IDLE, DUE, IN_FLIGHT, WAITING (an attempt's outcome awaited), DONE, STOPPED,
    # HALTED (401), REVIEW (for a person: no outcome within attemptThreshold, or Juspay's).
    attempt_state: Mapped[str] = mapped_column(String(10))
    attempts_made: Mapped[int] = mapped_column(Integer, default=0)
    # BILLING_PAYOUT_MAX_ATTEMPTS when the order was (last) tracked.
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stop_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "attempt_state", "next_attempt_at"),)


class FulfillmentTransaction(Base):
    """A transaction of a fulfillment at its rail, as Juspay lists it (`transactions[]`, a
    FULFILLMENT_TXN webhook); rows in the order we learnt of them, so an attempt's outcome is
    read from the rows added after it (`PayoutAttempt.baseline_txn_pk`)."""

    __tablename__ = "fulfillment_transactions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fulfillment_pk: Mapped[int] = mapped_column(ForeignKey("fulfillments.id"))
    ref: Mapped[str] = mapped_column(String(64))  # transactionRef
    status: Mapped[str] = mapped_column(String(24))
    rail: Mapped[str | None] = mapped_column(String(64))
    response_code: Mapped[str | None] = mapped_column(String(64))
    response_message: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    # Juspay's createdAt / updatedAt (its clock), and when we learnt of it (ours).
    juspay_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    juspay_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    learnt_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("fulfillment_pk", "ref"),)


class PayoutAttempt(Base):
    """One call of the Attempt API: recorded before it is sent, answered ACK or an error code."""

    __tablename__ = "payout_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fulfillment_pk: Mapped[int] = mapped_column(ForeignKey("fulfillments.id"))
    number: Mapped[int] = mapped_column(Integer)
    # One of SENDING, ACK, REJECTED, UNKNOWN, UNSENT, NOT_MADE (domain.payout.AttemptAnswer).
    state: Mapped[str] = mapped_column(String(10))
    # Whether it used up one of the fulfillment's attempts (UNSENT, NOT_MADE and 401 do not).
    counted: Mapped[bool] = mapped_column(Boolean, default=True)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(255))
    # What followed: SUCCESS / FAILURE, or NOT_LANDED when an operator says so (resume).
    outcome: Mapped[str | None] = mapped_column(String(24))
    # What was known when it was sent: the newest transaction row (none: 0) and the status time;
    # only evidence past these says what became of this attempt (domain.payout).
    baseline_txn_pk: Mapped[int] = mapped_column(Id, default=0)
    baseline_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("fulfillment_pk", "number"),
        Index(None, "state", "created_at"),
    )


class Heartbeat(Base):
    """The last sign of life of a process role: beat's last dispatch (`beat.dispatch`), a
    worker's answer to `billing status` on a queue (`worker:gateway`). One row per name,
    overwritten; `billing status` reads them to tell a stopped beat or worker."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[str | None] = mapped_column(String(255))
