"""`billing mandates`: the registry by hand, and `billing schedule`: the forecast."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from billing.cli.common import JobError, container, echo_json, echo_table
from billing.cli.progress import ImportProgress
from billing.domain.schedule import next_cycle
from billing.services.debits.planning import forecast
from billing.services.mandates import actions
from billing.services.mandates import registry as service
from billing.services.mandates.files import read_rows
from billing.store.models import Debit, Mandate, MandateChange


def parse_now(value: str | None) -> datetime | None:
    """`--now` as an ISO date-time; naive values are read as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO date-time, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def mandate_row(m: Mandate) -> dict[str, Any]:
    return {
        "mandate_id": m.mandate_id,
        "customer_id": m.customer_id,
        "status": m.status,
        "frequency": m.frequency,
        "rule": f"{m.rule_type} {m.rule_value}" if m.rule_type else None,
        "rule_type": m.rule_type,
        "rule_value": m.rule_value,
        "amount_rule": m.amount_rule,
        "max_amount": m.max_amount,
        "plan_amount": m.plan_amount,
        "currency": m.currency,
        "payment_method_type": m.payment_method_type,
        "start_date": m.start_date,
        "end_date": m.end_date,
        "scheduled": not service.is_unscheduled(m),
        "next_debit_at": m.next_cycle_at,
        # Why its debits are held until a sync succeeds (`billing mandates sync` lifts it).
        "held": m.hold_reason,
    }


@click.group()
def mandates() -> None:
    """The mandate registry: import, add, list, show, set-amount."""


@mandates.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate only; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_(ctx: click.Context, file: Path, dry_run: bool, as_json: bool) -> None:
    """Import mandates from JSON lines or CSV (header row); bad rows are reported, not stored."""
    c = container(ctx)
    # On a terminal, a progress line on stderr (rows, rows/s, bad so far); off one, nothing.
    progress = ImportProgress(sys.stderr)

    def report_error(problem: service.RowError) -> None:
        progress.bad_row(None if as_json else str(problem))

    try:
        report = service.import_mandates(
            c.sessions,
            progress.count(read_rows(file)),
            now=c.clock(),
            calendar=c.calendar,
            dry_run=dry_run,
            on_error=report_error,
        )
    finally:
        progress.close()
    verb = "would import" if dry_run else "imported"
    if as_json:
        echo_json(
            {
                "dry_run": dry_run,
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "bad": report.bad,
                "errors": [str(e) for e in report.errors],
                "status_kept": [str(k) for k in report.kept],
            }
        )
    else:
        click.echo(
            f"{verb} {report.rows} rows: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.bad} bad"
        )
        for kept in report.kept:  # the status held was kept, not the file's (or the file had none)
            click.echo(str(kept))
    if report.bad:
        raise JobError("")


@mandates.command()
@click.option("--mandate-id", required=True)
@click.option("--customer-id", required=True)
@click.option("--frequency", required=True)
@click.option("--rule-type")
@click.option("--rule-value")
@click.option("--amount-rule", default="VARIABLE", show_default=True)
@click.option("--max-amount", required=True)
@click.option("--amount", help="Plan amount per cycle (VARIABLE: at most max-amount).")
@click.option("--currency", default="INR", show_default=True)
@click.option("--start-date", required=True, help="ISO date, ISO date-time or epoch seconds.")
@click.option("--end-date")
@click.option("--payment-method-type", required=True, help="UPI, CARD, NB or WALLET.")
@click.option("--status", help="Default: the status held (ACTIVE for a new mandate).")
@click.pass_context
def add(ctx: click.Context, /, **fields: str | None) -> None:
    """Add one mandate (or update it: the same rules as an import row)."""
    c = container(ctx)
    report = service.add_mandate(
        c.sessions,
        {k: v for k, v in fields.items() if v is not None},
        now=c.clock(),
        calendar=c.calendar,
    )
    state = "added" if report.created else "updated" if report.updated else "unchanged"
    click.echo(f"mandate {fields['mandate_id']} {state}")


