"""`billing debits`: list, show and present debits."""

from __future__ import annotations

from datetime import date
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.cli.common import container, echo_json, echo_table
from billing.services import NotFoundError
from billing.services.debits.execution import cancel_debit
from billing.services.debits.planning import present_debit
from billing.store.models import Debit, DebitHistory, Mandate, Order


def debit_row(debit: Debit, mandate_id: str) -> dict[str, Any]:
    return {
        "id": debit.id,
        "mandate_id": mandate_id,
        "cycle": debit.cycle,
        "state": debit.state,
        "amount": debit.amount,
        "currency": debit.currency,
        "flow": debit.flow,
        "window": f"{debit.window_first_day}..{debit.window_last_day}",
        "planned_at": debit.planned_at,
        "due_at": debit.due_at,
        "tries": debit.tries,
    }


@click.group()
def debits() -> None:
    """Debits: one per mandate and cycle, each with its orders and history."""


@debits.command("list")
@click.option("--state", help="Only debits in this state (e.g. PLANNED, PENDING, CHARGED).")
@click.option("--mandate", "mandate_id", help="Only this mandate's debits.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(
    ctx: click.Context, state: str | None, mandate_id: str | None, limit: int, as_json: bool
) -> None:
    """List debits, most recently planned first."""
    statement = (
        select(Debit, Mandate.mandate_id)
        .join(Mandate, Mandate.id == Debit.mandate_pk)
        .order_by(Debit.planned_at.desc(), Debit.id.desc())
        .limit(limit)
    )
    if state:
        statement = statement.where(Debit.state == state.upper())
    if mandate_id:
        statement = statement.where(Mandate.mandate_id == mandate_id)
    with container(ctx).sessions() as session:
        rows = [debit_row(d, m) for d, m in session.execute(statement)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(
            rows,
            [
                "id",
                "mandate_id",
                "cycle",
                "state",
                "amount",
                "flow",
                "window",
                "planned_at",
                "tries",
            ],
        )


def _debit_for(session: Session, ref: str) -> int:
    """A debit id, or one of its order ids (what a log line, Juspay or the customer shows)."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():
        found = session.scalar(select(Debit.id).where(Debit.id == int(ref)))
        if found is not None:
            return found
    by_order = session.scalar(select(Order.debit_id).where(Order.order_id == ref))
    if by_order is None:
        raise NotFoundError(f"no debit has the id or order id {ref!r}")
    return by_order


@debits.command()
@click.argument("ref", metavar="DEBIT_ID|ORDER_ID")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One debit with its orders and its full history: why it was or was not charged.

    Give the debit's id or the order id of any of its tries."""
    with container(ctx).sessions() as session:
        debit_id = _debit_for(session, ref)
        found = session.execute(
            select(Debit, Mandate.mandate_id)
            .join(Mandate, Mandate.id == Debit.mandate_pk)
            .where(Debit.id == debit_id)
        ).one_or_none()
        if found is None:
            raise NotFoundError(f"debit {debit_id} does not exist")
        debit, mandate_id = found
        info = debit_row(debit, mandate_id)
        orders = [
            {
                "order_id": o.order_id,
                "try": o.try_number,
                "amount": o.amount,
                "state": o.state,
                "gateway_status": o.gateway_status,
                "error_code": o.error_code,
                "sent_at": o.sent_at,
                "next_check_at": o.next_check_at,
            }
            for o in session.scalars(
                select(Order).where(Order.debit_id == debit_id).order_by(Order.try_number)
            )
        ]
        history = [
            {
                "at": h.at,
                "from": h.from_state,
                "to": h.to_state,
                "cause": h.cause,
                "order_id": h.order_id,
            }
            for h in session.scalars(
                select(DebitHistory)
                .where(DebitHistory.debit_id == debit_id)
                .order_by(DebitHistory.id)
            )
        ]
    if as_json:
        echo_json({**info, "orders": orders, "history": history})
        return
    for key, value in info.items():
        click.echo(f"{key:>12}: {'-' if value is None else value}")
    click.echo("\norders:")
    echo_table(
        orders, ["order_id", "try", "amount", "state", "gateway_status", "error_code", "sent_at"]
    )
    click.echo("\nhistory:")
    echo_table(history, ["at", "from", "to", "cause", "order_id"])


@debits.command()
@click.argument("mandate_id")
@click.option("--amount", required=True, help="The amount to debit (validated by the terms).")
@click.option(
    "--on",
    "on",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Local date; default: the first day from today that the flow's notice allows.",
)
@click.pass_context
def present(ctx: click.Context, mandate_id: str, amount: str, on: Any) -> None:
    """Present a debit for an ASPRESENTED or ONETIME mandate."""
    c = container(ctx)
    day: date | None = on.date() if on is not None else None
    debit = present_debit(c.sessions, c.planning, mandate_id, amount, on=day, now=c.clock())
    click.echo(
        f"debit {debit.id} presented: mandate {mandate_id}, cycle {debit.cycle}, "
        f"{debit.amount} {debit.currency} on {debit.window_first_day}, flow {debit.flow}"
    )


@debits.command()
@click.argument("debit_id", type=int)
@click.pass_context
def cancel(ctx: click.Context, debit_id: int) -> None:
    """Stop a debit: locally if nothing was sent, at Juspay if its execution is scheduled there."""
    c = container(ctx)
    result = cancel_debit(c.sessions, lambda: c.gateway, debit_id, now=c.clock())
    click.echo(f"debit {debit_id}: {result}")
