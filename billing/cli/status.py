"""`billing status`: is every part running, and is work moving? Exit 1 if anything fails.

Checks, each `ok` or failing with one line that says what to do:
database (reachable, schema at head), broker (a real connection for the configured transport,
queue depths), workers (one answering per queue), beat (its last dispatch is recent), debits
(none overdue for long), webhooks (none waiting for long), payouts (not halted), gateway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from billing.bootstrap import Container
from billing.cli.common import JobError, container, echo_json
from billing.cli.errors import describe_database_error, first_line, shown_url
from billing.gateway import AuthenticationFailed, GatewayError, OrderNotFound
from billing.services.health import BEAT_DISPATCH, STUCK_AFTER, backlog, last_heartbeat
from billing.store import migrate

Part = dict[str, Any]
NOT_CHECKED = "not checked:"
# The dispatch is sent by beat and run by a worker on housekeeping: either may be missing.
BEAT_HINT = "is billing beat running (and a worker on housekeeping)?"
NO_DISPATCH = f"no dispatch recorded: {BEAT_HINT}"


def _database(c: Container) -> Part:
    try:
        with c.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(c.engine)
    except DBAPIError as exc:
        return {"ok": False, "error": describe_database_error(exc)}
    head = migrate.head_revision(c.settings.database_url)
    part: Part = {"ok": current == head, "revision": current, "head": head}
    if current != head:
        part["error"] = "schema not at head: run billing db upgrade"
    return part


def _broker(c: Container, queues: tuple[str, ...], timeout: float) -> Part:
    from billing.tasks.health import queue_depths  # noqa: PLC0415 - Celery only for status

    url = c.settings.broker_url
    try:
        depths = queue_depths(url, queues, timeout)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return {
            "ok": False,
            "url": shown_url(url),
            "error": f"unreachable ({first_line(exc)}): start it or fix BILLING_BROKER_URL",
        }
    return {"ok": True, "url": shown_url(url), "waiting": depths}


def _workers(c: Container, queues: tuple[str, ...], timeout: float) -> Part:
    from billing.tasks.health import workers_by_queue  # noqa: PLC0415

    answered = workers_by_queue(queues, timeout, c.sessions, broker_url=c.settings.broker_url)
    silent = [queue for queue, hosts in answered.items() if not hosts]
    part: Part = {"ok": not silent, "queues": answered}
    if silent:
        part["error"] = (
            f"no worker answering on {', '.join(silent)} within {timeout:g}s: "
            f"start billing worker -Q {','.join(silent)}"
        )
    return part


def _beat(c: Container, now: datetime) -> Part:
    # Beat sends billing.beat.dispatch every BILLING_BEAT_DISPATCH_EVERY; allow a few misses.
    late_after = 4 * c.settings.beat_dispatch_every + timedelta(seconds=30)
    try:
        at, _ = last_heartbeat(c.sessions, BEAT_DISPATCH)
    except LookupError:
        return {
            "ok": False,
            "last_dispatch": None,
            "error": NO_DISPATCH,
        }
    age = now - at
    part: Part = {"ok": age <= late_after, "last_dispatch": at}
    if age > late_after:
        part["error"] = f"last dispatch {_age(age)} ago: {BEAT_HINT}"
    return part


def _backlog(c: Container, now: datetime) -> tuple[Part, Part, Part]:
    b = backlog(c.sessions, now=now)
    debits: Part = {"ok": True, "by_state": b.debits, "overdue": b.overdue}
    if b.oldest_overdue is not None:
        debit_id, due_at = b.oldest_overdue
        debits["oldest_overdue"] = {"debit_id": debit_id, "due_at": due_at}
        if now - due_at > STUCK_AFTER:
            debits["ok"] = False
            debits["error"] = (
                f"debit {debit_id} overdue for {_age(now - due_at)} "
                f"({b.overdue} overdue): are workers and beat running?"
            )
    webhooks: Part = {
        "ok": True,
        "waiting": b.webhooks_waiting,
        "oldest_waiting": b.oldest_webhook,
        "poisoned": b.webhooks_poisoned,
    }
    if b.oldest_webhook is not None and now - b.oldest_webhook > STUCK_AFTER:
        webhooks["ok"] = False
        webhooks["error"] = (
            f"{b.webhooks_waiting} unprocessed, the oldest for {_age(now - b.oldest_webhook)}: "
            "is a worker on the webhooks queue running?"
        )
    payouts: Part = {"ok": b.payout_halt is None}
    if b.payout_halt:
        payouts["error"] = (
            f"payout attempts halted {b.payout_halt}: fix the key, then billing payouts resume"
        )
    return debits, webhooks, payouts


def _gateway(c: Container) -> Part:
    try:
        c.gateway.order_status("billingstatusprobe", customer_id="billing-status")
    except OrderNotFound:
        return {"ok": True, "url": c.settings.juspay_base_url}
    except AuthenticationFailed:
        return {"ok": False, "url": c.settings.juspay_base_url, "error": "API key refused"}
    except GatewayError as exc:
        return {"ok": False, "url": c.settings.juspay_base_url, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - missing settings, for instance
        return {"ok": False, "error": first_line(exc)}
    return {"ok": True, "url": c.settings.juspay_base_url}


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _summary(name: str, part: Part) -> str:
    if part.get("error"):
        return str(part["error"])
    if name == "database":
        return f"at head {part['revision']}"
    if name == "broker":
        waiting = part["waiting"]
        return f"{part['url']}  waiting: " + ", ".join(
            f"{q} {'-' if n is None else n}" for q, n in waiting.items()
        )
    if name == "workers":
        return "; ".join(f"{q}: {', '.join(h)}" for q, h in part["queues"].items())
    if name == "beat":
        return f"last dispatch {part['last_dispatch']:%Y-%m-%d %H:%M:%S} UTC"
    if name == "debits":
        by_state = ", ".join(f"{k} {v}" for k, v in sorted(part["by_state"].items()))
        return f"{part['overdue']} overdue; {by_state or 'none'}"
    if name == "webhooks":
        return f"{part['waiting']} waiting, {part['poisoned']} poisoned"
    return str(part.get("url", ""))


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--timeout",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds to wait for the broker and for the workers' answers.",
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, timeout: float) -> None:
    """Is every part running and is work moving? Exit 1 if any check fails.

    Database at head, broker reachable, a worker answering on each queue, beat dispatching,
    no debit overdue or webhook unprocessed for long, payouts not halted (a 401 from the
    Attempt API: fix the key, then `billing payouts resume`), the gateway answering."""
    from billing.tasks.worker import QUEUES  # noqa: PLC0415 - Celery only for status

    c = container(ctx)
    now = c.clock()
    skipped = {"ok": False}
    report: dict[str, Part] = {"database": _database(c)}
    report["broker"] = _broker(c, QUEUES, timeout)
    at_head = report["database"]["ok"]
    if report["broker"]["ok"] and at_head:
        report["workers"] = _workers(c, QUEUES, timeout)
    else:
        report["workers"] = {**skipped, "error": f"{NOT_CHECKED} needs the broker and database"}
    if at_head:
        report["beat"] = _beat(c, now)
        report["debits"], report["webhooks"], report["payouts"] = _backlog(c, now)
    else:
        for name in ("beat", "debits", "webhooks", "payouts"):
            report[name] = {**skipped, "error": f"{NOT_CHECKED} needs the database at head"}
    report["gateway"] = _gateway(c)
    healthy = all(part["ok"] for part in report.values())
    if as_json:
        echo_json({"healthy": healthy, **report})
    else:
        for name, part in report.items():
            line = f"{name:>9}: {'ok  ' if part['ok'] else 'FAIL'}  {_summary(name, part)}"
            click.echo(line.rstrip())
    if not healthy:
        raise JobError("")
