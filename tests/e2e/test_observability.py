"""Operators follow one debit through a real worker's JSON logs, and scrape the worker's metrics.

A prefork worker and beat run with `BILLING_LOG_FORMAT=json` and `BILLING_METRICS_PORT`; the
test picks one debit and finds, in the lines carrying its `debit_id`, its order id (as
recorded in the database), the Celery task id (the one Celery logged receiving) and the
request id the sandbox saw on the execution call. Then the worker's /metrics (the sum over its
prefork children) shows the debits charged and the gateway calls made.
"""

from __future__ import annotations

import json
import socket
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from billing.bootstrap import Container
from billing.store.models import Order
from tests.e2e.conftest import Cluster, debit_states, seed_due_debits

pytestmark = pytest.mark.timeout(180)
COUNT = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def test_one_debit_is_followed_through_the_workers_json_logs_and_metrics_count_it(
    cluster: Cluster, e2e_app: Container
) -> None:
    port = free_port()
    cluster.extra_env.update({"BILLING_LOG_FORMAT": "json", "BILLING_METRICS_PORT": str(port)})
    debit_ids = seed_due_debits(e2e_app, cluster.sandbox, COUNT)
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    deadline = time.monotonic() + 90
    while debit_states(e2e_app).get("CHARGED", 0) < COUNT:
        if time.monotonic() > deadline:
            pytest.fail(f"not charged: {debit_states(e2e_app)}\n{cluster.log('worker')[-3000:]}")
        time.sleep(0.25)

    lines = json_lines(cluster.log("worker"))
    assert lines, f"no JSON lines:\n{cluster.log('worker')[-2000:]}"
    followed = debit_ids[0]
    mine = [line for line in lines if line.get("debit_id") == followed]
    assert mine, "no line carries the debit's id"
    fields: dict[str, set[Any]] = defaultdict(set)
    for line in mine:
        for name in ("order_id", "task_id", "request_id", "mandate_id", "try"):
            if name in line:
                fields[name].add(line[name])
    with e2e_app.sessions() as session:
        order_id = session.scalars(select(Order.order_id).where(Order.debit_id == followed)).one()
    assert fields["order_id"] == {order_id}
    assert fields["try"] == {1}
    assert len(fields["mandate_id"]) == 1
    # Later tasks (a webhook's processing, a status check) may log about the debit too; the
    # execution is one task, and Celery logged receiving it.
    executions = {line["task_id"] for line in mine if line.get("task") == "billing.debits.execute"}
    assert len(executions) == 1, sorted({(line.get("task"), line.get("task_id")) for line in mine})
    (task_id,) = executions
    received = [line["message"] for line in lines if "received" in str(line.get("message"))]
    assert any(f"[{task_id}]" in message for message in received), received[:5]
    execution_requests = {
        r["headers"].get("x-request-id")
        for r in cluster.sandbox.state.requests
        if r["path"] == "/txns"
    }
    assert fields["request_id"] & execution_requests
    gateway_lines = [line for line in mine if line.get("logger") == "billing.gateway"]
    assert len(gateway_lines) == 1, gateway_lines  # one line per call, httpx's own silenced
    assert not [line for line in lines if line.get("logger") == "httpx"]

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        )
        for sample in family.samples
    }
    assert samples[("billing_debits_total", (("state", "CHARGED"),))] == COUNT
    txns = (("endpoint", "POST /txns"), ("status", "200"))
    assert samples[("billing_gateway_requests_total", txns)] == COUNT
    executed = sum(
        value
        for (name, labels), value in samples.items()
        if name == "billing_tasks_total" and ("task", "billing.debits.execute") in labels
    )
    assert executed >= COUNT
