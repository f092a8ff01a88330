"""`billing tick`, `billing worker`, `billing beat`: running the scheduling pass."""

from __future__ import annotations

import os

import click

from billing.cli.common import container, echo_json
from billing.cli.mandates import parse_now
from billing.services.tick import run_tick
from billing.services.webhook_events import process_pending


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
    """Start a Celery worker with the project's app (extra arguments go to Celery)."""
    from billing.tasks.worker import app  # noqa: PLC0415 - Celery only for this command

    # Fail at start, in one line, rather than on the first task that calls Juspay.
    container(ctx).settings.require("juspay_api_key", "juspay_merchant_id")
    concurrency = concurrency or 2 * (os.cpu_count() or 1)
    argv = ["worker", "-Q", queues, "--loglevel", loglevel, "-E", "--concurrency",
            str(concurrency), *ctx.args]  # fmt: skip
    app.worker_main(argv)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_context
def beat(ctx: click.Context, loglevel: str) -> None:
    """Start celery beat with the project's schedule (UTC; extra arguments go to Celery)."""
    from billing.tasks.worker import app  # noqa: PLC0415

    app.start(["beat", "--loglevel", loglevel, *ctx.args])
