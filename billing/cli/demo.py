"""`billing demo`: the whole system against the bundled sandbox, simulated or live."""

from __future__ import annotations

from pathlib import Path

import click

from billing.demo.simulation import run_demo


@click.command()
@click.option("--days", default=35, show_default=True, type=click.IntRange(1, 400))
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to keep its files [default: .demo; --live: a new temporary directory].",
)
@click.option("--quiet", is_flag=True, help="Only the final summary.")
@click.option(
    "--live",
    is_flag=True,
    help="Real processes on the real clock: sandbox, webhook receiver, worker, beat (and Flower).",
)
@click.option(
    "--size",
    default=300,
    show_default=True,
    type=click.IntRange(10, 100_000),
    help="--live: mandates due today.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=300,
    show_default=True,
    type=click.IntRange(10, 3600),
    help="--live: seconds to wait for today's debits to come to rest.",
)
@click.option(
    "--broker",
    "broker_url",
    help="--live: a Redis or RabbitMQ URL instead of the embedded broker (Flower sees it).",
)
def demo(
    days: int,
    workdir: Path | None,
    quiet: bool,
    live: bool,
    size: int,
    timeout_s: int,
    broker_url: str | None,
) -> None:
    """Run the whole system against the bundled sandbox: DAYS simulated days (default), or
    --live: the real processes on the embedded defaults, a book of SIZE mandates due today."""
    if live:
        from billing.demo.live import run_live  # noqa: PLC0415 - only the live demo needs it

        run_live(size, workdir, float(timeout_s), broker_url)
        return
    run_demo(days, workdir or Path(".demo"), quiet=quiet)
