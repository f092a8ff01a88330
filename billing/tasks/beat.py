"""Beat's tasks: select due ids and fan them out in small batches; never the work itself."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from billing.services.debits.dispatch import claim_due_work, reclaim_stale
from billing.services.debits.planning import plan_debits
from billing.services.health import BEAT_DISPATCH, record_heartbeat
from billing.services.mandates.registry import expire_ended
from billing.tasks.embedded_broker import delete_delivered_messages
from billing.tasks.health import waiting_in
from billing.tasks.worker import GATEWAY_QUEUE, app, container

log = logging.getLogger("billing.tasks")

BATCH = 10  # ids per message: fewer messages in a surge, little lost if a worker dies
ROUND = 5_000  # ids of each kind leased per selection; a pass selects until none are left


def fan_out(task_name: str, ids: Sequence[object], batch: int = BATCH) -> int:
    """Send `ids` to `task_name`, `batch` ids per message; returns how many ids were sent."""
    for start in range(0, len(ids), batch):
        app.send_task(task_name, args=[list(ids[start : start + batch])])
    return len(ids)


def queued_messages(queue: str) -> int:
    """Messages waiting in `queue` (any kombu broker)."""
    with app.connection_for_read() as connection:
        return waiting_in(connection, queue) or 0


@app.task(name="billing.beat.dispatch", acks_late=True, reject_on_worker_lost=True)
def dispatch() -> dict[str, int]:
    """Lease and fan out everything due, round after round, while the gateway queue holds
    fewer than `BILLING_DISPATCH_MAX_QUEUED` ids: a surge is leased over a few passes, and no
    lease expires while its message still waits (it would be enqueued twice)."""
    c = container()
    batch = c.settings.execution_batch
    room = c.settings.dispatch_max_queued - queued_messages(GATEWAY_QUEUE) * batch
    sent: Counter[str] = Counter()
    while room > 0:
        limit = min(ROUND, room)
        # Committed before anything is sent: a task never sees a lease that is not there yet.
        work = claim_due_work(c.sessions, now=c.clock(), lease=c.settings.dispatch_lease,
                              limit=limit)  # fmt: skip
        kinds = {
            "executions": fan_out("billing.debits.execute", work.executions, batch),
            "pdns": fan_out("billing.notifications.send", work.notifications),
            "order checks": fan_out("billing.orders.check", work.order_checks),
            "pdn checks": fan_out("billing.notifications.check", work.notification_checks),
        }
        sent.update(kinds)
        room -= sum(kinds.values())
        if max(kinds.values()) < limit:
            break
    log.info("dispatched %s", dict(sent))
    # Beat's sign of life for `billing status`: this dispatch was sent, taken and done.
    record_heartbeat(c.sessions, BEAT_DISPATCH, at=c.clock(), detail=str(dict(sent)))
    return dict(sent)


@app.task(name="billing.beat.plan", acks_late=True, reject_on_worker_lost=True)
def plan() -> dict[str, int]:
    c = container()
    report = plan_debits(c.sessions, c.planning, now=c.clock())
    log.info("planned %s debits (%s mandates)", report.debits_created, report.mandates_examined)
    return {"planned": report.debits_created, "mandates examined": report.mandates_examined}


@app.task(name="billing.beat.reclaim", acks_late=True, reject_on_worker_lost=True)
def reclaim() -> dict[str, int]:
    c = container()
    count = reclaim_stale(c.sessions, now=c.clock(), stale_after=c.debit_policy.stale_claim_after)
    if count:
        log.warning("reclaimed %s debits left EXECUTING", count)
    return {"reclaimed": count}


@app.task(name="billing.beat.expire", acks_late=True, reject_on_worker_lost=True)
def expire() -> dict[str, int]:
    c = container()
    count = expire_ended(c.sessions, now=c.clock(), calendar=c.calendar)
    log.info("expired %s mandates", count)
    return {"expired": count}


@app.task(name="billing.beat.broker", acks_late=True, reject_on_worker_lost=True)
def clean_embedded_broker() -> dict[str, int]:
    deleted = delete_delivered_messages(app.conf.broker_url or "")
    if deleted:
        log.info("deleted %s delivered messages from the embedded broker", deleted)
    return {"deleted": deleted}
