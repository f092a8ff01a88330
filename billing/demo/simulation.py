"""The simulated-clock demo (`billing demo`): the whole system against the bundled sandbox.

A fresh SQLite database in `.demo/`, the sandbox in this process, a generated mandate file
imported like a merchant's, and five simulated weeks of scheduling passes (the same services
the Celery workers run, driven by `tick` on a simulated clock shared with the sandbox). The
sandbox injects what goes wrong in real life: insufficient funds, hard declines, a timeout
after the charge, a dropped connection, a revoked mandate. It ends by comparing billing's
books with the sandbox's ledger.
"""

from __future__ import annotations

import csv
import logging
import secrets
import shutil
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import uvicorn
from sqlalchemy import func, select

from billing.bootstrap import Container, build
from billing.config import load_settings
from billing.demo.scenario import API_KEY, MERCHANT_ID, SimulatedClock, inject_faults, merchant_book
from billing.sandbox.server import SandboxServer
from billing.services.mandates.files import MANDATE_FIELDS, read_rows
from billing.services.mandates.registry import import_mandates
from billing.services.tick import run_tick
from billing.services.webhook_events import process_pending
from billing.store import migrate
from billing.store.models import Debit, DebitHistory, Mandate, Order, WebhookEvent
from billing.webhooks.app import app_for


def _next_due(app: Container, now: datetime) -> datetime | None:
    with app.sessions() as session:
        found = [
            session.scalar(select(func.min(col)).where(col > now))
            for col in (Debit.due_at, Order.next_check_at)
        ]
    return min((f for f in found if f is not None), default=None)


def debit_counts(app: Container, until: datetime | None = None) -> Counter[str]:
    """Debits by state (those planned up to `until`, all when None)."""
    query = select(Debit.state, func.count()).group_by(Debit.state)
    if until is not None:
        query = query.where(Debit.planned_at <= until)
    with app.sessions() as session:
        return Counter({str(state): int(n) for state, n in session.execute(query).all()})


def run_demo(days: int, workdir: Path, *, quiet: bool = False) -> None:
    """Run the whole system for DAYS simulated days against the bundled sandbox.

    Prints a line per simulated day (unless quiet) and the summary; raises
    `click.ClickException` when billing's books disagree with the sandbox's ledger."""

    # The faults below make the client warn on purpose; the summary tells the story instead.
    logging.getLogger("billing.gateway").setLevel(logging.ERROR)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = SimulatedClock(start)
    with SandboxServer(api_key=API_KEY, merchant_id=MERCHANT_ID) as sandbox:
        sandbox.state.clock.set(start)
        url = f"sqlite:///{workdir / 'billing.db'}"
        migrate.upgrade(url)
        settings = load_settings(
            webhook_username="demo-hooks",
            webhook_password=secrets.token_urlsafe(16),
            database_url=url,
            broker_url=f"sqla+sqlite:///{workdir / 'broker.db'}",
            juspay_base_url=sandbox.url,
            juspay_api_key=API_KEY,
            juspay_merchant_id=MERCHANT_ID,
            juspay_read_timeout=timedelta(seconds=1),
        )
        app = build(settings, clock=clock)
        receiver = _serve_receiver(app)
        assert settings.webhook_password is not None
        sandbox.state.webhooks.configure(
            url=f"{receiver.url}/webhooks/juspay",
            username=settings.webhook_username,
            password=settings.webhook_password.get_secret_value(),
        )
        try:
            _run(app, sandbox, clock, workdir, days, quiet)
        finally:
            receiver.stop()
            app.close()


