"""`billing sandbox`: the bundled Juspay sandbox (`billing status` is in status.py)."""

from __future__ import annotations

from pathlib import Path

import click

from billing.domain.errors import InvalidField
from billing.services.mandates.files import read_rows


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8181, show_default=True, type=int)
@click.option(
    "--api-key",
    envvar="BILLING_JUSPAY_API_KEY",
    default="sandbox_api_key",
    show_default=True,
    help="The key it accepts (default: BILLING_JUSPAY_API_KEY).",
)
@click.option(
    "--merchant-id",
    envvar="BILLING_JUSPAY_MERCHANT_ID",
    default="sandbox_merchant",
    show_default=True,
)
@click.option("--webhook-url", help="Where to POST webhooks (EC; payouts go to URL/payouts).")
@click.option("--webhook-username", envvar="BILLING_WEBHOOK_USERNAME")
@click.option("--webhook-password", envvar="BILLING_WEBHOOK_PASSWORD")
@click.option(
    "--private-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="PEM of the sandbox's RSA key (default: a fresh one each start).",
)
@click.option(
    "--mandates",
    "mandates_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A mandate file (as for `billing mandates import`): Juspay holds these mandates.",
)
def sandbox(
    host: str,
    port: int,
    api_key: str,
    merchant_id: str,
    webhook_url: str | None,
    webhook_username: str | None,
    webhook_password: str | None,
    private_key: Path | None,
    mandates_file: Path | None,
) -> None:
    """Serve the bundled Juspay sandbox (a test double: never point production at it)."""
    from billing.sandbox.server import serve  # noqa: PLC0415 - only this command needs it

    mandates = sandbox_mandates(mandates_file) if mandates_file is not None else []
    if mandates_file is not None:
        click.echo(f"mandates held: {len(mandates)} (from {mandates_file})")
    click.echo(f"Juspay sandbox on http://{host}:{port} (control API under /sandbox/)")
    serve(
        host,
        port,
        api_key=api_key,
        merchant_id=merchant_id,
        webhook_url=webhook_url,
        webhook_username=webhook_username,
        webhook_password=webhook_password,
        private_key_pem_file=private_key,
        mandates=mandates,
    )


# Columns of a mandate file that are billing's, not Juspay's (the plan amount).
_NOT_JUSPAYS = frozenset({"amount"})


def sandbox_mandates(path: Path) -> list[dict[str, object]]:
    """The mandates of a merchant's file (`billing mandates import` formats, same parser) as
    the sandbox's seeds: Juspay holds what the merchant imported, ACTIVE unless the file says.

    A row that cannot be read, or that the sandbox's own checks refuse, is one line on stderr
    (`FILE: line N: field: reason`) and left out; the sandbox starts with the other rows."""
    from billing.sandbox.state import SandboxState  # noqa: PLC0415 - validates like the seeding

    probe = SandboxState()
    specs: list[dict[str, object]] = []
    for line, row in read_rows(path):
        if isinstance(row, InvalidField):
            click.echo(f"{path}: line {line}: {row.field}: {row.reason}", err=True)
            continue
        spec = {k: v for k, v in row.items() if v not in (None, "") and k not in _NOT_JUSPAYS}
        try:
            probe.seed_mandate(spec)
        except ValueError as exc:
            click.echo(f"{path}: line {line}: {exc}", err=True)
            continue
        specs.append(spec)
    return specs
