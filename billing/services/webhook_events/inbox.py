"""The stored events as a table: store once per id, sweep the forgotten, find and list them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from billing.services import NotFoundError, ServiceError
from billing.store.db import is_postgres
from billing.store.models import WebhookEvent

log = logging.getLogger("billing.webhooks")

RECEIVED, PROCESSED, IGNORED, POISONED = "RECEIVED", "PROCESSED", "IGNORED", "POISONED"
# About a record we cannot match exactly (Juspay's PDN failing for no pending order's day and
# amount): nothing was changed; kept for a person to look at (`billing webhooks list`).
UNMATCHED = "UNMATCHED"
CLAIM_LEASE = timedelta(minutes=5)  # a worker holds a claimed event this long (task limit: 300 s)
SWEEP_AFTER = timedelta(minutes=2)  # an enqueued event still RECEIVED this long is enqueued again


# One Core INSERT ... RETURNING, built once: no ORM unit of work or statement build per webhook.
_STORE = insert(WebhookEvent).returning(WebhookEvent.id)


@dataclass(frozen=True, slots=True)
class Stored:
    pk: int
    duplicate: bool  # the (kind, id) was stored before: nothing was written
    state: str


def store_event(
    sessions: sessionmaker[Session],
    *,
    kind: str,
    event_id: str,
    event_name: str,
    event_at: datetime | None,
    body: str,
    now: datetime,
) -> Stored:
    """Store a received event once per (kind, id), committed when this returns.

    A repeated id writes nothing and is reported as a duplicate (with the first copy's state),
    also when two deliveries race: the unique constraint decides, not a prior SELECT.
    """
    engine = sessions.kw.get("bind")
    if not isinstance(engine, Engine):
        raise TypeError("store_event needs a session factory bound to an engine")
    try:
        # A Core connection, not a Session: one webhook is one INSERT, and a Session's set-up
        # was a tenth of the receiver's CPU per event (bench/webhook_ingestion.py, py-spy).
        with engine.begin() as connection:
            pk = connection.execute(
                _STORE,
                {
                    "kind": kind,
                    "event_id": event_id,
                    "event_name": event_name,
                    "event_at": event_at,
                    "body": body,
                    "state": RECEIVED,
                    "attempts": 0,
                    "failures": 0,
                    "received_at": now,
                    "dispatched_at": now,  # the receiver enqueues it right after the commit
                },
            ).scalar_one()
            return Stored(pk, duplicate=False, state=RECEIVED)
    except IntegrityError:
        with sessions() as session:
            first = session.scalars(
                select(WebhookEvent).where(
                    WebhookEvent.kind == kind, WebhookEvent.event_id == event_id
                )
            ).one_or_none()
        if first is None:
            raise
        if first.body != body:
            log.warning(
                "webhook %s %s repeated with another body; the first is kept", kind, event_id
            )
        return Stored(first.id, duplicate=True, state=first.state)


def sweep_unprocessed(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    older_than: timedelta = SWEEP_AFTER,
    limit: int = 500,
    claim_lease: timedelta = CLAIM_LEASE,
) -> list[int]:
    """Ids of RECEIVED events enqueued more than `older_than` ago and not being processed.

    `dispatched_at` is the lease: each id returned is marked dispatched now (committed), so two
    sweepers, or the next sweep while the queue is busy, do not enqueue it again within
    `older_than`. A failed event is swept again after it; POISONED ones never are.
    """
    with sessions() as session, session.begin():
        statement = (
            select(WebhookEvent.id)
            .where(
                WebhookEvent.state == RECEIVED,
                or_(
                    WebhookEvent.dispatched_at.is_(None),
                    WebhookEvent.dispatched_at <= now - older_than,
                ),
                or_(
                    WebhookEvent.claimed_at.is_(None),
                    WebhookEvent.claimed_at <= now - claim_lease,
                ),
            )
            .order_by(WebhookEvent.received_at)
            .limit(limit)
        )
        if is_postgres(session.get_bind()):
            statement = statement.with_for_update(skip_locked=True)
        ids = list(session.scalars(statement))
        if ids:
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(ids))
                .values(dispatched_at=now)
                .execution_options(synchronize_session=False)
            )
    return ids


def list_events(
    session: Session, *, unprocessed: bool = False, state: str | None = None, limit: int = 100
) -> Sequence[WebhookEvent]:
    """Newest first; `unprocessed` = RECEIVED, POISONED or UNMATCHED (waiting for a person)."""
    statement = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
    if unprocessed:
        statement = statement.where(WebhookEvent.state.in_([RECEIVED, POISONED, UNMATCHED]))
    if state:
        statement = statement.where(WebhookEvent.state == state.upper())
    return session.scalars(statement).all()


def find_event(session: Session, reference: str) -> WebhookEvent:
    """By Juspay's event id (either kind), else by our row id when `reference` is a number."""
    rows = session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == reference)).all()
    if len(rows) > 1:
        raise ServiceError(f"event id {reference!r} is both an EC and a payout event")
    if rows:
        return rows[0]
    as_pk = reference.isascii() and reference.isdigit() and len(reference) < 19
    row = session.get(WebhookEvent, int(reference)) if as_pk else None
    if row is None:
        raise NotFoundError(f"no webhook event {reference!r}")
    return row
