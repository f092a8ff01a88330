"""`billing demo`: the whole system on embedded defaults against the bundled sandbox."""

from __future__ import annotations

from pathlib import Path

import click

from billing.demo.simulation import run_demo


@click.command()
@click.option("--days", default=35, show_default=True, type=click.IntRange(1, 400))
@click.option(
    "--dir",
    "workdir",
    default=".demo",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
)
@click.option("--quiet", is_flag=True, help="Only the final summary.")
def demo(days: int, workdir: Path, quiet: bool) -> None:
    """Run the whole system for DAYS simulated days against the bundled sandbox."""
    run_demo(days, workdir, quiet=quiet)