@mandates.command("list")
@click.option("--status")
@click.option("--customer", "customer_id")
@click.option("--frequency")
@click.option("--unscheduled", is_flag=True, help="Only VARIABLE mandates with no plan amount.")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(
    ctx: click.Context,
    status: str | None,
    customer_id: str | None,
    frequency: str | None,
    unscheduled: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List mandates; a live mandate without a plan amount shows as UNSCHEDULED."""
    with container(ctx).sessions() as session:
        rows = [
            mandate_row(m)
            for m in service.list_mandates(
                session,
                status=status,
                customer_id=customer_id,
                frequency=frequency,
                unscheduled=unscheduled,
                limit=limit,
            )
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        if row["plan_amount"] is None and not row["scheduled"]:
            row["plan_amount"] = "UNSCHEDULED"
    echo_table(
        rows,
        [
            "mandate_id",
            "customer_id",
            "status",
            "frequency",
            "rule",
            "amount_rule",
            "max_amount",
            "plan_amount",
            "next_debit_at",
        ],
    )


@mandates.command()
@click.argument("mandate_id")
@click.option("--cycles", default=3, show_default=True, help="How many coming cycles to show.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, mandate_id: str, cycles: int, as_json: bool) -> None:
    """Terms, status, plan amount, the coming cycles and the debit history of one mandate."""
    c = container(ctx)
    with c.sessions() as session:
        mandate = service.require(session, mandate_id)
        info = mandate_row(mandate)
        coming: list[dict[str, Any]] = []
        if mandate.next_cycle is not None:
            terms = service.terms_of(mandate)
            upcoming = next_cycle(terms, mandate.next_cycle - 1, c.calendar)
            while upcoming is not None and len(coming) < cycles:
                coming.append(
                    {
                        "cycle": upcoming.number,
                        "window": f"{upcoming.window.first_day}..{upcoming.window.last_day}",
                        "planned_at": upcoming.planned_at,
                    }
                )
                upcoming = next_cycle(terms, upcoming.number, c.calendar)
        debits = [
            {
                "id": d.id,
                "cycle": d.cycle,
                "state": d.state,
                "amount": d.amount,
                "planned_at": d.planned_at,
                "tries": d.tries,
            }
            for d in session.scalars(
                select(Debit).where(Debit.mandate_pk == mandate.id).order_by(Debit.cycle)
            )
        ]
        changes = [
            {"at": ch.at, "kind": ch.kind, "source": ch.source, "detail": ch.detail}
            for ch in session.scalars(
                select(MandateChange)
                .where(MandateChange.mandate_pk == mandate.id)
                .order_by(MandateChange.id)
            )
        ]
    terms_changes = terms_change_rows(changes)
    if as_json:
        echo_json({**info, "coming_cycles": coming, "debits": debits, "changes": changes,
                   "terms_changes": terms_changes})  # fmt: skip
        return
    for key, value in info.items():
        shown = "-" if value is None else value
        if key == "plan_amount" and value is None and not info["scheduled"]:
            shown = "UNSCHEDULED (VARIABLE mandate without a plan amount: never debited)"
        click.echo(f"{key:>20}: {shown}")
    click.echo("\ncoming cycles:")
    echo_table(coming, ["cycle", "window", "planned_at"])
    click.echo("\ndebits:")
    echo_table(debits, ["id", "cycle", "state", "amount", "planned_at", "tries"])
    click.echo("\nterms changes (and what became of each open debit):")
    echo_table(terms_changes, ["at", "source", "changed", "debit", "was", "outcome"])
    click.echo("\nchanges:")
    echo_table(changes, ["at", "kind", "source", "detail"])


def terms_change_rows(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per open debit a change of terms met (one row for a change that met none)."""
    rows: list[dict[str, Any]] = []
    for change in changes:
        if change["kind"] != "terms":
            continue
        detail = json.loads(change["detail"])
        seen = detail.pop("open_debits", [])
        changed = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(detail.items()))
        base = {"at": change["at"], "source": change["source"], "changed": changed or "-"}
        if not seen:
            rows.append({**base, "debit": "-", "was": "-", "outcome": "no open debit"})
        for debit in seen:
            rows.append({**base, "debit": f"{debit['debit']} (cycle {debit['cycle']})",
                         "was": debit["state"], "outcome": debit["outcome"]})  # fmt: skip
    return rows


@mandates.command("set-amount")
@click.argument("mandate_id")
@click.argument("amount")
@click.pass_context
def set_amount(ctx: click.Context, mandate_id: str, amount: str) -> None:
    """Set the plan amount (per cycle) of a mandate; VARIABLE: at most its max_amount."""
    c = container(ctx)
    value = service.set_plan_amount(
        c.sessions, mandate_id, amount, now=c.clock(), calendar=c.calendar
    )
    click.echo(f"mandate {mandate_id}: plan amount {value}")


