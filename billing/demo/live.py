"""`billing demo --live`: the real processes on the embedded defaults, on the real clock.

The bundled sandbox (`billing sandbox --mandates`), the webhook receiver, one prefork worker
and beat run as separate processes in a temporary directory, on the embedded SQLite database
and the embedded broker (nothing but the Juspay and webhook settings set), with Flower beside
them when it is installed. A merchant's book of a few hundred mandates falls due at once:

- the debit time is the current minute, and every mandate's rule day is today, so the flows
  none (net banking, wallets) and merchant (UPI) execute as soon as the processes are up;
- juspay-flow cards need 26 h of lead: the day before is played first on a simulated clock
  shared with the sandbox (the executions sent with today's execution date, the merchant's
  PDNs sent and succeeded), so Juspay debits them within the first minute, in the sandbox's
  time;
- the sandbox injects faults: declines, a timeout after the charge, a dropped connection,
  a failed Juspay PDN, a mandate revoked by the customer as the processes start.

A progress line (debits by state, charges per second) follows the database; the end is the
same books check as the simulated demo. Every process is started in its own process group and
stopped (SIGTERM, then SIGKILL) on the way out, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx
from sqlalchemy import func, select

from billing.bootstrap import Container, build
from billing.config import load_settings
from billing.demo.scenario import API_KEY, MERCHANT_ID, SimulatedClock
from billing.demo.simulation import debit_counts, summary
from billing.services.mandates.files import MANDATE_FIELDS, read_rows
from billing.services.mandates.registry import import_mandates
from billing.services.tick import run_tick
from billing.services.webhook_events import process_pending
from billing.store import migrate
from billing.store.models import WebhookEvent

BILLING = str(Path(sys.executable).with_name("billing"))
SETTLED = frozenset({"CHARGED", "FAILED", "SKIPPED", "CANCELLED", "MANUAL_REVIEW"})
# A soft decline waits a day for its next try: settled for the demo's purpose.
AT_REST = SETTLED | {"RETRY_SCHEDULED"}
FLOWS = "UPI:merchant,CARD:juspay,NB:none,WALLET:none"
# The book's shares: juspay-flow cards, merchant-flow UPI, net banking, wallets.
SHARES = (("card", "CARD", "499.00"), ("upi", "UPI", "299.00"), ("nb", "NB", "1500.00"))
WALLETS = ("wallet", "WALLET", "99.00")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Processes:
    """What the demo started: each in its own process group, all stopped on the way out."""

    workdir: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *argv: str) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(  # noqa: S603 - our own commands, no shell
            list(argv),
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops each group
        )
        click.echo(f"started {name} (pid {self.procs[name].pid}, log {log.name})")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
                raise click.ClickException(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
            _signal_group(proc, signal.SIGKILL)  # a pool child left behind by its parent
        if self.procs:
            click.echo(f"stopped {len(self.procs)} processes")
        self.procs.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _wait_http(url: str, processes: Processes, what: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        processes.check_alive()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise click.ClickException(f"{what} did not answer at {url}")
        time.sleep(0.1)


def _wait_log(processes: Processes, name: str, text: str, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    log = processes.workdir / f"{name}.log"
    while text not in log.read_text(errors="replace"):
        processes.check_alive()
        if time.monotonic() > deadline:
            raise click.ClickException(f"{name} did not start (see {log})")
        time.sleep(0.1)


def write_book(path: Path, size: int, today: Any) -> list[dict[str, str]]:
    """`size` monthly mandates whose rule day is today: cards, UPI and net banking in equal
    shares, every tenth a wallet."""
    start = (today - timedelta(days=60)).isoformat()
    rows = []
    for i in range(size):
        prefix, method, amount = SHARES[i % 3] if i % 10 != 9 else WALLETS
        rows.append(
            {
                "customer_id": f"cst_{prefix}{i:04d}",
                "mandate_id": f"{prefix}{i:04d}",
                "frequency": "MONTHLY",
                "rule_type": "ON",
                "rule_value": str(today.day),
                "amount_rule": "FIXED",
                "max_amount": amount,
                "currency": "INR",
                "start_date": start,
                "payment_method_type": method,
                "status": "ACTIVE",
            }
        )
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, MANDATE_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _faults(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What goes wrong, keyed on the first mandates of each kind (the book's order)."""
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        by_kind.setdefault(row["payment_method_type"], []).append(row["mandate_id"])
    card, nb, wallet = by_kind.get("CARD", []), by_kind.get("NB", []), by_kind.get("WALLET", [])
    plan: list[tuple[list[str], int, dict[str, Any]]] = [
        (card, 0, {"kind": "fail", "endpoint": "txns", "error_code": "51",
                   "error_message": "Insufficient funds"}),
        (card, 1, {"kind": "fail", "endpoint": "txns", "error_code": "14",
                   "error_message": "Invalid card number", "times": 5}),
        (card, 2, {"kind": "fail", "endpoint": "pdn"}),
        (nb, 0, {"kind": "timeout_after", "endpoint": "txns", "seconds": 1.5}),
        (nb, 1, {"kind": "drop_before", "endpoint": "txns"}),
        (nb, 2, {"kind": "fail", "endpoint": "txns", "error_code": "51",
                 "error_message": "Insufficient funds"}),
        (wallet, 0, {"kind": "fail", "endpoint": "txns", "error_code": "14",
                     "error_message": "Invalid account"}),
    ]  # fmt: skip
    return [{**spec, "key": ids[index]} for ids, index, spec in plan if len(ids) > index]


