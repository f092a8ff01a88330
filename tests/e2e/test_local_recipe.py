"""The README's local recipe, run as a user would: `billing sandbox --mandates`, `billing webhooks
serve`, `billing worker` and `billing beat` as separate processes, configured with nothing but
the Juspay and webhook settings the recipe exports.

On the embedded defaults (SQLite database and kombu's SQLAlchemy broker, no server at all), on
PostgreSQL + Redis and on PostgreSQL + RabbitMQ. Each run ends on the sandbox's ledger (every
due debit charged once) and on a webhook processed by the worker: the receiver's enqueue went
through the broker.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from billing.bootstrap import build
from billing.config import load_settings
from billing.services.mandates.files import MANDATE_FIELDS
from billing.store.models import Debit, WebhookEvent
from tests.services import BROKER_URL, IN_CI, check_redis, scratch_postgres_database

pytestmark = pytest.mark.timeout(180)

BILLING = str(Path(sys.executable).with_name("billing"))
MANDATES = 6
API_KEY = "recipe_key_7Hq"
MERCHANT_ID = "recipe_merchant"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_mandates(path: Path) -> None:
    """Net-banking mandates (flow none: executed on the planned instant) whose month's window
    opened on the 1st: due as soon as they are planned."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, MANDATE_FIELDS)
        writer.writeheader()
        for i in range(MANDATES):
            writer.writerow(
                {
                    "customer_id": f"cst_recipe{i}",
                    "mandate_id": f"recipe{i:02d}",
                    "frequency": "MONTHLY",
                    "rule_type": "AFTER",
                    "rule_value": "1",
                    "amount_rule": "FIXED",
                    "max_amount": f"{100 + i}.00",
                    "currency": "INR",
                    "start_date": "2026-01-01",
                    "payment_method_type": "NB",
                    "status": "ACTIVE",
                }
            )


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A vhost of this test's own on the machine's RabbitMQ, so parallel runs share no queue."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        message = "rabbitmqctl is not installed: cannot make a vhost for the RabbitMQ run"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    vhost = f"billing_{uuid.uuid4().hex[:10]}"
    made = subprocess.run([ctl, "add_vhost", vhost], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        message = f"RabbitMQ is not usable: {made.stderr.strip() or made.stdout.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        subprocess.run(
            [ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=True,
        )
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, check=False)


@contextmanager
def deployment(kind: str, tmp: Path) -> Iterator[dict[str, str]]:
    """Database and broker settings for `kind`; the embedded one sets none at all."""
    if kind == "embedded":
        yield {}
        return
    with scratch_postgres_database("billing_recipe") as database_url:
        if kind == "redis":
            check_redis()
            broker = redis.Redis.from_url(BROKER_URL)
            broker.flushdb()
            try:
                yield {"BILLING_DATABASE_URL": database_url, "BILLING_BROKER_URL": BROKER_URL}
            finally:
                broker.flushdb()
                broker.close()
        else:
            with rabbitmq_vhost() as url:
                yield {"BILLING_DATABASE_URL": database_url, "BILLING_BROKER_URL": url}


