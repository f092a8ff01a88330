"""Benchmark: import N mandates from a CSV file; prints rows/s and peak memory.

    .venv/bin/python bench/import_mandates.py --rows 1000000 [--database-url URL]

The file is generated first (not timed). Peak memory is the process's max RSS, which
includes the interpreter and libraries (~70 MB before the import starts, printed too).
"""

from __future__ import annotations

import argparse
import csv
import resource
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

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


def write_file(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
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
        )
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mandates.csv"
        write_file(path, args.rows)
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        calendar = DebitCalendar(ZoneInfo("Asia/Kolkata"), dtime(10, 0))
        before = peak_mb()
        started = time.perf_counter()
        report = import_mandates(
            sessions,
            read_rows(path),
            now=datetime(2027, 3, 1, tzinfo=UTC),
            calendar=calendar,
            batch_size=args.batch_size,
        )
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = import_mandates(
            sessions, read_rows(path), now=datetime(2027, 3, 1, tzinfo=UTC), calendar=calendar
        )
        second = time.perf_counter() - started
        engine.dispose()
    backend = url.split(":")[0]
    print(f"backend: {backend}, rows: {args.rows:,}, file: {path.name}")
    print(f"first import: {first:7.1f} s {args.rows / first:9,.0f} rows/s, {report.created:,} new")
    rate = args.rows / second
    print(f"re-import:    {second:7.1f} s {rate:9,.0f} rows/s, {again.unchanged:,} same")
    print(f"peak RSS: {peak_mb():.0f} MB (before import: {before:.0f} MB)")


if __name__ == "__main__":
    main()
