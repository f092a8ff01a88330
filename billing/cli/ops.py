"""`billing sandbox` (the bundled Juspay sandbox) and `billing status` (health and counts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import text

from billing.cli.common import JobError, container, echo_json
from billing.domain.errors import InvalidField
from billing.gateway import AuthenticationFailed, GatewayError, OrderNotFound
from billing.services.mandates.files import read_rows
from billing.services.payouts.service import payout_halt
from billing.store import migrate
from billing.store.debits import counts_by_state


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


def _check_database(ctx: click.Context) -> dict[str, Any]:
    c = container(ctx)
    try:
        with c.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(c.engine)
        head = migrate.head_revision(c.settings.database_url)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return {"ok": False, "error": str(exc).splitlines()[0]}
    with c.sessions() as session:
        counts = counts_by_state(session) if current == head else {}
    halt = payout_halt(c.sessions) if current == head else None
    return {
        "ok": current == head and halt is None,
        "revision": current,
        "head": head,
        "debits": counts,
        **({"error": f"payout attempts halted {halt}"} if halt else {}),
    }


def _check_broker(ctx: click.Context) -> dict[str, Any]:
    from kombu import Connection  # noqa: PLC0415

    url = container(ctx).settings.broker_url
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else repr(exc)}
    return {"ok": True}


def _check_gateway(ctx: click.Context) -> dict[str, Any]:
    c = container(ctx)
    try:
        c.gateway.order_status("billingstatusprobe", customer_id="billing-status")
    except OrderNotFound:
        return {"ok": True, "url": c.settings.juspay_base_url}
    except AuthenticationFailed:
        return {"ok": False, "url": c.settings.juspay_base_url, "error": "API key refused"}
    except GatewayError as exc:
        return {"ok": False, "url": c.settings.juspay_base_url, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - missing settings, for instance
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "url": c.settings.juspay_base_url}


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Health of the database, broker and gateway, and the debits by state. Exit 1 if unhealthy.

    Payout attempts halted by a 401 from the Attempt API count as unhealthy (a configuration
    error: fix the key, then `billing payouts resume`)."""
    report = {
        "database": _check_database(ctx),
        "broker": _check_broker(ctx),
        "gateway": _check_gateway(ctx),
    }
    healthy = all(part["ok"] for part in report.values())
    if as_json:
        echo_json({"healthy": healthy, **report})
    else:
        for name, part in report.items():
            detail = part.get("error") or part.get("url") or part.get("revision") or ""
            click.echo(f"{name:>9}: {'ok' if part['ok'] else 'FAIL'}  {detail}")
        debits = report["database"].get("debits") or {}
        if debits:
            click.echo("   debits: " + ", ".join(f"{k} {v}" for k, v in sorted(debits.items())))
    if not healthy:
        raise JobError("")