@click.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
@click.option("--now", "now_text", help="Forecast as if at this ISO date-time.")
@click.option("--detail", is_flag=True, help="List every debit, not only the totals per day.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def schedule(
    ctx: click.Context, days: int, now_text: str | None, detail: bool, as_json: bool
) -> None:
    """The coming debits per day (date, amount, flow) with a total per day; read-only.

    Debits already due (planned before now, not yet sent: catch-up after an import or an
    outage) come first, marked overdue, and count in the totals.
    """
    c = container(ctx)
    now = parse_now(now_text) or c.clock()
    with c.sessions() as session:
        result = forecast(session, c.planning, now=now, days=days, detail=detail or as_json)
    if as_json:
        echo_json(
            [
                {
                    "day": d.day,
                    "overdue": d.overdue,
                    "count": d.count,
                    "total": d.total,
                    "by_flow": {f: {"count": v[0], "total": v[1]} for f, v in d.by_flow.items()},
                    "debits": [
                        {
                            "mandate_id": x.mandate_id,
                            "customer_id": x.customer_id,
                            "amount": x.amount,
                            "flow": x.flow,
                            "planned_at": x.planned_at,
                            "state": x.state,
                            "overdue": x.overdue,
                            "due_at": x.due_at,
                        }
                        for x in d.debits
                    ],
                }
                for d in result
            ]
        )
        return
    if not result:
        click.echo(f"no debits in the next {days} days")
    for d in result:
        flows = ", ".join(f"{f}: {v[0]} / {v[1]}" for f, v in sorted(d.by_flow.items()))
        label = "overdue   " if d.overdue else str(d.day)
        click.echo(f"{label}  {d.count:>7} debits  total {d.total:>14}  ({flows})")
        for x in d.debits:
            when = f"{x.planned_at:%Y-%m-%d %H:%M}" if x.overdue else f"{x.planned_at:%H:%M}"
            mark = f"{x.state} OVERDUE" if x.overdue else x.state
            click.echo(f"    {when} UTC  {x.mandate_id:<24} {x.amount:>12}  {x.flow:<8} {mark}")
    grand = sum((d.total for d in result), start=type(result[0].total)(0)) if result else 0
    click.echo(f"total: {sum(d.count for d in result)} debits, {grand}")


@mandates.command()
@click.argument("mandate_id")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="Default: today.")
@click.option("--until", "end", type=click.DateTime(["%Y-%m-%d"]), help="Open-ended if left out.")
@click.pass_context
def pause(
    ctx: click.Context, mandate_id: str, start: datetime | None, end: datetime | None
) -> None:
    """Pause a mandate at Juspay (`command=pause`); debits whose window passes are SKIPPED."""
    c = container(ctx)
    today = c.calendar.local_date(c.clock())
    status = actions.pause(
        c.sessions,
        c.gateway,
        mandate_id,
        start=start.date() if start else today,
        end=end.date() if end else None,
        now=c.clock(),
        calendar=c.calendar,
    )
    click.echo(f"mandate {mandate_id}: pause requested; status {status}")


@mandates.command()
@click.argument("mandate_id")
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="Default: today.")
@click.pass_context
def resume(ctx: click.Context, mandate_id: str, on: datetime | None) -> None:
    """Resume a paused mandate at Juspay (`command=resume`); planning restarts next window."""
    c = container(ctx)
    day = on.date() if on else c.calendar.local_date(c.clock())
    status = actions.resume(
        c.sessions, c.gateway, mandate_id, on=day, now=c.clock(), calendar=c.calendar
    )
    click.echo(f"mandate {mandate_id}: resume requested; status {status}")


@mandates.command()
@click.argument("mandate_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def revoke(ctx: click.Context, mandate_id: str, yes: bool) -> None:
    """Revoke a mandate at Juspay (`command=revoke`): final; its open debits are SKIPPED."""
    if not yes:
        click.confirm(f"Revoke mandate {mandate_id}? This cannot be undone", abort=True)
    c = container(ctx)
    status = actions.revoke(c.sessions, c.gateway, mandate_id, now=c.clock(), calendar=c.calendar)
    click.echo(f"mandate {mandate_id}: status {status}")


@mandates.command()
@click.argument("mandate_id", required=False)
@click.option("--customer", "customer_id", help="Sync every mandate of this customer.")
@click.pass_context
def sync(ctx: click.Context, mandate_id: str | None, customer_id: str | None) -> None:
    """Refresh one mandate (or a customer's) from Juspay: terms and status."""
    if (mandate_id is None) == (customer_id is None):
        raise click.UsageError("give a MANDATE_ID or --customer, not both")
    c = container(ctx)
    report = actions.sync(
        c.sessions,
        c.gateway,
        mandate_id=mandate_id,
        customer_id=customer_id if mandate_id is None else None,
        now=c.clock(),
        calendar=c.calendar,
        on_error=lambda problem: click.echo(f"{problem.field}: {problem.reason}", err=True),
    )
    click.echo(
        f"synced {report.rows} mandates: {report.created} new, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.bad} refused"
    )
    if report.bad:
        raise JobError("")
