"""The chaos and fuzz suites at full size (issue 16); the CI sizes run in tests/e2e/test_chaos.py.

    .venv/bin/python -m bench.chaos workers  [--long] [--debits N]   # kills, 2 beats, faults
    .venv/bin/python -m bench.chaos outages  [--long] [--debits N]   # + broker restart, DB down
    .venv/bin/python -m bench.chaos webhooks [--long] [--events N]   # out of order, repeated
    .venv/bin/python -m bench.chaos fuzz     [--long] [--bodies N]   # the running receiver
    .venv/bin/python -m bench.chaos all --long

Run from the repository root (it uses the tests' harness). Each suite starts its own
redis-server, PostgreSQL cluster (initdb / pg_ctl, as `postgres` when run as root) and
`billing sandbox` on free ports, and prints one line of figures; exit 1 if a suite found a
problem (the problems follow the line).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

from tests.e2e.chaos import ChaosPlan, Figures, run_debit_chaos
from tests.e2e.chaos_webhooks import run_fuzz, run_out_of_order

SIZES = {  # (CI, long)
    "workers": (1000, 10_000),
    "outages": (1000, 10_000),
    "webhooks": (1000, 10_000),
    "fuzz": (5000, 100_000),
}


def run(suite: str, size: int, tmp: Path) -> Figures:
    if suite in ("workers", "outages"):
        kills = max(12, size // 100)
        plan = ChaosPlan(debits=size, max_kills=kills, outages=suite == "outages", deadline=900)
        return run_debit_chaos(plan, tmp)
    if suite == "webhooks":
        return run_out_of_order(size, tmp)
    return run_fuzz(size, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("suite", choices=[*SIZES, "all"])
    parser.add_argument("--long", action="store_true", help="the long sizes")
    parser.add_argument("--size", type=int, help="debits, events or bodies (default: by suite)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on the way out
    failed = False
    for suite in SIZES if args.suite == "all" else [args.suite]:
        size = args.size or SIZES[suite][1 if args.long else 0]
        with tempfile.TemporaryDirectory(prefix=f"billing-chaos-{suite}-") as tmp:
            figures = run(suite, size, Path(tmp))
        print(figures.line(), flush=True)
        for problem in figures.problems[:50]:
            print(f"  {problem}")
        failed = failed or bool(figures.problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
