"""Chaos and fuzz at CI size (issue 16); the long sizes: `python -m bench.chaos SUITE --long`.

Each suite prints its one line of figures (`pytest -s` shows it) and fails on any problem it
found: a double charge, a lost or stuck debit, an unreconciled UNKNOWN, the database and the
sandbox's ledger disagreeing, a secret in a table or a log, a 5xx, a refused body that changed
stored state, an event applied twice or a stale one applied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import redis

from billing.store import migrate
from tests.e2e.chaos import (
    ChaosPlan,
    Figures,
    PrivatePostgres,
    PrivateRedis,
    postgres_bin,
    run_debit_chaos,
)
from tests.e2e.chaos_webhooks import EC, Receiver, run_fuzz, run_out_of_order
from tests.seed_samples import sample
from tests.services import BROKER_URL, check_redis, scratch_postgres_database, service_missing

# The CI sizes (1,000 debits, 1,000 events, 5,000 bodies; the outage run 300 debits so
# the four fit about three minutes of a 2-core CI run); the long sizes are
# `python -m bench.chaos SUITE --long`.
pytestmark = pytest.mark.timeout(900)
CI_LEASE = "15s"  # the CI sizes' queues drain in seconds: a killed worker's work back sooner


def private_services() -> None:
    """The outage and webhook suites start their own redis-server and PostgreSQL cluster."""
    try:
        postgres_bin("initdb")
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
    except RuntimeError as exc:
        service_missing("redis-server / PostgreSQL server binaries", exc)


def post_event(receiver: Receiver, event_id: str) -> int:
    body = sample("MANDATE_ACTIVATED")
    body["id"] = event_id
    return receiver.post(EC, json.dumps(body).encode())


def report(figures: Figures) -> None:
    print(f"\n{figures.line()}")
    assert figures.problems == [], "\n".join(figures.problems[:30])


def test_workers_killed_beats_doubled_gateway_faults(tmp_path: Path) -> None:
    check_redis()
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    try:
        with scratch_postgres_database("billing_chaos") as url:
            # The CI size; a kill every 2 s, so the fast path is killed mid-batch.
            plan = ChaosPlan(debits=1000, kill_every=2.0, max_kills=6, dispatch_lease=CI_LEASE)
            figures = run_debit_chaos(plan, tmp_path, database_url=url, broker_url=BROKER_URL)
    finally:
        broker.flushdb()
        broker.close()
    report(figures)
    assert figures.values["kills"] >= 2, "the run ended before two kills"
    assert int(figures.values["unknown_reconciled"]) >= 100  # type: ignore[call-overload]


def test_broker_restarted_and_database_down_mid_run(tmp_path: Path) -> None:
    private_services()
    figures = run_debit_chaos(
        ChaosPlan(debits=300, outages=True, database_down_seconds=20, dispatch_lease=CI_LEASE),
        tmp_path,
    )
    report(figures)


def test_webhooks_out_of_order_repeated_and_stale(tmp_path: Path) -> None:
    private_services()
    report(run_out_of_order(1000, tmp_path))


def test_fuzz_the_running_receiver(tmp_path: Path) -> None:
    private_services()
    report(run_fuzz(5000, tmp_path))


def test_the_receiver_answers_503_while_postgresql_restarts_then_stores_again(
    tmp_path: Path,
) -> None:
    # `billing webhooks serve` skips the pool's pre-ping: a connection that died with the
    # database must cost at most a 503 (Juspay delivers again), never a 500, and the receiver
    # must store again once PostgreSQL is back, without a restart of its own.
    private_services()
    broker, postgres = PrivateRedis(tmp_path), PrivatePostgres()
    try:
        broker.start()
        postgres.init()
        migrate.upgrade(postgres.url)
        receiver = Receiver(tmp_path, postgres.url, broker.url)
        try:
            assert post_event(receiver, "evt_before") == 200
            postgres.stop()
            assert post_event(receiver, "evt_down") == 503
            postgres.start()
            answers = [post_event(receiver, f"evt_after_{n}") for n in range(5)]
        finally:
            receiver.stop()
    finally:
        broker.kill()
        postgres.destroy()
    assert set(answers) <= {200, 503}, answers
    assert answers[-1] == 200, answers
    assert answers.count(503) <= 1, answers