def _unprocessed_webhooks(app: Container) -> int:
    with app.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.state == "RECEIVED")
            )
            or 0
        )


def _play_the_day_before(
    app: Container, sandbox: httpx.Client, clock: SimulatedClock, days_ahead_end: datetime
) -> int:
    """Billing's and the sandbox's day before, on a simulated clock: juspay-flow executions
    sent with today's execution date, merchant PDNs sent and succeeded. Returns the passes."""
    services = (app.debits(), app.orders(), app.notifications())
    events = app.webhook_events()
    passes = 0
    while clock.now < days_ahead_end:
        sandbox.post("/sandbox/clock", json={"now": clock.now.isoformat()}).raise_for_status()
        run_tick(
            app.sessions,
            debits=services[0],
            orders=services[1],
            notifications=services[2],
            now=clock.now,
            also={"webhooks": lambda: process_pending(app.sessions, events, now=clock.now)},
        )
        passes += 1
        clock.now += timedelta(minutes=2)
    return passes


def run_live(
    size: int, workdir: Path | None, timeout_s: float, broker_url: str | None = None
) -> None:
    """Run the live demo; raises `click.ClickException` when the books disagree.

    `broker_url` (Redis or RabbitMQ) replaces the embedded broker: Flower sees events only
    there."""
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        raise click.ClickException(f"--dir {workdir}: not empty (the live demo starts afresh)")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="billing-live-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox_port, receiver_port, flower_port = _free_port(), _free_port(), _free_port()
    password = secrets.token_urlsafe(16)
    tz = load_settings().timezone
    started = datetime.now(UTC)
    local_now = started.astimezone(tz)
    debit_time = f"{local_now:%H:%M}"  # this minute: today's debits are due at once
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(
        {
            "BILLING_JUSPAY_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "BILLING_JUSPAY_API_KEY": API_KEY,
            "BILLING_JUSPAY_MERCHANT_ID": MERCHANT_ID,
            "BILLING_JUSPAY_READ_TIMEOUT": "1s",
            "BILLING_WEBHOOK_USERNAME": "demo-hooks",
            "BILLING_WEBHOOK_PASSWORD": password,
            "BILLING_DEBIT_TIME": debit_time,
            "BILLING_NOTIFICATION_FLOWS": FLOWS,
            "BILLING_BEAT_DISPATCH_EVERY": "2s",
            "BILLING_BEAT_RECLAIM_EVERY": "10s",
            # A demo's timeouts reconcile in seconds (production waits a minute before the
            # first status read of an UNKNOWN order, `BILLING_RECONCILE_AFTER`).
            "BILLING_RECONCILE_AFTER": "5s",
        }
    )
    if broker_url:
        env["BILLING_BROKER_URL"] = broker_url
    click.echo(f"live demo in {workdir}: {size} mandates due today at {debit_time} {tz.key}")
    processes = Processes(workdir, env)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _run(processes, size, workdir, env, (sandbox_port, receiver_port, flower_port), timeout_s)
    finally:
        processes.stop_all()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(
    processes: Processes,
    size: int,
    workdir: Path,
    env: dict[str, str],
    ports: tuple[int, int, int],
    timeout_s: float,
) -> None:
    sandbox_port, receiver_port, flower_port = ports
    settings = load_settings(
        **{
            k.removeprefix("BILLING_").lower(): v
            for k, v in env.items()
            if k.startswith("BILLING_")
        },
        database_url=f"sqlite:///{workdir / 'billing.db'}",
    )
    today = datetime.now(UTC).astimezone(settings.timezone).date()
    rows = write_book(workdir / "mandates.csv", size, today)
    processes.start(
        "sandbox", BILLING, "sandbox", "--port", str(sandbox_port), "--mandates", "mandates.csv",
        "--webhook-url", f"http://127.0.0.1:{receiver_port}/webhooks/juspay",
    )  # fmt: skip
    migrate.upgrade(settings.database_url)
    processes.start("receiver", BILLING, "webhooks", "serve", "--port", str(receiver_port))
    sandbox = httpx.Client(base_url=f"http://127.0.0.1:{sandbox_port}", timeout=10)
    with sandbox:
        _wait_http(f"http://127.0.0.1:{sandbox_port}/sandbox/health", processes, "the sandbox")
        _wait_http(f"http://127.0.0.1:{receiver_port}/healthz", processes, "the receiver")
        sandbox.post(
            "/sandbox/config", json={"settle_seconds": 3, "notification_seconds": 5}
        ).raise_for_status()
        for spec in _faults(rows):
            sandbox.post("/sandbox/faults", json=spec).raise_for_status()
        app = build(settings)
        try:
            report = import_mandates(
                app.sessions,
                read_rows(workdir / "mandates.csv"),
                now=datetime.now(UTC),
                calendar=app.calendar,
            )
            click.echo(f"imported {report.created} mandates ({report.bad} bad rows)")
            planned = app.calendar.instant(today)
            day_before = planned - settings.execution_lead + timedelta(seconds=5)
            clock = SimulatedClock(day_before)
            prep = build(settings, clock=clock)
            try:
                passes = _play_the_day_before(
                    prep, sandbox, clock, day_before + timedelta(minutes=8)
                )
            finally:
                prep.close()
            sandbox.post("/sandbox/clock", json={"real": True}).raise_for_status()
            click.echo(
                f"the day before played on a simulated clock ({passes} passes): "
                + ", ".join(f"{k} {v}" for k, v in sorted(debit_counts(app, planned).items()))
            )
            _start_celery(processes, workdir, flower_port)
            # The customer revokes a mandate in their bank app as the day starts.
            wallets = [r["mandate_id"] for r in rows if r["payment_method_type"] == "WALLET"]
            if len(wallets) > 1:
                sandbox.post(
                    f"/sandbox/mandates/{wallets[1]}/status", json={"status": "REVOKED"}
                ).raise_for_status()
            _follow(app, processes, planned, timeout_s)
            ledger = sandbox.get("/sandbox/ledger").json()["entries"]
            summary(app, ledger, passes=None, until=planned)
        finally:
            app.close()


