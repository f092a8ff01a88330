"""Benchmark: import N mandates from a CSV file, against a bare load of the same file.

    .venv/bin/python bench/import_mandates.py --rows 1000000
    .venv/bin/python bench/import_mandates.py --rows 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/test

--rows N          rows in the generated CSV (default 1,000,000; generating it is not timed)
--database-url U  where to run. Absent: SQLite files in a temporary directory. A PostgreSQL URL
                  names the server and a database to connect to for CREATE/DROP DATABASE only:
                  the bench makes two scratch databases beside it (bench_import_<pid>_product
                  and ..._baseline), migrates them, and drops them at the end.
--batch-size B    the importer's batch size (default: the importer's own)

Each measured step runs in its own child process (spawned: a fresh interpreter), so its peak
RSS is its own: the interpreter and libraries (~70 MB, printed as "idle") plus the step.

1. product, first import: `billing`'s `import_mandates(read_rows(file))` into an empty,
   migrated database: every row parsed, validated and planned, as `billing mandates import`.
2. product, re-import of the same file: every row read and compared, nothing changes.
3. baseline: a bare load of the same file into the same `mandates` table of a second, freshly
   migrated database, with no product logic: csv.reader, "" read as NULL, the "amount" column
   stored as plan_amount, and the fastest plain insert of the backend: one COPY on PostgreSQL,
   executemany in 10,000-row batches in one transaction on SQLite.

Printed: seconds, rows/s and peak RSS of each step, and the ratio first import / baseline.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import resource
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import create_engine, make_url, text

from billing.domain.schedule import DebitCalendar
from billing.services.mandates.files import read_rows
from billing.services.mandates.registry import import_mandates
from billing.store import migrate
from billing.store.db import make_engine, make_session_factory

FREQUENCIES = [
    ("MONTHLY", "ON", 5),
    ("WEEKLY", "AFTER", 3),
    ("DAILY", "", ""),
    ("YEARLY", "BEFORE", 20),
]
HEADER = [
    "customer_id",
    "mandate_id",
    "frequency",
    "rule_type",
    "rule_value",
    "amount_rule",
    "max_amount",
    "amount",
    "currency",
    "start_date",
    "end_date",
    "payment_method_type",
    "status",
]
NOW = datetime(2027, 3, 1, tzinfo=UTC)


def write_file(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            frequency, rule_type, rule_value = FREQUENCIES[i % len(FREQUENCIES)]
            writer.writerow(
                [
                    f"cst_{i // 3}",
                    f"mdt_{i:09d}",
                    frequency,
                    rule_type,
                    rule_value,
                    "VARIABLE",
                    "1000",
                    f"{100 + i % 900}.50",
                    "INR",
                    "2026-01-01",
                    "2030-12-31",
                    ("UPI", "CARD", "NB", "WALLET")[i % 4],
                    "ACTIVE",
                ]
            )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Step:
    seconds: float
    peak_mb: float
    idle_mb: float
    detail: str


def product(url: str, path: str, batch_size: int | None) -> Step:
    """billing's import of the file (run in a child process)."""

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    calendar = DebitCalendar(ZoneInfo("Asia/Kolkata"), dtime(10, 0))
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    idle = peak_mb()
    started = time.perf_counter()
    report = import_mandates(sessions, read_rows(Path(path)), now=NOW, calendar=calendar, **options)
    seconds = time.perf_counter() - started
    engine.dispose()
    detail = (
        f"{report.created:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, {report.bad:,} bad"
    )
    return Step(seconds, peak_mb(), idle, detail)


def baseline(url: str, path: str) -> Step:
    """A bare load: csv.reader and the backend's fastest plain insert (run in a child)."""
    columns = [("plan_amount" if name == "amount" else name) for name in HEADER]
    columns += ["created_at", "updated_at"]
    idle = peak_mb()
    started = time.perf_counter()
    loaded = 0
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        if url.startswith("sqlite"):
            database = make_url(url).database
            assert database
            stamp = NOW.replace(tzinfo=None).isoformat(sep=" ")
            connection = sqlite3.connect(database, isolation_level=None)
            marks = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO mandates ({', '.join(columns)}) VALUES ({marks})"
            connection.execute("BEGIN")
            batch: list[list[str | None]] = []
            for cells in reader:
                batch.append([cell or None for cell in cells] + [stamp, stamp])
                if len(batch) == 10_000:
                    connection.executemany(statement, batch)
                    loaded += len(batch)
                    batch.clear()
            connection.executemany(statement, batch)
            loaded += len(batch)
            connection.execute("COMMIT")
            connection.close()
        else:
            stamp = NOW.isoformat()
            dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
                copy_sql = f"COPY mandates ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(copy_sql) as copy:
                    for cells in reader:
                        copy.write_row([cell or None for cell in cells] + [stamp, stamp])
                        loaded += 1
    seconds = time.perf_counter() - started
    return Step(seconds, peak_mb(), idle, f"{loaded:,} rows loaded")


def _child(queue: Any, target: Callable[..., Step], args: tuple[Any, ...]) -> None:
    queue.put(target(*args))


def in_child(target: Callable[..., Step], *args: Any) -> Step:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, target, args))
    process.start()
    step: Step = queue.get()
    process.join()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--batch-size", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mandates.csv"
        write_file(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        created: list[str] = []
        admin_url = args.database_url
        if admin_url and not admin_url.startswith("sqlite"):
            base = make_url(admin_url)
            urls = {
                kind: base.set(database=f"bench_import_{os.getpid()}_{kind}")
                for kind in ("product", "baseline")
            }
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                for url in urls.values():
                    connection.execute(text(f'CREATE DATABASE "{url.database}"'))
                    created.append(str(url.database))
            product_url = urls["product"].render_as_string(hide_password=False)
            baseline_url = urls["baseline"].render_as_string(hide_password=False)
        else:
            product_url = f"sqlite:///{Path(tmp) / 'product.db'}"
            baseline_url = f"sqlite:///{Path(tmp) / 'baseline.db'}"
        try:
            migrate.upgrade(product_url)
            migrate.upgrade(baseline_url)
            first = in_child(product, product_url, str(path), args.batch_size)
            again = in_child(product, product_url, str(path), args.batch_size)
            bare = in_child(baseline, baseline_url, str(path))
        finally:
            if created:
                with admin.connect() as connection:
                    for name in created:
                        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                admin.dispose()
    backend = product_url.split(":")[0]
    print(f"backend: {backend}, rows: {args.rows:,}, file: {size_mb:.0f} MB CSV")
    for label, step in (("first import", first), ("re-import", again), ("baseline", bare)):
        rate = args.rows / step.seconds
        print(
            f"{label:13s} {step.seconds:7.1f} s {rate:9,.0f} rows/s  "
            f"peak RSS {step.peak_mb:4.0f} MB (idle {step.idle_mb:.0f} MB)  {step.detail}"
        )
    print(
        f"ratio product/baseline: first import {first.seconds / bare.seconds:.2f}x, "
        f"re-import {again.seconds / bare.seconds:.2f}x"
    )


if __name__ == "__main__":
    main()
