"""Per-item tasks of the debit lifecycle. Each claims its row first, so redelivery, a doubled
beat or two workers on the same id do nothing twice. Each item is logged in its own scope
(telemetry/logs.py), so its lines carry its ids; each task returns its outcomes (summary.py)."""

from __future__ import annotations

import logging

from billing.tasks.summary import Summary
from billing.tasks.worker import app, container
from billing.telemetry import logs

log = logging.getLogger("billing.tasks")
EXECUTE = "billing.debits.execute"
CHECK_ORDERS = "billing.orders.check"
SEND_PDNS = "billing.notifications.send"
CHECK_PDNS = "billing.notifications.check"


@app.task(name=EXECUTE, acks_late=True, reject_on_worker_lost=True)
def execute(debit_ids: list[int]) -> dict[str, int]:
    # One line per batch: each debit's story is in its history (`billing debits show`).
    done = container().debits().execute_many([int(i) for i in debit_ids])
    summary = Summary(EXECUTE)
    for result in done.values():
        summary.add(result)
    log.info("executed %s debits: %s", len(done), summary.counts)
    return summary.done()


@app.task(name=CHECK_ORDERS, acks_late=True, reject_on_worker_lost=True)
def check_orders(order_ids: list[str]) -> dict[str, int]:
    orders = container().orders()
    summary = Summary(CHECK_ORDERS)
    for order_id in order_ids:
        with logs.bound(order_id=str(order_id)):
            result = orders.check(str(order_id))
            log.info("order %s: %s", order_id, result)
        summary.add(result)
    return summary.done()


@app.task(name=SEND_PDNS, acks_late=True, reject_on_worker_lost=True)
def send_notifications(debit_ids: list[int]) -> dict[str, int]:
    notifications = container().notifications()
    summary = Summary(SEND_PDNS)
    for debit_id in debit_ids:
        with logs.bound(debit_id=int(debit_id)):
            result = notifications.send(int(debit_id))
            log.info("debit %s PDN: %s", debit_id, result)
        summary.add(result)
    return summary.done()


@app.task(name=CHECK_PDNS, acks_late=True, reject_on_worker_lost=True)
def check_notifications(references: list[str]) -> dict[str, int]:
    notifications = container().notifications()
    summary = Summary(CHECK_PDNS)
    for reference in references:
        with logs.bound(notification=str(reference)):
            result = notifications.check(str(reference))
            log.info("PDN %s: %s", reference, result)
        summary.add(result)
    return summary.done()
