"""`billing payouts`: the payout registry (track, import, list, show) and `resume`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from billing.cli.common import JobError, container, echo_json, echo_table
from billing.domain.errors import InvalidField
from billing.services.payouts import service


def _secret_option(value: str | None) -> str | None:
    """`-` reads the value from stdin, so a card number need not sit in the shell history."""
    if value == "-":
        return sys.stdin.readline().strip()
    return value


def _usage(problem: InvalidField) -> click.UsageError:
    """`--card-number: expected 12 to 19 digits`, `--sender-details: details.name: required`."""
    top, _, rest = problem.field.partition(".")
    where = f"{rest}: " if rest else ""
    return click.UsageError(f"--{top.replace('_', '-')}: {where}{problem.reason}")


@click.group()
def payouts() -> None:
    """Payout orders and the retries of their failed PLAIN_CARD fulfillments."""


@payouts.command()
@click.argument("order_id")
@click.option("--customer-id", required=True, help="The order's customer (x-routing-id).")
@click.option("--card-token", help="The card's network token (preferred); `-` reads stdin.")
@click.option("--card-number", help="The card number (stored encrypted); `-` reads stdin.")
@click.option("--expiry", help="MM/YYYY, with --card-number.")
@click.option("--name", help="The card holder's name, with --card-number.")
@click.option("--sender-details", help="JSON {type, details{...}} for rails that need it.")
@click.option(
    "--needs-cvv", is_flag=True, help="The rail wants a CVV: asked of BILLING_CVV_PROVIDER."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def track(
    ctx: click.Context,
    order_id: str,
    customer_id: str,
    card_token: str | None,
    card_number: str | None,
    expiry: str | None,
    name: str | None,
    sender_details: str | None,
    needs_cvv: bool,
    as_json: bool,
) -> None:
    """Track a payout order: read it from Juspay, store it, attach the card for retries."""
    if card_token and card_number:
        raise click.UsageError("give --card-token or --card-number, not both")
    row: dict[str, object] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "card_token": _secret_option(card_token),
        "card_number": _secret_option(card_number),
        "expiry": expiry,
        "name": name,
        "sender_details": sender_details,
        "needs_cvv": needs_cvv,
    }
    try:
        registration = service.parse_registration({k: v for k, v in row.items() if v})
    except InvalidField as problem:
        raise _usage(problem) from None
    report = container(ctx).payouts().track(registration)
    if as_json:
        echo_json(service.describe(container(ctx).sessions, order_id)[0])
        return
    click.echo(f"payout order {report.order_id}: {report.status}")
    for fulfillment_id, kind, rail, status, attempt_state in report.fulfillments:
        click.echo(
            f"  {fulfillment_id}  {kind or '-'} on {rail or '-'}  {status}  "
            f"attempts: {attempt_state}"
        )
    if registration.card is not None:
        attached = ", ".join(report.card_attached_to) or "none (no PLAIN_CARD fulfillment)"
        click.echo(f"card attached to: {attached}")


@payouts.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Track payout orders from JSON lines (the fields of `track`, snake_case); bad rows are
    reported as `line N: field: reason` and the command exits 1."""
    report = container(ctx).payouts().import_rows(service.read_registrations(file))
    if as_json:
        echo_json({"rows": report.rows, "tracked": report.tracked, "errors": report.errors})
    else:
        for error in report.errors:
            click.echo(error, err=True)
        click.echo(f"{report.rows} rows: {report.tracked} tracked, {len(report.errors)} bad")
    if report.errors:
        raise JobError("")


def _rows(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "order_id": o["order_id"],
            "customer_id": o["customer_id"],
            **f,
            "attempts": f"{f['attempts_made']}/{f['max_attempts']}",
        }
        for o in orders
        for f in o["fulfillments"]
    ]


@payouts.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Tracked payout orders, one line per fulfillment, with their attempts."""
    sessions = container(ctx).sessions
    orders = service.describe(sessions)
    halt = service.payout_halt(sessions)
    if as_json:
        echo_json({"halted": halt, "orders": orders})
        return
    if halt:
        click.echo(f"PAYOUT ATTEMPTS HALTED {halt}", err=True)
    echo_table(
        _rows(orders),
        [
            "order_id",
            "fulfillment_id",
            "beneficiary_type",
            "rail",
            "status",
            "failure_code",
            "card",
            "attempt_state",
            "attempts",
            "next_attempt_at",
            "stop_reason",
        ],
    )


@payouts.command()
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, order_id: str, as_json: bool) -> None:
    """One payout order with its fulfillments and every attempt."""
    (order,) = service.describe(container(ctx).sessions, order_id)
    if as_json:
        echo_json(order)
        return
    for key in ("order_id", "customer_id", "amount", "status", "next_check_at", "last_error"):
        value = order[key]
        click.echo(f"{key:>14}: {'-' if value is None else value}")
    for f in order["fulfillments"]:
        click.echo(
            f"\nfulfillment {f['fulfillment_id']} ({f['beneficiary_type'] or '-'} on "
            f"{f['rail'] or '-'}, {f['amount']}): {f['status']} {f['failure_code'] or ''}".rstrip()
        )
        click.echo(
            f"  card {f['card'] or '-'}, attempts {f['attempts_made']}/{f['max_attempts']}, "
            f"{f['attempt_state']}" + (f" ({f['stop_reason']})" if f["stop_reason"] else "")
        )
        if f["attempts"]:
            echo_table(
                f["attempts"],
                ["number", "state", "counted", "error_code", "outcome", "at", "error_message"],
            )
        if f["transactions"]:
            echo_table(
                f["transactions"],
                ["ref", "status", "rail", "response_code", "created_at", "response_message"],
            )


@payouts.command()
@click.argument("order_id", required=False)
@click.pass_context
def resume(ctx: click.Context, order_id: str | None) -> None:
    """Lift a 401 halt (after fixing the credentials); with ORDER_ID, also re-arm that order's
    stopped fulfillments that may still be attempted, and those in review (an attempt whose
    outcome never came: only after Juspay confirmed it did not pay)."""
    c = container(ctx)
    count = service.resume(c.sessions, now=c.clock(), order_id=order_id)
    click.echo(f"{count} fulfillments due for an attempt")
