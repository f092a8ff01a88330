"""`billing status` against a real deployment: unhealthy with no worker and no beat, healthy once
both run (and the debits they move are charged), unhealthy again when the worker dies."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from billing.bootstrap import Container
from billing.tasks.health import workers_by_queue
from billing.tasks.worker import QUEUES
from tests.e2e.conftest import BILLING, Cluster, debit_states, seed_due_debits
from tests.services import BROKER_URL

pytestmark = pytest.mark.timeout(300)


def status(cluster: Cluster) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [BILLING, "status", "--json", "--timeout", "1.5"],
        cwd=cluster.tmp,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def failing(report: dict[str, Any]) -> set[str]:
    return {name for name, part in report.items() if name != "healthy" and not part["ok"]}


def test_status_sees_a_missing_worker_and_beat_and_is_healthy_when_both_run(
    cluster: Cluster, e2e_app: Container
) -> None:
    seed_due_debits(e2e_app, cluster.sandbox, 5)
    code, report = status(cluster)
    assert code == 1
    assert failing(report) == {"workers", "beat"}, report
    assert report["workers"]["queues"] == {q: [] for q in QUEUES}
    assert (
        report["beat"]["error"]
        == "no dispatch recorded: is billing beat running (and a worker on housekeeping)?"
    )
    assert report["debits"]["overdue"] == 5  # due a minute ago: not yet stuck

    cluster.start_worker()
    code, report = status(cluster)
    assert code == 1
    assert failing(report) == {"beat"}, report
    assert all(
        hosts and hosts[0].startswith("worker@") for hosts in report["workers"]["queues"].values()
    )
    # The path the embedded (SQL) broker takes, which cannot broadcast: a ping task per queue,
    # answered by the worker through the database.
    answered = workers_by_queue(
        QUEUES, 20, e2e_app.sessions, broker_url=BROKER_URL, broadcast=False
    )
    assert all(hosts and hosts[0].startswith("worker@") for hosts in answered.values()), answered

    cluster.start_beat()
    deadline = time.monotonic() + 60
    while True:
        code, report = status(cluster)
        if code == 0:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"not healthy within 60 s: {report}\n{cluster.log('beat')[-2000:]}")
        time.sleep(1)
    assert report["healthy"] is True
    assert report["beat"]["last_dispatch"] is not None
    deadline = time.monotonic() + 60
    while debit_states(e2e_app) != {"CHARGED": 5}:
        assert time.monotonic() < deadline, debit_states(e2e_app)
        time.sleep(0.25)

    cluster.kill("worker")
    code, report = status(cluster)
    assert code == 1
    assert failing(report) == {"workers"}, report
    assert report["workers"]["error"].startswith(
        "no worker answering on gateway, webhooks, housekeeping within 1.5s"
    )
