"""Processing stored webhook events, and the beat sweep that re-enqueues forgotten ones.

The receiver enqueues `billing.webhooks.process` after it commits an event; the task claims the
event first, so a redelivery, a doubled sweep or a replay never applies it twice.
"""

from __future__ import annotations

import logging

from billing.services.webhook_events import sweep_unprocessed
from billing.tasks.summary import Summary
from billing.tasks.worker import app, container
from billing.telemetry import logs

log = logging.getLogger("billing.tasks")

PROCESS = "billing.webhooks.process"


@app.task(name=PROCESS, acks_late=True, reject_on_worker_lost=True)
def process(event_ids: list[int]) -> dict[str, int]:
    events = container().webhook_events()
    summary = Summary(PROCESS)
    for event_id in event_ids:
        with logs.bound(webhook_event=int(event_id)):
            result = events.process(int(event_id))
            log.info("webhook event %s: %s", event_id, result)
        summary.add(result)
    return summary.done()


@app.task(name="billing.beat.webhooks", acks_late=True, reject_on_worker_lost=True)
def sweep() -> dict[str, int]:
    c = container()
    # Leased and committed before anything is sent (the sweeper's `dispatched_at`).
    ids = sweep_unprocessed(c.sessions, now=c.clock())
    for event_id in ids:  # one per message: a poisonous event holds up no other
        app.send_task(PROCESS, args=[[event_id]])
    if ids:
        log.warning("re-enqueued %s webhook events left unprocessed", len(ids))
    return {"re-enqueued": len(ids)}
