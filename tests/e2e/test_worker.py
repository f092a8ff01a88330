"""A real deployment in miniature: prefork workers, beat, Redis, PostgreSQL, the sandbox.

Each test ends on the sandbox's ledger: every due debit charged, none charged twice.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from celery import Celery
from sqlalchemy import select

from billing.bootstrap import Container
from billing.sandbox.faults import Fault
from billing.store.models import Debit, DebitHistory, Order
from tests.e2e.conftest import Cluster, debit_states, seed_due_debits

pytestmark = pytest.mark.timeout(300)
COUNT = 500


def wait_all_charged(app: Container, cluster: Cluster, count: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        states = debit_states(app)
        if states.get("CHARGED", 0) == count:
            return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{cluster.log(n)[-2000:]}" for n in cluster.procs)
            pytest.fail(f"not all charged in {deadline_s}s: {states}\n{logs}")
        time.sleep(0.25)


def assert_charged_exactly_once(app: Container, cluster: Cluster, count: int) -> None:
    charges = cluster.sandbox.state.charges()
    per_mandate = Counter(c["mandate_id"] for c in charges)
    assert len(charges) == count, f"{len(charges)} ledger charges for {count} debits"
    assert set(per_mandate.values()) == {1}, "a mandate was charged twice"
    with app.sessions() as session:
        orders = session.scalars(select(Order)).all()
        debits = session.scalars(select(Debit)).all()
    assert {c["order_id"] for c in charges} <= {o.order_id for o in orders}
    assert all(d.state == "CHARGED" for d in debits)


def test_500_due_debits_are_all_charged_exactly_once(cluster: Cluster, e2e_app: Container) -> None:
    seed_due_debits(e2e_app, cluster.sandbox, COUNT)
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    wait_all_charged(e2e_app, cluster, COUNT, 120)
    assert_charged_exactly_once(e2e_app, cluster, COUNT)


def test_every_task_twice_and_two_beats_still_charge_each_debit_once(
    cluster: Cluster, e2e_app: Container, sender: Celery
) -> None:
    debit_ids = seed_due_debits(e2e_app, cluster.sandbox, COUNT)
    # Before any worker runs: every debit already has two execution messages waiting, as if
    # two beats had dispatched it, and then two real beats dispatch on top of that.
    for start in range(0, len(debit_ids), 10):
        batch = debit_ids[start : start + 10]
        for _ in range(2):
            sender.send_task("billing.debits.execute", args=[batch], queue="gateway")
    cluster.start_beat("beat-a")
    cluster.start_beat("beat-b")
    cluster.start_worker("worker-a", concurrency=2)
    cluster.start_worker("worker-b", concurrency=2)
    wait_all_charged(e2e_app, cluster, COUNT, 150)
    assert_charged_exactly_once(e2e_app, cluster, COUNT)
    execution_calls = [r for r in cluster.sandbox.state.requests if r["path"] == "/txns"]
    assert len(execution_calls) >= COUNT


def test_workers_killed_mid_run_lose_no_debit_and_charge_none_twice(
    cluster: Cluster, e2e_app: Container
) -> None:
    seed_due_debits(e2e_app, cluster.sandbox, COUNT)
    cluster.sandbox.state.faults.add(  # slow the gateway so kills land mid-batch
        Fault.from_spec({"kind": "latency", "endpoint": "txns", "seconds": 0.25, "times": 10_000})
    )
    cluster.start_beat()
    kills = 0
    for _ in range(4):
        before = debit_states(e2e_app).get("CHARGED", 0)
        cluster.start_worker(concurrency=2)
        # Killed as soon as this worker has settled something, whatever the machine's speed:
        # its other batches are in flight then (a fixed sleep let a fast worker finish first).
        deadline, charged = time.monotonic() + 30, before
        while charged == before and time.monotonic() < deadline:
            time.sleep(0.1)
            charged = debit_states(e2e_app).get("CHARGED", 0)
        if charged == COUNT:
            break
        cluster.kill("worker")
        kills += 1
    if "worker" not in cluster.procs:
        cluster.start_worker(concurrency=2)
    wait_all_charged(e2e_app, cluster, COUNT, 180)
    assert kills >= 2, "the run finished before the worker could be killed twice"
    assert_charged_exactly_once(e2e_app, cluster, COUNT)
    with e2e_app.sessions() as session:
        reconciled = session.scalars(
            select(DebitHistory.debit_id).where(DebitHistory.to_state == "UNKNOWN")
        ).all()
    print(f"kills: {kills}, debits reconciled after a kill: {len(set(reconciled))}")
