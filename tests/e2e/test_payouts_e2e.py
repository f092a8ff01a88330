"""Payout retries in a deployment in miniature: a prefork worker, beat, the webhook receiver,
Redis, PostgreSQL and the sandbox. The card goes in through `billing payouts track` (stdin);
each test ends on what the sandbox recorded (its decrypted attempts, its payout ledger, the
attempt calls it received) and on every process's log: no card number, no CVV.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from billing.bootstrap import Container
from billing.sandbox.faults import Fault
from billing.store.models import Fulfillment, PayoutAttempt
from tests.e2e.conftest import BILLING, Cluster
from tests.e2e.merchant_cvv import CVV
from tests.integration.sandbox_fixtures import (
    KEY_ID,
    MERCHANT_KEY_ID,
    WEBHOOK_PASSWORD,
    WEBHOOK_USERNAME,
    card_fulfillment,
    payout_order,
)

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = "cst_e2e_payout"
PAN = "4000056655665556"
EXPIRY = "09/2031"
# Seconds for the payout to settle once the processes run: ~10 s here, but another session's
# e2e run on the same broker can hold our tasks up; polling settles it by ~60 s whatever happens.
DEADLINE = 90.0


@pytest.fixture
def payout_cluster(cluster: Cluster, juspay_public_key_file: Path) -> Cluster:
    """The cluster with the Attempt API keys, a card data key and a fast payouts beat."""
    cluster.extra_env.update(
        {
            "BILLING_JUSPAY_PUBLIC_KEY_FILE": str(juspay_public_key_file),
            "BILLING_JUSPAY_KEY_ID": KEY_ID,
            "BILLING_MERCHANT_KEY_ID": MERCHANT_KEY_ID,
            "BILLING_CARD_DATA_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "BILLING_BEAT_PAYOUTS_EVERY": "1s",
            # an attempt left SENDING this long is read from the order (> the 3 s fault below)
            "BILLING_STALE_CLAIM_AFTER": "6s",
        }
    )
    return cluster


# --- helpers -----------------------------------------------------------------------------------


def seed_failed_card_payout(cluster: Cluster, order_id: str) -> str:
    """A payout order (Juspay's create body) whose one PLAIN_CARD fulfillment failed with a
    soft code at its rail; its fulfillment id."""
    fulfillment_id = f"{order_id}-f1"
    cluster.sandbox.state.seed_payout(
        payout_order(order_id, CUSTOMER, card_fulfillment("250.50", fid=fulfillment_id))
    )
    return fulfillment_id


def billing_cli(cluster: Cluster, *args: str, stdin: str = "") -> str:
    """Run `billing ARGS` with the cluster's settings; its output is kept for the log scan."""
    done = subprocess.run(  # noqa: PLW1510 - the exit code is checked below, with the output
        [BILLING, *args],
        cwd=cluster.tmp,
        env=cluster.env,
        input=stdin.encode(),
        capture_output=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    with (cluster.tmp / "cli.log").open("a") as log:
        log.write(output)
    assert done.returncode == 0, f"billing {' '.join(args)} exited {done.returncode}:\n{output}"
    return done.stdout.decode()


def track_with_card_on_stdin(cluster: Cluster, order_id: str, *extra: str) -> None:
    billing_cli(
        cluster,
        "payouts", "track", order_id, "--customer-id", CUSTOMER,
        "--card-number", "-", "--expiry", EXPIRY, "--name", "A Kumar", *extra,
        stdin=PAN + "\n",
    )  # fmt: skip


def fulfillment(app: Container, fulfillment_id: str) -> Fulfillment:
    with app.sessions() as session:
        return session.scalars(
            select(Fulfillment).where(Fulfillment.fulfillment_id == fulfillment_id)
        ).one()


def attempt_rows(app: Container) -> list[PayoutAttempt]:
    with app.sessions() as session:
        return list(session.scalars(select(PayoutAttempt).order_by(PayoutAttempt.id)))


def wait_for(cluster: Cluster, predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{cluster.log(n)[-2500:]}" for n in cluster.procs)
            pytest.fail(f"no {what} within {DEADLINE:.0f}s\n{logs}")
        time.sleep(0.2)


def settled(app: Container, fulfillment_id: str) -> Callable[[], bool]:
    def check() -> bool:
        f = fulfillment(app, fulfillment_id)
        return (f.status, f.attempt_state) == ("SUCCESS", "DONE")

    return check


def sandbox_view(cluster: Cluster, path: str, key: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{cluster.sandbox.url}/sandbox/{path}")
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()[key]
    return rows


def attempt_calls(cluster: Cluster) -> list[dict[str, Any]]:
    """The Attempt API calls the sandbox received, recorded as they arrive."""
    return [
        r
        for r in list(cluster.sandbox.state.requests)
        if r["method"] == "POST" and r["path"].endswith("/attempt")
    ]


def assert_no_card_data(cluster: Cluster, *names: str) -> None:
    def spaced(number: str) -> str:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))

    patterns = {
        "card number": re.compile(re.escape(PAN)),
        "card number with spaces": re.compile(re.escape(spaced(PAN))),
        "jwe plaintext": re.compile(r"cardInfo|cardSecurityCode"),
        # a CVV is short: only as a number of its own, not inside ids, timings or base64
        "cvv": re.compile(r"(?<![0-9A-Za-z.+/=_-])" + CVV + r"(?![0-9A-Za-z.+/=_-])"),
    }
    for name in names:
        text = cluster.log(name)
        assert text, f"{name}.log is empty"
        for what, pattern in patterns.items():
            found = pattern.search(text)
            if found is not None:
                around = text[max(found.start() - 80, 0) : found.end() + 80]
                pytest.fail(f"{what} in {name}.log: ...{around!r}...")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_webhook_receiver(cluster: Cluster) -> None:
    """`billing webhooks serve` as its own process, and the sandbox posting to it."""
    port = free_port()
    cluster.extra_env.update(
        {"BILLING_WEBHOOK_USERNAME": WEBHOOK_USERNAME, "BILLING_WEBHOOK_PASSWORD": WEBHOOK_PASSWORD}
    )
    cluster.start("webhooks", "webhooks", "serve", "--host", "127.0.0.1", "--port", str(port))
    url = f"http://127.0.0.1:{port}/webhooks/juspay"

    def listening() -> bool:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            if cluster.procs["webhooks"].poll() is not None:
                pytest.fail(f"the receiver exited:\n{cluster.log('webhooks')[-3000:]}")
            return False
        return True

    wait_for(cluster, listening, "webhook receiver listening")
    cluster.sandbox.state.webhooks.configure(
        url=url, username=WEBHOOK_USERNAME, password=WEBHOOK_PASSWORD
    )


# --- the tests ---------------------------------------------------------------------------------


def test_beat_retries_a_failed_card_payout_once_and_it_settles_with_no_card_data_in_any_log(
    payout_cluster: Cluster, e2e_app: Container
) -> None:
    cluster = payout_cluster
    # The rail wants a CVV: the worker asks the merchant's provider at attempt time.
    cluster.extra_env.update(
        {"BILLING_CVV_PROVIDER": "tests.e2e.merchant_cvv:provide", "PYTHONPATH": str(ROOT)}
    )
    # Juspay settles the attempted fulfillment on its own 2 s later and sends the payout
    # webhook; polling (1 min after the attempt) is the fallback this test does not wait for.
    httpx.post(
        f"{cluster.sandbox.url}/sandbox/config", json={"fulfillment_seconds": 2}
    ).raise_for_status()
    fulfillment_id = seed_failed_card_payout(cluster, "po-e2e-1")
    track_with_card_on_stdin(cluster, "po-e2e-1", "--needs-cvv")
    tracked = fulfillment(e2e_app, fulfillment_id)
    assert (tracked.status, tracked.attempt_state, tracked.card_last4) == ("FAILURE", "DUE", "5556")

    started = time.monotonic()
    start_webhook_receiver(cluster)
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    wait_for(cluster, settled(e2e_app, fulfillment_id), "SUCCESS / DONE")
    print(f"settled {time.monotonic() - started:.1f}s after the processes started")

    (sent,) = sandbox_view(cluster, "attempts", "attempts")
    assert sent["plaintext"]["fulfillmentId"] == fulfillment_id
    assert sent["plaintext"]["cardInfo"]["cardNumber"] == PAN
    assert sent["plaintext"]["cardInfo"]["cardSecurityCode"] == CVV
    assert len(attempt_calls(cluster)) == 1
    ledger = sandbox_view(cluster, "payout-ledger", "entries")
    assert [(e["fulfillment_id"], e["amount"]) for e in ledger] == [(fulfillment_id, "250.50")]
    (row,) = attempt_rows(e2e_app)
    assert (row.number, row.state, row.outcome) == (1, "ACK", "SUCCESS")

    shown = json.loads(billing_cli(cluster, "payouts", "show", "po-e2e-1", "--json"))
    (f,) = shown["fulfillments"]
    assert (f["status"], f["attempt_state"], f["card"]) == ("SUCCESS", "DONE", "****5556")
    assert [(a["state"], a["outcome"]) for a in f["attempts"]] == [("ACK", "SUCCESS")]

    cluster.stop_all()  # flush and close every log before reading them
    assert_no_card_data(cluster, "worker", "beat", "webhooks", "cli")


def test_a_worker_killed_while_its_attempt_is_in_flight_does_not_resend_it(
    payout_cluster: Cluster, e2e_app: Container
) -> None:
    cluster = payout_cluster
    # The first status read after the attempt landed finds the fulfillment settled.
    httpx.post(
        f"{cluster.sandbox.url}/sandbox/config", json={"fulfillment_polls": 1}
    ).raise_for_status()
    cluster.sandbox.state.faults.add(  # the attempt sits at Juspay 3 s before it is processed
        Fault.from_spec({"kind": "latency", "endpoint": "attempt", "seconds": 3, "times": 1})
    )
    fulfillment_id = seed_failed_card_payout(cluster, "po-e2e-2")
    track_with_card_on_stdin(cluster, "po-e2e-2")

    started = time.monotonic()
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    wait_for(cluster, lambda: attempt_calls(cluster), "attempt call at the sandbox")
    cluster.kill("worker")  # the request is at Juspay; its answer will find no one
    assert sandbox_view(cluster, "attempts", "attempts") == [], "the kill came too late"
    (row,) = attempt_rows(e2e_app)
    assert row.state == "SENDING"  # recorded and committed before it was sent

    cluster.start_worker(concurrency=2)
    wait_for(cluster, settled(e2e_app, fulfillment_id), "SUCCESS / DONE after the restart")
    print(f"settled {time.monotonic() - started:.1f}s after the processes started")

    (sent,) = sandbox_view(cluster, "attempts", "attempts")  # Juspay processed it all the same
    assert sent["plaintext"]["fulfillmentId"] == fulfillment_id
    assert sent["plaintext"]["cardInfo"]["cardNumber"] == PAN
    assert len(attempt_calls(cluster)) == 1, "the attempt was sent again"
    ledger = sandbox_view(cluster, "payout-ledger", "entries")
    assert [(e["fulfillment_id"], e["amount"]) for e in ledger] == [(fulfillment_id, "250.50")]
    (row,) = attempt_rows(e2e_app)  # no second attempt: its outcome was read from the order
    assert (row.number, row.state, row.outcome) == (1, "UNKNOWN", "SUCCESS")
    assert fulfillment(e2e_app, fulfillment_id).attempts_made == 1

    cluster.stop_all()
    assert_no_card_data(cluster, "worker", "beat", "cli")