class Processes:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [BILLING, *args], cwd=self.tmp, env=self.env, capture_output=True, check=False
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0, f"billing {' '.join(args)}: {output}"
        return output

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [BILLING, *args],
            cwd=self.tmp,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-2500:]}" for name in self.procs)

    def wait_for(self, name: str, text: str, deadline_s: float = 60) -> None:
        deadline = time.monotonic() + deadline_s
        while text not in self.log(name):
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:\n{self.logs()}")
            time.sleep(0.1)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def wait_healthy(url: str, processes: Processes, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer:\n{processes.logs()}")
        time.sleep(0.1)


def recipe_env(sandbox_port: int, receiver_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(
        {
            # the recipe's exports (README, "Running it locally")
            "BILLING_JUSPAY_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "BILLING_JUSPAY_API_KEY": API_KEY,
            "BILLING_JUSPAY_MERCHANT_ID": MERCHANT_ID,
            "BILLING_WEBHOOK_USERNAME": "juspay",
            "BILLING_WEBHOOK_PASSWORD": "recipe-secret",
            # only to keep the test short: beat's selection every second, and the month's
            # first day never still ahead of its debit time
            "BILLING_BEAT_DISPATCH_EVERY": "1s",
            "BILLING_DEBIT_TIME": "00:00",
        }
    )
    return env


@pytest.mark.parametrize("kind", ["embedded", "redis", "rabbitmq"])
def test_the_local_recipe_charges_the_due_debits_and_processes_their_webhooks(
    kind: str, tmp_path: Path
) -> None:
    sandbox_port, receiver_port = free_port(), free_port()
    with deployment(kind, tmp_path) as settings:
        env = {**recipe_env(sandbox_port, receiver_port), **settings}
        processes = Processes(tmp_path, env)
        write_mandates(tmp_path / "mandates.csv")
        try:
            # Sandbox and receiver start first (they take the longest), as the recipe orders.
            processes.start(
                "sandbox", "sandbox", "--port", str(sandbox_port), "--mandates", "mandates.csv",
                "--webhook-url", f"http://127.0.0.1:{receiver_port}/webhooks/juspay",
            )  # fmt: skip
            processes.run("db", "upgrade")
            processes.start("receiver", "webhooks", "serve", "--port", str(receiver_port))
            assert "6 created" in processes.run("mandates", "import", "mandates.csv")
            processes.wait_for("sandbox", "Uvicorn running")
            # The gateway's pace, not billing's: net banking settles a second after the call.
            httpx.post(
                f"http://127.0.0.1:{sandbox_port}/sandbox/config", json={"settle_seconds": 1}
            ).raise_for_status()
            processes.start("worker", "worker", "--concurrency", "2")
            processes.start("beat", "beat", "--schedule", str(tmp_path / "beat-schedule"))
            processes.wait_for("receiver", "receiving Juspay webhooks")
            wait_healthy(f"http://127.0.0.1:{receiver_port}/healthz", processes)
            processes.wait_for("worker", "ready.")

            database_url = settings.get("BILLING_DATABASE_URL", f"sqlite:///{tmp_path}/billing.db")
            app = build(load_settings(database_url=database_url))
            try:
                deadline = time.monotonic() + 90
                while True:
                    with app.sessions() as session:
                        states = dict(
                            session.execute(
                                select(Debit.state, func.count()).group_by(Debit.state)
                            ).all()
                        )
                        processed = session.scalar(
                            select(func.count())
                            .select_from(WebhookEvent)
                            .where(WebhookEvent.state == "PROCESSED")
                        )
                    if states.get("CHARGED") == MANDATES and processed:
                        break
                    if time.monotonic() > deadline:
                        pytest.fail(f"{states}, {processed} webhooks processed\n{processes.logs()}")
                    time.sleep(0.25)
            finally:
                app.close()
            ledger = httpx.get(f"http://127.0.0.1:{sandbox_port}/sandbox/ledger").json()
            assert ledger["count"] == MANDATES
            assert len({entry["order_id"] for entry in ledger["entries"]}) == MANDATES
        finally:
            processes.stop_all()
        if kind == "embedded":
            assert (tmp_path / "billing.db").exists()
            assert (tmp_path / "billing-broker.db").exists()


def test_a_worker_on_an_unmigrated_database_exits_1_with_one_line(tmp_path: Path) -> None:
    env = recipe_env(free_port(), free_port())
    done = subprocess.run(
        [BILLING, "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: database sqlite:///billing.db: schema not at head (empty): run billing db upgrade"
    ]


def test_beat_with_its_broker_down_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {**recipe_env(free_port(), free_port()), "BILLING_BROKER_URL": "redis://127.0.0.1:1/0"}
    subprocess.run([BILLING, "db", "upgrade"], cwd=tmp_path, env=env, check=True, timeout=60)
    done = subprocess.run(
        [BILLING, "beat"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: broker unreachable at redis://127.0.0.1:1/0 (")
    assert lines[0].endswith("): start it or fix BILLING_BROKER_URL")
