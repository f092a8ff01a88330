"""End-to-end fixtures: real `billing worker` (prefork) and `billing beat` subprocesses on real
Redis and PostgreSQL, talking over HTTP to the sandbox running in the test process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import func, select

from billing.bootstrap import Container, build
from billing.config import load_settings
from billing.sandbox.server import SandboxServer
from billing.services.mandates import registry
from billing.store import debits as debit_store
from billing.store import migrate
from billing.store.models import Debit, Mandate
from tests.integration.sandbox_fixtures import API_KEY, MERCHANT_ID
from tests.services import BROKER_URL, check_redis, scratch_postgres_database

BILLING = str(Path(sys.executable).with_name("billing"))


# The merchant's notice flows in these deployments: cards charged at once (the sandbox settles a
# card order on the call), so a test's debits are final within seconds of a worker taking them.
CARD_WITHOUT_NOTICE = "CARD:none"


@dataclass
class Cluster:
    """The processes of one deployment, started and killed by the test."""

    database_url: str
    sandbox: SandboxServer  # or anything with the sandbox's `url` (the chaos suites' process)
    tmp: Path
    broker_url: str = BROKER_URL
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Settings a test adds or overrides for every process it starts from now on.
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
        env.update(
            {
                "BILLING_DATABASE_URL": self.database_url,
                "BILLING_BROKER_URL": self.broker_url,
                "BILLING_JUSPAY_BASE_URL": self.sandbox.url,
                "BILLING_JUSPAY_API_KEY": API_KEY,
                "BILLING_JUSPAY_MERCHANT_ID": MERCHANT_ID,
                "BILLING_JUSPAY_READ_TIMEOUT": "5s",
                "BILLING_BROKER_VISIBILITY_TIMEOUT": "8s",
                "BILLING_STALE_CLAIM_AFTER": "4s",
                "BILLING_DISPATCH_LEASE": "4s",
                "BILLING_BEAT_DISPATCH_EVERY": "1s",
                "BILLING_BEAT_RECLAIM_EVERY": "2s",
                "BILLING_NOTIFICATION_FLOWS": CARD_WITHOUT_NOTICE,
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [BILLING, *args],
            cwd=self.tmp,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL takes the pool too
        )
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> None:
        log = self.tmp / f"{name}.log"
        seen = log.read_bytes().count(b"ready.") if log.exists() else 0  # earlier runs' lines
        self.start(
            name, "worker", "--concurrency", str(concurrency), "--pool", "prefork",
            "--hostname", f"{name}@%h", "--loglevel", "INFO",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while log.read_bytes().count(b"ready.") <= seen:
            if time.monotonic() > deadline or self.procs[name].poll() is not None:
                pytest.fail(f"{name} did not start:\n{self.log(name)[-3000:]}")
            time.sleep(0.1)

    def start_beat(self, name: str = "beat") -> None:
        self.start(name, "beat", "--schedule", str(self.tmp / f"{name}-schedule"))

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def cluster(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Cluster]:
    check_redis()
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    with scratch_postgres_database("billing_e2e") as url:
        migrate.upgrade(url)
        cluster = Cluster(url, sandbox, tmp_path)
        try:
            yield cluster
        finally:
            cluster.stop_all()
            broker.flushdb()
            broker.close()


@pytest.fixture
def e2e_app(cluster: Cluster) -> Iterator[Container]:
    """The test's own view of the deployment's database (system clock, like the workers)."""
    app = build(
        load_settings(database_url=cluster.database_url, notification_flows=CARD_WITHOUT_NOTICE)
    )
    yield app
    app.close()


@pytest.fixture
def sender() -> Iterator[Celery]:
    """A bare Celery client on the deployment's broker, to send tasks as a second beat would."""
    app = Celery("e2e-sender", broker=BROKER_URL)
    app.conf.task_serializer = "json"
    yield app
    app.close()


def seed_due_debits(app: Container, sandbox: SandboxServer, count: int) -> list[int]:
    """`count` card mandates, each with one debit due now (flow none: charged at once).

    The deployment runs cards without a pre-debit notice (CARD_WITHOUT_NOTICE), so the pre-send
    terms check (issue 17) finds the debit's flow to be the card's."""
    rows = due_mandates(count)
    for row in rows:
        sandbox.state.seed_mandate(row)
    return plan_due_debits(app, rows)


def due_mandates(count: int) -> list[dict[str, str]]:
    """`count` card mandates as the importer and the sandbox's seeding both take them."""
    return [
        {
            "customer_id": f"cst{i}",
            "mandate_id": f"mdt{i:05d}",
            "status": "ACTIVE",
            "frequency": "ASPRESENTED",
            "amount_rule": "VARIABLE",
            "max_amount": "1000",
            "start_date": "2026-01-01",
            "payment_method_type": "CARD",
        }
        for i in range(count)
    ]


def plan_due_debits(app: Container, rows: list[dict[str, str]]) -> list[int]:
    """Import the mandates and give each one debit (cycle 0, 399.00) due a minute ago."""
    now = datetime.now(UTC)
    report = registry.import_mandates(
        app.sessions, list(enumerate(rows, 1)), now=now, calendar=app.calendar
    )
    assert report.created == len(rows)
    with app.sessions() as session, session.begin():
        pks = session.execute(select(Mandate.id)).scalars().all()
        return debit_store.insert_planned(
            session,
            [
                debit_store.NewDebit(
                    mandate_pk=pk,
                    cycle=0,
                    flow="none",
                    amount=Decimal("399.00"),
                    currency="INR",
                    window_first_day=now.date(),
                    window_last_day=(now + timedelta(days=1)).date(),
                    planned_at=now - timedelta(minutes=1),
                    window_closes_at=now + timedelta(days=1),
                    due_at=now - timedelta(minutes=1),
                )
                for pk in pks
            ],
            at=now,
            cause="presented by the e2e test",
        )


def debit_states(app: Container) -> dict[str, int]:
    with app.sessions() as session:
        rows = session.execute(select(Debit.state, func.count()).group_by(Debit.state)).all()
    return {str(state): int(count) for state, count in rows}
