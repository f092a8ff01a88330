"""One full scheduling pass, synchronously: what beat and the workers do, in one process.

For operations (catch-up after an outage: `billing tick`), for the demo and for tests. The
same services and the same guarded claims run here as in the Celery tasks, so a tick can
run beside live workers without doubling anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from billing.services.debits.dispatch import claim_due_work, reclaim_stale
from billing.services.debits.execution import Debits
from billing.services.debits.notifications import Notifications
from billing.services.debits.orders import Orders
from billing.services.debits.planning import plan_debits
from billing.services.mandates.registry import expire_ended


@dataclass
class TickReport:
    planned: int = 0
    expired: int = 0
    reclaimed: int = 0
    rounds: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    extra: dict[str, int] = field(default_factory=dict)


def run_tick(
    sessions: sessionmaker[Session],
    *,
    debits: Debits,
    orders: Orders,
    notifications: Notifications,
    now: datetime,
    max_rounds: int = 20,
    batch: int = 100,
    also: dict[str, Callable[[], int]] | None = None,
) -> TickReport:
    """Plan, expire, reclaim, then send / execute / check everything due, until nothing is."""
    policy = debits.policy
    report = TickReport()
    report.expired = expire_ended(sessions, now=now, calendar=policy.planning.calendar)
    report.planned = plan_debits(sessions, policy.planning, now=now).debits_created
    report.reclaimed = reclaim_stale(sessions, now=now, stale_after=policy.stale_claim_after)
    for _ in range(max_rounds):
        work = claim_due_work(sessions, now=now)
        if not work:
            break
        report.rounds += 1
        for debit_id in work.notifications:
            report.steps["pdn: " + notifications.send(debit_id)] += 1
        for start in range(0, len(work.executions), batch):
            done = debits.execute_many(work.executions[start : start + batch])
            report.steps.update("execute: " + result for result in done.values())
        for order_id in work.order_checks:
            report.steps["check: " + orders.check(order_id)] += 1
        for reference in work.notification_checks:
            report.steps["pdn check: " + notifications.check(reference)] += 1
    for name, step in (also or {}).items():
        report.extra[name] = step()
    return report
