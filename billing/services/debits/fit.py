"""A debit against its mandate's terms as they are now, checked before any call about it (an
execution, a pre-debit notification): one planned under old terms never goes out as planned.

The pure rule is `misfit_of` (amount, period and window, dates, flow); this applies its verdict
inside the caller's claim transaction: with no order yet the debit is CANCELLED and its period
planned again under the new terms, else SKIPPED with the reason; either way the mandate's change
log says what became of it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from billing.domain.debit import DebitState
from billing.domain.mandate import MandateStatus
from billing.services.debits.planning import PlanningPolicy
from billing.services.mandates.registry import planning_cursor, terms_of
from billing.services.mandates.terms import misfit_of, supersede
from billing.store import debits as store
from billing.store import mandates as mandate_store
from billing.store.models import Debit, Mandate

log = logging.getLogger("billing.debits")


def check_terms(
    session: Session,
    debit: Debit,
    mandate: Mandate,
    state: DebitState,
    now: datetime,
    planning: PlanningPolicy,
    *,
    call: str,
) -> str | None:
    """None when the debit fits its mandate's current terms; else what was done instead.

    `call` names what was about to go out ("sending", "notifying"), for the history."""
    terms = terms_of(mandate)
    flow_now = planning.flow_for(mandate.payment_method_type).value
    reason = misfit_of(debit, terms, calendar=planning.calendar, flow_now=flow_now)
    if reason is None:
        return None
    log.warning("debit %s not %s: %s", debit.id, call, reason)
    source = f"checked before {call}"
    if debit.tries == 0:
        if not supersede(session, debit, state, reason, source=source, at=now):
            return "changed meanwhile"
        outcome = f"CANCELLED: {reason}; planned again under the new terms"
        mandate.next_cycle, mandate.next_cycle_at = planning_cursor(
            terms, MandateStatus(mandate.status), mandate.plan_amount, now=now,
            calendar=planning.calendar,
        )  # fmt: skip
        mandate.updated_at = now
    else:  # an order of it went out: its period stays its own, the debit ends here
        cause = f"no longer fits the mandate's terms: {reason}"
        if not store.move(session, debit.id, expected=state, target=DebitState.SKIPPED, at=now,
                          cause=cause, values={"due_at": None}):  # fmt: skip
            return "changed meanwhile"
        outcome = f"SKIPPED: {reason}"
    detail = {"open_debits": [{"debit": debit.id, "cycle": debit.cycle, "state": state.value,
                               "outcome": outcome}]}  # fmt: skip
    mandate_store.record_changes(session, [(mandate.id, "terms", source, detail)], at=now)
    return f"not {'sent' if call == 'sending' else 'notified'}: {outcome}"
