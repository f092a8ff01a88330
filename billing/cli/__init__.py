"""The `billing` command (SPEC §11): one entry point, `--help` everywhere, exit 0 / 1 / 2.

Errors are one line on stderr (`error: ...`); `--debug` adds the traceback. Usage mistakes
exit 2 (click's convention), a failed job exits 1.
"""

from __future__ import annotations

import logging
import sys
import traceback

import click

from billing.cli.common import Context, JobError
from billing.cli.db import db
from billing.cli.debits import debits
from billing.cli.demo import demo
from billing.cli.errors import describe
from billing.cli.mandates import mandates, schedule
from billing.cli.ops import sandbox
from billing.cli.payouts import payouts
from billing.cli.run import beat, tick, worker
from billing.cli.status import status
from billing.cli.webhooks import webhooks
from billing.telemetry import logs


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="billing")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Recurring billing on Juspay mandates: plan, notify, debit exactly once, reconcile."""
    try:
        logs.configure(level=logging.DEBUG if debug else logging.WARNING)
    except ValueError as exc:  # BILLING_LOG_FORMAT
        raise JobError(str(exc)) from None
    ctx.obj = Context(debug=debug)


cli.add_command(db)
cli.add_command(mandates)
cli.add_command(schedule)
cli.add_command(debits)
cli.add_command(payouts)
cli.add_command(tick)
cli.add_command(worker)
cli.add_command(beat)
cli.add_command(sandbox)
cli.add_command(status)
cli.add_command(demo)
cli.add_command(webhooks)


def main(argv: list[str] | None = None) -> None:
    """Console script: run the group and turn any failure into one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="billing", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except JobError as exc:
        if str(exc):
            click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line: one clear line, exit 1
        if debug:
            traceback.print_exc()
        click.echo(f"error: {describe(exc)}", err=True)
        sys.exit(1)
