"""`billing sandbox`: the bundled Juspay sandbox (`billing status` is in status.py)."""

from __future__ import annotations

from pathlib import Path

import click


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
def sandbox(
    host: str,
    port: int,
    api_key: str,
    merchant_id: str,
    webhook_url: str | None,
    webhook_username: str | None,
    webhook_password: str | None,
    private_key: Path | None,
) -> None:
    """Serve the bundled Juspay sandbox (a test double: never point production at it)."""
    from billing.sandbox.server import serve  # noqa: PLC0415 - only this command needs it

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
    )
