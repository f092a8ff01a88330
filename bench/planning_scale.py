"""Benchmark: one beat pass (plan + select due ids) for 10,000 due debits, whatever the registry.

    .venv/bin/python bench/planning_scale.py \\
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] \\
        [--sizes 10000,100000,1000000] [--due 10000] [--repeat 3] [--sqlite]

For each registry size a scratch database (dropped at the end; SQLite: a temporary file) is
migrated with Alembic and filled with Core `INSERT ... SELECT` from a recursive series (not
the product's import, which is not what is timed): `--due` mandates whose next cycle falls
in the planning window, the rest due later in the month, and every mandate holding last
month's debit, CHARGED (so the debits table grows with the registry too). Two template
mandates go through the product's import first, so the cloned rows carry the product's own
planning cursors.

What is timed is exactly what beat does per pass: `plan_debits` (the `billing.beat.plan`
task), then `claim_due_work` round after round until a round comes back short (the
`billing.beat.dispatch` loop, ROUND ids per selection), against the same `now`. Each pass
must plan and select exactly `--due` debits, or the run stops. With `--repeat`, the planned
debits are deleted and the cursors put back between passes (then VACUUM ANALYZE); the median
pass is printed. The baseline is the smallest registry measured in the same run; target:
the largest ≤ 1.5 x the smallest.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from scratch import scratch_database  # bench/scratch.py
from sqlalchemy import Engine, String, case, cast, create_engine, insert, literal, select, text

from billing.bootstrap import build
from billing.config import load_settings
from billing.services.debits.dispatch import claim_due_work
from billing.services.debits.planning import plan_debits
from billing.services.mandates import registry
from billing.store import migrate
from billing.store.models import Debit, Mandate
from billing.tasks.beat import ROUND

# Beat's pass runs at 03:00 UTC on 1 March: a CARD debit ON the 2nd (planned 2 March 04:30
# UTC, juspay flow, 26 h lead) is both plannable and due; ON the 20th is outside the window.
NOW = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)
TEMPLATE = {
    "frequency": "MONTHLY",
    "rule_type": "ON",
    "amount_rule": "FIXED",
    "max_amount": "399",
    "start_date": "2027-01-01",
    "payment_method_type": "CARD",
}
MANDATE_COLUMNS = [c.name for c in Mandate.__table__.columns if c.name != "id"]


@contextmanager
def scratch_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench_planning_") as tmp:
        yield f"sqlite:///{Path(tmp) / 'billing.db'}"


def template_rows(url: str) -> dict[str, dict[str, Any]]:
    """Import one due and one later mandate through the product; return their stored rows."""
    app = build(load_settings(database_url=url))
    rows = [
        {**TEMPLATE, "mandate_id": "tpl-due", "customer_id": "c", "rule_value": 2},
        {**TEMPLATE, "mandate_id": "tpl-later", "customer_id": "c", "rule_value": 20},
    ]
    report = registry.import_mandates(
        app.sessions, list(enumerate(rows, 1)), now=NOW, calendar=app.calendar
    )
    assert report.bad == 0, report.errors
    with app.sessions() as session, session.begin():
        stored = {
            m.mandate_id: {c: getattr(m, c) for c in MANDATE_COLUMNS}
            for m in session.scalars(select(Mandate))
        }
        session.execute(text("DELETE FROM mandate_changes"))
        session.execute(text("DELETE FROM mandates"))
    app.close()
    return stored


def fill(engine: Engine, templates: dict[str, dict[str, Any]], size: int, due: int) -> None:
    """`due` clones of the due template and `size - due` of the later one, each with last
    month's CHARGED debit; Core INSERT ... SELECT over a recursive series, in one statement."""
    series = select(literal(1).label("g")).cte("series", recursive=True)
    series = series.union_all(select(series.c.g + 1).where(series.c.g < size))
    g = series.c.g
    values = []
    for column in MANDATE_COLUMNS:
        if column in ("mandate_id", "customer_id"):
            values.append(
                (literal("m" if column == "mandate_id" else "c") + cast(g, String)).label(column)
            )
            continue
        later, soon = templates["tpl-later"][column], templates["tpl-due"][column]
        if later == soon:
            values.append(literal(later, Mandate.__table__.c[column].type).label(column))
        else:
            values.append(
                case(
                    (g <= due, literal(soon, Mandate.__table__.c[column].type)),
                    else_=literal(later, Mandate.__table__.c[column].type),
                ).label(column)
            )
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(text("SET LOCAL synchronous_commit = off"))
        c.execute(insert(Mandate.__table__).from_select(MANDATE_COLUMNS, select(*values)))
        m = Mandate.__table__.alias("m")
        debit_values = {
            "mandate_pk": m.c.id,
            "cycle": m.c.next_cycle - 1,
            "state": literal("CHARGED"),
            "flow": literal("juspay"),
            "amount": m.c.plan_amount,
            "currency": m.c.currency,
            "period_first_day": literal(date(2027, 2, 1)),
            "period_last_day": literal(date(2027, 2, 28)),
            "window_first_day": literal(date(2027, 2, 2)),
            "window_last_day": literal(date(2027, 2, 2)),
            "planned_at": literal(datetime(2027, 2, 2, 4, 30, tzinfo=UTC), Debit.planned_at.type),
            "window_closes_at": literal(
                datetime(2027, 2, 2, 18, 30, tzinfo=UTC), Debit.planned_at.type
            ),
            "tries": literal(1),
            "created_at": literal(datetime(2027, 1, 31, tzinfo=UTC), Debit.planned_at.type),
            "updated_at": literal(datetime(2027, 2, 2, 5, tzinfo=UTC), Debit.planned_at.type),
        }
        c.execute(
            insert(Debit.__table__).from_select(
                list(debit_values), select(*[v.label(k) for k, v in debit_values.items()])
            )
        )
    analyze(engine)


