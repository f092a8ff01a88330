"""What `billing status` reads from the database: heartbeats and the backlogs that say work is
not moving (the oldest overdue debit, webhooks waiting, halted payouts).

Beat's liveness is the time of its last dispatch, recorded in the database by the dispatch task
(`beat.dispatch`): the database is the one store every transport (Redis, RabbitMQ, the SQL
broker) shares with `billing status`, and the row says beat sent AND a worker ran it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from billing.services.debits.planning import NOT_YET_SENT
from billing.services.payouts.service import payout_halt
from billing.services.webhook_events.inbox import POISONED, RECEIVED
from billing.store import heartbeats
from billing.store.debits import counts_by_state
from billing.store.models import Debit, WebhookEvent

BEAT_DISPATCH = "beat.dispatch"
# Beat sends due work every 15 s and re-sends a lost task after the 5 min lease; work waiting
# longer than this is stuck (no worker on its queue, a worker wedged), not merely queued.
STUCK_AFTER = timedelta(minutes=15)


def record_heartbeat(
    sessions: sessionmaker[Session], name: str, *, at: datetime, detail: str | None = None
) -> None:
    with sessions() as session, session.begin():
        heartbeats.record(session, name, at=at, detail=detail)


def last_heartbeat(sessions: sessionmaker[Session], name: str) -> tuple[datetime, str | None]:
    """(when, detail) of the last heartbeat called `name`; LookupError if there is none."""
    with sessions() as session:
        row = heartbeats.read(session, name)
    if row is None:
        raise LookupError(name)
    return row.at, row.detail


@dataclass
class Backlog:
    debits: dict[str, int] = field(default_factory=dict)  # by state
    overdue: int = 0  # not yet sent and due
    oldest_overdue: tuple[int, datetime] | None = None  # (debit id, due_at)
    webhooks_waiting: int = 0  # RECEIVED: stored, not yet processed
    oldest_webhook: datetime | None = None
    webhooks_poisoned: int = 0  # given up on: for a person (`billing webhooks list`)
    payout_halt: str | None = None


def backlog(sessions: sessionmaker[Session], *, now: datetime) -> Backlog:
    report = Backlog()
    with sessions() as session:
        report.debits = counts_by_state(session)
        due = (Debit.due_at <= now, Debit.state.in_(NOT_YET_SENT))
        report.overdue = int(session.scalar(select(func.count()).where(*due)) or 0)
        oldest = session.execute(
            select(Debit.id, Debit.due_at).where(*due).order_by(Debit.due_at).limit(1)
        ).first()
        if oldest is not None and oldest.due_at is not None:
            report.oldest_overdue = (int(oldest.id), oldest.due_at)
        waiting = session.execute(
            select(func.count(), func.min(WebhookEvent.received_at)).where(
                WebhookEvent.state == RECEIVED
            )
        ).one()
        report.webhooks_waiting, report.oldest_webhook = int(waiting[0]), waiting[1]
        report.webhooks_poisoned = int(
            session.scalar(select(func.count()).where(WebhookEvent.state == POISONED)) or 0
        )
    report.payout_halt = payout_halt(sessions)
    return report
