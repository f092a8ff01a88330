"""Benchmark: N debits due at once, executed by one in-process scheduling pass (`billing tick`).

    .venv/bin/python bench/debit_throughput.py --debits 2000 [--database-url URL] [--latency-ms 0]

The gateway is the bundled sandbox in its own process (`billing sandbox`), so the figure is
billing's side on one core while the sandbox uses the other. Each debit is claimed, recorded,
sent and settled on its own (two transactions and one HTTP call per debit).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import func, select

from billing.bootstrap import build
from billing.config import load_settings
from billing.services.mandates.registry import import_mandates
from billing.services.tick import run_tick
from billing.store import debits as debit_store
from billing.store import migrate
from billing.store.models import Debit, Mandate


@dataclass
class Sandbox:
    url: str


@contextmanager
def sandbox_process(port: int = 8431) -> Iterator[Sandbox]:
    billing = str(Path(sys.executable).with_name("billing"))
    proc = subprocess.Popen(
        [billing, "sandbox", "--port", str(port), "--api-key", "k", "--merchant-id", "m"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/sandbox/health").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield Sandbox(url)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--debits", type=int, default=2000)
    parser.add_argument("--database-url")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as sbx:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.downgrade(url, "base")
        migrate.upgrade(url)
        now = datetime.now(UTC)
        app = build(
            load_settings(
                database_url=url,
                juspay_base_url=sbx.url,
                juspay_api_key="k",
                juspay_merchant_id="m",
            ),
            clock=lambda: now,
        )
        rows = [
            {
                "customer_id": f"c{i}",
                "mandate_id": f"m{i:06d}",
                "frequency": "ASPRESENTED",
                "amount_rule": "VARIABLE",
                "max_amount": "1000",
                "start_date": "2026-01-01",
                "payment_method_type": "CARD",
            }
            for i in range(args.debits)
        ]
        import_mandates(app.sessions, list(enumerate(rows, 1)), now=now, calendar=app.calendar)
        control = httpx.Client(base_url=sbx.url + "/sandbox", timeout=30)
        seeds = [
            {
                "mandate_id": r["mandate_id"],
                "customer_id": r["customer_id"],
                "status": "ACTIVE",
                "max_amount": "1000",
                "payment_method_type": "CARD",
            }
            for r in rows
        ]
        control.post("/mandates", json=seeds).raise_for_status()
        if args.latency_ms:
            latency = {"kind": "latency", "endpoint": "txns", "seconds": args.latency_ms / 1000}
            control.post("/faults", json={**latency, "times": 10**9}).raise_for_status()
        with app.sessions() as session, session.begin():
            pks = session.scalars(select(Mandate.id)).all()
            debit_store.insert_planned(
                session,
                [
                    debit_store.NewDebit(
                        pk,
                        0,
                        "none",
                        Decimal("399.00"),
                        "INR",
                        now.date(),
                        now.date(),
                        now - timedelta(minutes=1),
                        now + timedelta(days=1),
                        now - timedelta(minutes=1),
                    )
                    for pk in pks
                ],
                at=now,
            )
        started = time.perf_counter()
        run_tick(
            app.sessions,
            debits=app.debits(),
            orders=app.orders(),
            notifications=app.notifications(),
            now=now,
            max_rounds=1000,
        )
        elapsed = time.perf_counter() - started
        with app.sessions() as session:
            charged = session.scalar(
                select(func.count()).select_from(Debit).where(Debit.state == "CHARGED")
            )
        ledger = control.get("/ledger").json()["count"]
        app.close()
        if args.database_url:
            migrate.downgrade(url, "base")
    print(f"backend: {url.split(':')[0]}, debits: {args.debits}, latency: {args.latency_ms} ms")
    print(
        f"charged {charged} (ledger {ledger}) in {elapsed:.1f} s: {charged / elapsed:.0f} debits/s"
    )


if __name__ == "__main__":
    main()
