"""Payout tasks: beat's selection and the per-item tasks. Each per-item task claims its row
first (services/payouts/attempts.py), so redelivery or two workers never make two attempts."""

from __future__ import annotations

import logging

from billing.services.payouts.service import claim_due_payouts
from billing.tasks.beat import fan_out
from billing.tasks.summary import Summary
from billing.tasks.worker import app, container
from billing.telemetry import logs

log = logging.getLogger("billing.tasks")


@app.task(name="billing.beat.payouts", acks_late=True, reject_on_worker_lost=True)
def select_due() -> dict[str, int]:
    c = container()
    payouts = c.payouts()
    reclaimed = payouts.attempts.reclaim_stale()
    # Leased and committed before anything is sent: a task never sees a lease not there yet.
    work = claim_due_payouts(
        c.sessions,
        now=c.clock(),
        lease=c.settings.dispatch_lease,
        attempts=payouts.policy.attempts_disabled is None,
    )
    sent = {
        "attempts": fan_out("billing.payouts.attempt", work.attempts),
        "refreshes": fan_out("billing.payouts.refresh", work.refreshes),
        "reclaimed": reclaimed,
    }
    log.info("payouts dispatched %s", sent)
    return sent


@app.task(name="billing.payouts.attempt", acks_late=True, reject_on_worker_lost=True)
def attempt(fulfillment_ids: list[str]) -> dict[str, int]:
    payouts = container().payouts()
    summary = Summary("billing.payouts.attempt")
    for fulfillment_id in fulfillment_ids:
        with logs.bound(fulfillment_id=str(fulfillment_id)):
            result = payouts.attempt(str(fulfillment_id))
            log.info("payout %s: %s", fulfillment_id, result)
        summary.add(result)
    return summary.done()


@app.task(name="billing.payouts.refresh", acks_late=True, reject_on_worker_lost=True)
def refresh(order_ids: list[str]) -> dict[str, int]:
    payouts = container().payouts()
    summary = Summary("billing.payouts.refresh")
    for order_id in order_ids:
        with logs.bound(payout_order_id=str(order_id)):
            result = payouts.refresh(str(order_id))
            log.info("payout order %s: %s", order_id, result)
        summary.add(result)
    return summary.done()