def analyze(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as c:
            c.execute(text("ANALYZE"))


def reset(engine: Engine, cursor: dict[str, Any]) -> None:
    """Undo a pass: the planned debits go, the due mandates' cursors come back."""
    with engine.begin() as c:
        c.execute(text("DELETE FROM debit_history"))
        c.execute(text("DELETE FROM debits WHERE state = 'PLANNED'"))
        c.execute(
            Mandate.__table__.update()
            .where(Mandate.rule_value == cursor["rule_value"])
            .values(next_cycle=cursor["next_cycle"], next_cycle_at=cursor["next_cycle_at"])
        )
    analyze(engine)


def one_pass(url: str, due: int) -> float:
    """Plan + select due ids, as beat does, timed; checks both found all `due` debits."""
    app = build(load_settings(database_url=url))
    policy = app.planning
    try:
        with app.sessions() as session:  # connect and warm the pool outside the timing
            session.execute(text("SELECT 1"))
        started = time.perf_counter()
        report = plan_debits(app.sessions, policy, now=NOW)
        selected = 0
        while True:
            work = claim_due_work(app.sessions, now=NOW, limit=ROUND)
            selected += len(work.executions) + len(work.notifications)
            if max(map(len, (work.executions, work.notifications, work.order_checks,
                             work.notification_checks))) < ROUND:  # fmt: skip
                break
        seconds = time.perf_counter() - started
    finally:
        app.close()
    if report.debits_created != due or selected != due:
        raise SystemExit(
            f"pass planned {report.debits_created} and selected {selected}, expected {due}"
        )
    return seconds


def measure(url: str, size: int, due: int, repeat: int) -> float:
    migrate.upgrade(url)
    templates = template_rows(url)
    engine = create_engine(url)
    started = time.perf_counter()
    fill(engine, templates, size, due)
    print(f"  {size:>9,} mandates filled in {time.perf_counter() - started:.1f} s", flush=True)
    times = []
    for n in range(repeat):
        if n:
            reset(engine, templates["tpl-due"])
        times.append(one_pass(url, due))
    engine.dispose()
    print(f"  {size:>9,} mandates: passes {', '.join(f'{t:.3f}' for t in times)} s", flush=True)
    return statistics.median(times)


def report(label: str, results: dict[int, float]) -> None:
    sizes = sorted(results)
    figures = ", ".join(f"{s:,}: {results[s]:.3f} s" for s in sizes)
    ratio = results[sizes[-1]] / results[sizes[0]]
    verdict = "meets" if ratio <= 1.5 else "MISSES"
    print(
        f"{label}: plan + select {DUE_LABEL} due debits, median pass: {figures}; "
        f"ratio {sizes[-1]:,}/{sizes[0]:,} = {ratio:.2f} ({verdict} target <= 1.5)",
        flush=True,
    )


DUE_LABEL = ""


def main() -> None:
    global DUE_LABEL  # noqa: PLW0603 - a label for the printed line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="also measure on SQLite")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    DUE_LABEL = f"{args.due:,}"
    if not args.no_postgres:
        pg: dict[int, float] = {}
        for size in sizes:
            with scratch_database(args.postgres_url, "bench_planning") as url:
                pg[size] = measure(url, size, args.due, args.repeat)
        report("PostgreSQL", pg)
    if args.sqlite:
        lite: dict[int, float] = {}
        for size in sizes:
            with scratch_sqlite() as url:
                lite[size] = measure(url, size, args.due, args.repeat)
        report("SQLite", lite)


if __name__ == "__main__":
    main()
