"""What a change of a mandate's terms does to its open debits (SPEC §2, §5).

A debit is planned under the terms of its day: its amount, its period and window, its flow.
When the terms change (a corrected import, a sync from Juspay), each open debit is checked
against the new terms (`domain.sending.terms_misfit`):

- no order of it recorded yet (PLANNED, NOTIFYING, NOTIFIED) and it still fits: kept as it is;
- no order yet and it no longer fits: CANCELLED with the reason and marked superseded, so its
  period is free and planning plans it again under the new terms (its cycle number is never
  reused: its order ids stay its own);
- an order of it recorded (in flight, or a retry scheduled): left to settle and reconcile; the
  same check runs before its next try (`Debits.checks_before_sending`).

Each outcome is written into the mandate's "terms" change, so `billing mandates show` says
what became of every open debit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.calendar import Period
from billing.domain.mandate import Terms
from billing.domain.schedule import DebitCalendar
from billing.domain.sending import terms_misfit
from billing.store import debits as debit_store
from billing.store.models import Debit

# Open and without any order: such a debit may be ended by a change of terms.
NOTHING_SENT = ("PLANNED", "NOTIFYING", "NOTIFIED")
FINAL_STATES = ("CHARGED", "FAILED", "SKIPPED", "CANCELLED", "MANUAL_REVIEW")


def misfit_of(
    debit: Debit, terms: Terms, *, calendar: DebitCalendar, flow_now: str | None = None
) -> str | None:
    """Why `debit` no longer fits `terms` (None: it fits)."""
    return terms_misfit(
        terms,
        amount=debit.amount,
        period=Period(debit.period_first_day, debit.period_last_day),
        window=Period(debit.window_first_day, debit.window_last_day),
        flow=debit.flow,
        flow_now=flow_now,
        calendar=calendar,
    )


def supersede(
    session: Session, debit: Debit, state: str, reason: str, *, source: str, at: datetime
) -> bool:
    """End a debit with no order that no longer fits its mandate's terms; its period is freed
    for planning under the new terms. False when the debit moved meanwhile."""
    return debit_store.move(
        session,
        debit.id,
        expected=state,
        target="CANCELLED",
        at=at,
        cause=f"terms changed ({source}): {reason}; its period is planned again",
        values={"due_at": None, "superseded_at": at, "last_error": reason[:255]},
    )


def open_debits_after_terms_change(
    session: Session,
    mandate_pk: int,
    terms: Terms,
    *,
    source: str,
    at: datetime,
    calendar: DebitCalendar,
) -> list[dict[str, Any]]:
    """Check each open debit of a mandate whose terms just changed; return what became of each."""
    outcomes: list[dict[str, Any]] = []
    rows = session.scalars(
        select(Debit)
        .where(Debit.mandate_pk == mandate_pk, Debit.state.not_in(FINAL_STATES))
        .order_by(Debit.planned_at)
    ).all()
    for debit in rows:
        seen = {"debit": debit.id, "cycle": debit.cycle, "state": debit.state}
        if debit.state not in NOTHING_SENT or debit.tries > 0:
            outcome = "left to settle: an order of it is recorded; checked before any next try"
        else:
            reason = misfit_of(debit, terms, calendar=calendar)
            if reason is None:
                outcome = "kept: fits the new terms"
            elif supersede(session, debit, debit.state, reason, source=source, at=at):
                outcome = f"CANCELLED: {reason}; planned again under the new terms"
            else:  # pragma: no cover - moved by a worker within this transaction's lock
                outcome = "moved meanwhile: left as it is"
        outcomes.append({**seen, "outcome": outcome})
    return outcomes