def _start_celery(processes: Processes, workdir: Path, flower_port: int) -> None:
    processes.start("worker", BILLING, "worker", "--concurrency", "2")
    processes.start("beat", BILLING, "beat", "--schedule", str(workdir / "beat-schedule"))
    if find_spec("flower") is not None:
        processes.start(
            "flower", sys.executable, "-m", "celery", "-A", "billing.tasks.worker", "flower",
            f"--port={flower_port}", "--address=127.0.0.1",
        )  # fmt: skip
        flower = f"http://127.0.0.1:{flower_port}"
        _wait_http(f"{flower}/healthcheck", processes, "Flower")
        click.echo(f"Flower: {flower}")
    else:
        click.echo("Flower is not installed (pip install 'billing[flower]'): not started")
    _wait_log(processes, "worker", "ready.")


def _follow(app: Container, processes: Processes, planned: datetime, timeout_s: float) -> None:
    """Print debits by state and charges per second until today's debits are at rest."""
    tty = sys.stdout.isatty()
    deadline = time.monotonic() + timeout_s
    history: list[tuple[float, int]] = []
    last_plain = 0.0
    calm = 0
    while True:
        processes.check_alive()
        counts = debit_counts(app, planned)
        now = time.monotonic()
        history = [*history[-10:], (now, counts["CHARGED"])]
        span = history[-1][0] - history[0][0]
        rate = (history[-1][1] - history[0][1]) / span if span > 0 else 0.0
        line = (
            "  ".join(f"{state.lower()} {n}" for state, n in sorted(counts.items()))
            + f"  | {rate:.1f} charged/s"
        )
        if tty:
            click.echo(f"\r{line}\033[K", nl=False)
        elif now - last_plain >= 5:
            click.echo(line)
            last_plain = now
        busy = sum(n for state, n in counts.items() if state not in AT_REST)
        calm = calm + 1 if busy == 0 and _unprocessed_webhooks(app) == 0 else 0
        if calm >= 3:  # three quiet looks in a row: late webhooks have had their chance
            break
        if now > deadline:
            click.echo(f"\nstill moving after {timeout_s:g}s: {busy} debits not at rest")
            break
        time.sleep(1)
    if tty:
        click.echo("")
    click.echo(line)
