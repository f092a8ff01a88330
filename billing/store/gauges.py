"""The gauges read from the database when /metrics is scraped: what is waiting, and how long.

Each query is index-driven (debits: state, due_at; webhook_events: state, received_at;
payout_attempts: state, created_at), so a scrape costs a few ms whatever the tables' size,
except the per-state totals, which are a count per state (cheap on PostgreSQL for tables of a
few million rows; scrape every 15-60 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.domain.debit import FINAL_DEBIT_STATES, DebitState
from billing.domain.payout import AttemptAnswer
from billing.store.models import Debit, PayoutAttempt, WebhookEvent

Row = tuple[str, str, dict[str, str], float]
WAITING = [s.value for s in DebitState if s not in FINAL_DEBIT_STATES]
# Every known state is reported, 0 when empty: a state that empties shows 0, not a gap.
WEBHOOK_STATES = ("RECEIVED", "PROCESSED", "IGNORED", "POISONED", "UNMATCHED")


def _by_state(session: Session, column: Any, known: Iterable[str]) -> dict[str, float]:
    counts = dict.fromkeys(known, 0.0)
    for state, n in session.execute(select(column, func.count()).group_by(column)):
        counts[str(state)] = float(n)
    return counts


def read(session: Session, now: datetime) -> Iterator[Row]:
    count, oldest = session.execute(
        select(func.count(), func.min(Debit.due_at)).where(
            Debit.state.in_(WAITING), Debit.due_at <= now
        )
    ).one()
    yield "billing_due_debits", "Debits whose due time has come (not final)", {}, float(count)
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    yield (
        "billing_oldest_due_debit_age_seconds",
        "How long the oldest due debit has waited past its due time",
        {},
        max(age, 0.0),
    )
    for state, n in _by_state(session, Debit.state, DebitState).items():
        yield "billing_debit_states", "Debits by state", {"state": state}, n
    for state, n in _by_state(session, WebhookEvent.state, WEBHOOK_STATES).items():
        yield "billing_webhook_events", "Stored webhook events by state", {"state": state}, n
    for state, n in _by_state(session, PayoutAttempt.state, AttemptAnswer).items():
        yield "billing_payout_attempts", "Payout attempts by state", {"state": state}, n