class _Receiver:
    """The webhook receiver on a thread; events are processed by the scheduling passes."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.server, self.thread, self.url = server, thread, url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _serve_receiver(app: Container) -> _Receiver:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    asgi = app_for(app, lambda _event_pk: None)  # processed by process_pending in each pass
    server = uvicorn.Server(
        uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise click.ClickException("the webhook receiver did not start")
        time.sleep(0.02)
    return _Receiver(server, thread, f"http://127.0.0.1:{port}")


def _run(
    app: Container, sandbox: Any, clock: SimulatedClock, workdir: Path, days: int, quiet: bool
) -> None:
    rows = merchant_book(clock.now)
    path = workdir / "mandates.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, MANDATE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    report = import_mandates(app.sessions, read_rows(path), now=clock.now, calendar=app.calendar)
    click.echo(f"imported {report.created} mandates from {path} ({report.bad} bad rows)")
    for row in rows:
        sandbox.state.seed_mandate(
            mandate_id=row["mandate_id"],
            customer_id=row["customer_id"],
            status="ACTIVE",
            max_amount=row["max_amount"],
            amount_rule=row["amount_rule"],
            payment_method_type=row["payment_method_type"],
            frequency=row["frequency"],
        )
    inject_faults(sandbox)
    end = clock.now + timedelta(days=days)
    revoke_at = clock.now + timedelta(days=days // 2)
    services = (app.debits(), app.orders(), app.notifications())
    events = app.webhook_events()
    day_shown = clock.now.date()
    passes = 0
    while clock.now < end:
        if clock.now >= revoke_at and sandbox.state.mandates["wk02"].status == "ACTIVE":
            # The customer revokes it in their UPI app: Juspay sends MANDATE_REVOKED.
            sandbox.state.mandates["wk02"].status = "REVOKED"
            sandbox.state.emit_mandate(sandbox.state.mandates["wk02"], "MANDATE_REVOKED")
        run_tick(
            app.sessions,
            debits=services[0],
            orders=services[1],
            notifications=services[2],
            now=clock.now,
            also={"webhooks": lambda: process_pending(app.sessions, events, now=clock.now)},
        )
        passes += 1
        nxt = _next_due(app, clock.now)
        step = min(nxt or end, clock.now + timedelta(hours=6), end)
        clock.now = max(step, clock.now + timedelta(minutes=1))
        sandbox.state.clock.set(clock.now)
        if not quiet and clock.now.date() != day_shown:
            counts = debit_counts(app)
            click.echo(
                f"{day_shown}  charged {counts['CHARGED']:>3}  pending {counts['PENDING']:>3}  "
                f"retrying {counts['RETRY_SCHEDULED']:>2}  failed {counts['FAILED']:>2}  "
                f"skipped {counts['SKIPPED']:>2}  review {counts['MANUAL_REVIEW']:>2}"
            )
            day_shown = clock.now.date()
    summary(app, sandbox.state.charges(), passes=passes)


def summary(
    app: Container,
    ledger: list[dict[str, Any]],
    *,
    passes: int | None,
    until: datetime | None = None,
) -> None:
    """The books check both demos end on: billing's charges against the sandbox's `ledger`
    (debits planned up to `until`, all when None); raises when they disagree."""
    counts = debit_counts(app, until)
    with app.sessions() as session:
        charged_total = session.scalar(
            select(func.coalesce(func.sum(Debit.amount), 0)).where(Debit.state == "CHARGED")
        )
        unscheduled = session.scalar(
            select(func.count()).select_from(Mandate).where(Mandate.plan_amount.is_(None))
        )
        retried = session.scalar(
            select(func.count()).select_from(Debit).where(Debit.state == "CHARGED", Debit.tries > 1)
        )
        reconciled = session.scalar(
            select(func.count(func.distinct(DebitHistory.debit_id))).where(
                DebitHistory.to_state == "UNKNOWN"
            )
        )
        revoked = session.scalars(select(Mandate.mandate_id).where(Mandate.status == "REVOKED"))
        revoked_ids = ", ".join(revoked) or "none"
        hooks = dict(
            session.execute(
                select(WebhookEvent.state, func.count()).group_by(WebhookEvent.state)
            ).all()
        )
    ledger_total = sum((Decimal(str(c["amount"])) for c in ledger), Decimal(0))
    per_order = Counter(c["order_id"] for c in ledger)
    click.echo("\nsummary")
    if passes is not None:
        click.echo(f"  scheduling passes:      {passes}")
    click.echo(
        "  debits by state:        " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    click.echo(f"  unscheduled mandates:   {unscheduled} (VARIABLE without a plan amount)")
    click.echo(f"  charged after a retry:  {retried} (soft declines, failed pre-debit notices)")
    click.echo(f"  reconciled by status:   {reconciled} (timeouts, dropped connections)")
    click.echo(f"  mandates revoked:       {revoked_ids} (the customer revoked it in the app)")
    click.echo(
        "  webhooks received:      " + ", ".join(f"{k} {v}" for k, v in sorted(hooks.items()))
    )
    click.echo(f"  billing charged:        {counts['CHARGED']} debits, {charged_total} INR")
    click.echo(f"  sandbox ledger:         {len(ledger)} charges, {ledger_total} INR")
    same = counts["CHARGED"] == len(ledger) and Decimal(str(charged_total)) == ledger_total
    once = all(n == 1 for n in per_order.values())
    click.echo(f"  books agree:            {'yes' if same else 'NO'}")
    click.echo(f"  charged exactly once:   {'yes' if once else 'NO'}")
    if not (same and once):
        raise click.ClickException("the books do not agree with the gateway's ledger")
