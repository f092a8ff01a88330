"""Per-item tasks of the debit lifecycle. Each claims its row first, so redelivery, a doubled
beat or two workers on the same id do nothing twice."""

from __future__ import annotations

import logging
from collections import Counter

from billing.tasks.worker import app, container

log = logging.getLogger("billing.tasks")


@app.task(name="billing.debits.execute", acks_late=True, reject_on_worker_lost=True)
def execute(debit_ids: list[int]) -> None:
    # One line per batch: each debit's story is in its history (`billing debits show`).
    done = container().debits().execute_many([int(i) for i in debit_ids])
    log.info("executed %s debits: %s", len(done), dict(Counter(done.values())))


@app.task(name="billing.orders.check", acks_late=True, reject_on_worker_lost=True)
def check_orders(order_ids: list[str]) -> None:
    orders = container().orders()
    for order_id in order_ids:
        log.info("order %s: %s", order_id, orders.check(str(order_id)))


@app.task(name="billing.notifications.send", acks_late=True, reject_on_worker_lost=True)
def send_notifications(debit_ids: list[int]) -> None:
    notifications = container().notifications()
    for debit_id in debit_ids:
        log.info("debit %s PDN: %s", debit_id, notifications.send(int(debit_id)))


@app.task(name="billing.notifications.check", acks_late=True, reject_on_worker_lost=True)
def check_notifications(references: list[str]) -> None:
    notifications = container().notifications()
    for reference in references:
        log.info("PDN %s: %s", reference, notifications.check(str(reference)))
