"""`billing tick`, `billing worker`, `billing beat`: running the scheduling pass."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from billing.cli.common import JobError, container, echo_json
from billing.cli.errors import UPGRADE, describe_database_error, first_line
from billing.cli.mandates import parse_now
from billing.services.tick import run_tick
from billing.services.webhook_events import process_pending
from billing.store import migrate
from billing.telemetry import metrics

if TYPE_CHECKING:
    from celery import Celery


@click.command()
@click.option("--now", "now_text", help="Run as if at this ISO date-time (default: now).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tick(ctx: click.Context, now_text: str | None, as_json: bool) -> None:
    """One full scheduling pass, synchronously: plan, notify, execute, poll, retry, expire."""
    c = container(ctx)
    now = parse_now(now_text)
    if now is not None:
        c.clock = lambda: now
    now_ = c.clock()
    report = run_tick(
        c.sessions,
        debits=c.debits(),
        orders=c.orders(),
        notifications=c.notifications(),
        now=now_,
        also={
            "payouts": c.payouts().run_due,
            "webhook events": lambda: process_pending(c.sessions, c.webhook_events(), now=now_),
        },
    )
    at = c.clock()
    steps = dict(sorted(report.steps.items()))
    if as_json:
        echo_json(
            {
                "at": at,
                "planned": report.planned,
                "expired": report.expired,
                "reclaimed": report.reclaimed,
                "rounds": report.rounds,
                "steps": steps,
                "extra": report.extra,
            }
        )
        return
    click.echo(
        f"tick at {at:%Y-%m-%d %H:%M:%S} UTC: planned {report.planned}, "
        f"expired {report.expired}, reclaimed {report.reclaimed}"
    )
    for step, count in steps.items():
        click.echo(f"  {count:>6}  {step}")
    for name, count in report.extra.items():
        click.echo(f"  {count:>6}  {name} steps")


def preflight(ctx: click.Context, app: Celery) -> None:
    """Fail at start, in one line, when the database or the broker cannot be used: a worker or
    beat that started anyway would only log the same error on every task (or every send)."""
    from kombu.utils.url import maybe_sanitize_url  # noqa: PLC0415 - Celery-only commands

    c = container(ctx)
    shown = c.engine.url.render_as_string(hide_password=True)
    try:
        current = migrate.current_revision(c.engine)
    except DBAPIError as exc:
        raise JobError(describe_database_error(exc)) from None
    except SQLAlchemyError as exc:
        raise JobError(f"database {shown}: {first_line(exc)}") from None
    head = migrate.head_revision(c.settings.database_url)
    if current != head:
        at = current or "empty"
        raise JobError(f"database {shown}: schema not at head ({at}): {UPGRADE}")
    broker = maybe_sanitize_url(c.settings.broker_url)
    for attempt in range(3):
        try:
            _open_broker(app)
        except Exception as exc:  # noqa: BLE001 - any failure here is "cannot start", one line
            # Twice more: a worker and beat starting together on the embedded broker race to
            # create its tables (kombu's create_all: "table kombu_message already exists").
            if attempt == 2:
                raise JobError(
                    f"broker unreachable at {broker} ({first_line(exc)}): "
                    "start it or fix BILLING_BROKER_URL"
                ) from None
            time.sleep(0.5)
        else:
            return


def _open_broker(app: Celery) -> None:
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=1)
        channel = connection.default_channel
        for queue in app.conf.task_queues or ():
            queue(channel).declare()  # the transport really opens (tables, engine)


def _run_celery(app: Celery, argv: list[str], what: str) -> None:
    # Celery.start returns click's exit code (celery-types says None).
    start: Callable[[list[str]], int | None] = app.start
    code = start(argv)
    if code:
        raise JobError(f"{what} stopped with exit code {code} (its log above says why)")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--queues", "-Q", default="gateway,webhooks,housekeeping", show_default=True)
@click.option(
    "--concurrency",
    "-c",
    type=int,
    help="Worker processes (default: twice the CPU count: a process waiting on Juspay leaves "
    "its core to the other).",
)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_context
def worker(ctx: click.Context, queues: str, concurrency: int | None, loglevel: str) -> None:
    """Start a Celery worker with the project's app (extra arguments go to Celery).

    Exits 1 with one line when the database or broker cannot be used, or when Celery stops on
    an unrecoverable error."""
    from billing.tasks.worker import app  # noqa: PLC0415 - Celery only for this command

    # Fail at start, in one line, rather than on the first task that calls Juspay.
    settings = container(ctx).settings
    settings.require("juspay_api_key", "juspay_merchant_id")
    if settings.metrics_port:
        # Before the start checks: they may count (and so import prometheus_client), and the
        # multiprocess directory must be chosen before that, for the pool's children to share.
        metrics.use_multiprocess_dir()
    preflight(ctx, app)
    concurrency = concurrency or 2 * (os.cpu_count() or 1)
    argv = ["worker", "-Q", queues, "--loglevel", loglevel, "-E", "--concurrency",
            str(concurrency), *ctx.args]  # fmt: skip
    _run_celery(app, argv, "the worker")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_context
def beat(ctx: click.Context, loglevel: str) -> None:
    """Start celery beat with the project's schedule (UTC; extra arguments go to Celery).

    It plans debits once as it starts, then every BILLING_BEAT_PLAN_EVERY."""
    from billing.tasks.worker import app  # noqa: PLC0415

    preflight(ctx, app)
    _run_celery(app, ["beat", "--loglevel", loglevel, *ctx.args], "beat")
