"""Benchmark: due debits per second through real `billing beat` + `billing worker` (default
settings) on Redis and PostgreSQL, against a Juspay-shaped stand-in, beside a bare-stack
pipeline (a Celery task per debit: claim one row, one POST, one write) measured in the same run.

    .venv/bin/python bench/celery_throughput.py --debits 10000 \\
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--latency-ms 50]

Starts its own redis-server on a free port, its own scratch PostgreSQL database (dropped at
the end) and the stand-in (`bench/juspay_standin.py`). The product's rate is N / (last debit
settled - first debit claimed), read from the debits' own timestamps (beat's first pass comes
up to `BILLING_BEAT_DISPATCH_EVERY` after it starts; that wait is not the worker's); the wall
time from beat's start is printed beside it, and each of our processes' CPU share over the run
(worker, beat, the stand-in, Redis; not PostgreSQL, which other users share).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from scratch import scratch_database  # bench/scratch.py
from sqlalchemy import create_engine, func, select, text

from billing.bootstrap import build
from billing.config import load_settings
from billing.services.mandates import registry
from billing.store import debits as debit_store
from billing.store import migrate
from billing.store.models import Debit, Mandate

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
EARLY = 1000  # the worker's RSS is read after this many debits and at the end (growth)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pids: set[int] | None = None, name: str | None = None) -> float:
    """CPU time (user + system) of the processes in `pids`' process groups, or named `name`."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pgid = int(fields[2])
        if (pids is not None and pgid in pids) or (name is not None and comm == name):
            total += int(fields[11]) + int(fields[12])
            if name is not None:  # and its reaped children's (PostgreSQL's ended backends)
                total += int(fields[13]) + int(fields[14])
    return total / TICK


def rss_mb(group: set[int]) -> float:
    """Resident memory of the processes in `group` (process groups), in MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) not in group:
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]

    @property
    def group(self) -> set[int]:
        return {self.popen.pid}

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait(5)


def start(args: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> Proc:
    out = log.open("ab")
    return Proc(
        subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    )


def wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class Result:
    label: str
    debits: int
    rate: float
    wall: float
    cpu: dict[str, float]


def shares(cpu: dict[str, float], seconds: float) -> str:
    return ", ".join(f"{k} {v / seconds:.0%}" for k, v in cpu.items())


class Bench:
    def __init__(self, tmp: Path, database_url: str, redis_port: int, latency_ms: float) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.broker = f"redis://127.0.0.1:{redis_port}/0"
        self.latency_ms = latency_ms
        self.gateway_port = free_port()
        self.gateway: Proc | None = None
        self.redis_group: set[int] = set()
        self.worker_rss = 0.0
        self.worker_args: list[str] = []
        self.settings: dict[str, str] = {}  # BILLING_* for the product's processes (--setting)

    def start_gateway(self, latency_ms: float) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.gateway = start(
            [sys.executable, str(HERE / "juspay_standin.py"), "--port", str(self.gateway_port),
             "--latency-ms", str(latency_ms)],
            env=dict(os.environ), cwd=self.tmp, log=self.tmp / "gateway.log",
        )  # fmt: skip
        wait_port(self.gateway_port)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
        env.update(
            BILLING_DATABASE_URL=self.database_url,
            BILLING_BROKER_URL=self.broker,
            BILLING_JUSPAY_BASE_URL=f"http://127.0.0.1:{self.gateway_port}",
            BILLING_JUSPAY_API_KEY="bench",
            BILLING_JUSPAY_MERCHANT_ID="bench",
        )
        env.update(self.settings)
        return env

    def cpu(self, procs: dict[str, set[int]]) -> dict[str, float]:
        # PostgreSQL: every `postgres` process of the machine and the backends that ended
        # (counted in their parent's children time): other users of the server count too.
        cpu = {name: cpu_seconds(group) for name, group in procs.items()}
        cpu["postgres (whole server)"] = cpu_seconds(name="postgres")
        return cpu

    # -- the product ------------------------------------------------------------------------

    def seed_product(self, count: int) -> None:
        app = build(load_settings(database_url=self.database_url))
        now = datetime.now(UTC)
        with app.sessions() as session, session.begin():
            session.execute(text("TRUNCATE debit_history, orders, debits RESTART IDENTITY CASCADE"))
            have = session.scalar(select(func.count()).select_from(Mandate))
        if not have:
            rows = [
                {"customer_id": f"cst{i}", "mandate_id": f"mdt{i:07d}",
                 "frequency": "ASPRESENTED", "amount_rule": "VARIABLE", "max_amount": "1000",
                 "start_date": "2026-01-01", "payment_method_type": "NB"}
                for i in range(count)
            ]  # fmt: skip
            registry.import_mandates(
                app.sessions, list(enumerate(rows, 1)), now=now, calendar=app.calendar
            )
        with app.sessions() as session, session.begin():
            pks = session.scalars(select(Mandate.id).order_by(Mandate.id).limit(count)).all()
            debit_store.insert_planned(
                session,
                [
                    debit_store.NewDebit(
                        mandate_pk=pk, cycle=0, flow="none", amount=Decimal("399.00"),
                        currency="INR", window_first_day=now.date(),
                        window_last_day=(now + timedelta(days=1)).date(),
                        planned_at=now - timedelta(minutes=1),
                        window_closes_at=now + timedelta(days=1),
                        due_at=now - timedelta(minutes=1),
                    )
                    for pk in pks
                ],
                at=now,
            )  # fmt: skip
        # Fresh statistics, as autovacuum would have them by the time planned debits fall due
        # (planning runs days ahead); right after a mass insert the planner still sees the
        # tables as they were before it.
        with app.engine.begin() as connection:  # committed: a rolled-back ANALYZE is undone
            connection.execute(text("ANALYZE debits, mandates, orders, debit_history"))
        app.close()

    def run_product(self, count: int, latency_ms: float) -> Result:
        self.start_gateway(latency_ms)
        self.seed_product(count)
        env, billing = self.env(), str(BIN / "billing")
        worker = start([billing, "worker", *self.worker_args], env=env, cwd=self.tmp,
                       log=self.tmp / "worker.log")  # fmt: skip
        time.sleep(4)  # the worker's processes up before beat's first pass
        assert self.gateway is not None
        procs = {"worker": worker.group, "gateway stand-in": self.gateway.group,
                 "redis": self.redis_group}  # fmt: skip
        before = self.cpu(procs)
        started = time.monotonic()
        beat = start([billing, "beat"], env=env, cwd=self.tmp, log=self.tmp / "beat.log")
        procs["beat"] = beat.group
        engine = create_engine(self.database_url)
        rss_early: float | None = None
        try:
            while True:
                with engine.connect() as c:
                    left = c.scalar(
                        select(func.count()).select_from(Debit).where(Debit.state != "CHARGED")
                    )
                if rss_early is None and count - left >= EARLY:
                    rss_early = rss_mb(worker.group)  # warmed up: every process has worked
                if not left:
                    break
                if time.monotonic() - started > 900 + count / 100:
                    raise RuntimeError(f"{left} debits not charged")
                time.sleep(0.2 if count <= 20_000 else 1.0)  # the count scans the table
            wall = time.monotonic() - started
            after = self.cpu(procs)
            self.worker_rss = rss_mb(worker.group)
            with engine.connect() as c:
                first, last = c.execute(
                    select(func.min(Debit.claimed_at), func.max(Debit.updated_at))
                ).one()
                orders = c.scalar(text("SELECT count(*) FROM orders"))
        finally:
            beat.stop()
            worker.stop()
            engine.dispose()
        span = (last - first).total_seconds()
        assert orders == count, f"{orders} orders for {count} debits"
        cpu = {k: after[k] - before.get(k, 0.0) for k in after}
        if rss_early is not None and count > EARLY:
            growth = self.worker_rss / rss_early - 1
            print(f"  worker RSS (all its processes): {rss_early:.0f} MB after {EARLY:,} debits, "
                  f"{self.worker_rss:.0f} MB after {count:,}: growth {growth:+.1%}")  # fmt: skip
        else:
            print(
                f"  worker RSS after {count} debits: {self.worker_rss:.0f} MB (all its processes)"
            )
        return Result(f"billing worker (defaults), {latency_ms:g} ms", count, count / span,
                      wall, {k: v / wall for k, v in cpu.items()})  # fmt: skip

    # -- the bare-stack baseline ------------------------------------------------------------

    def run_bare(self, count: int, latency_ms: float, pool: list[str]) -> Result:
        self.start_gateway(latency_ms)
        engine = create_engine(self.database_url)
        with engine.begin() as c:
            c.execute(text("DROP TABLE IF EXISTS bare_debits"))
            c.execute(text(
                "CREATE TABLE bare_debits (id serial PRIMARY KEY, state varchar(16) NOT NULL, "
                "order_id varchar(32) NOT NULL, mandate_id varchar(32) NOT NULL, "
                "customer_id varchar(32) NOT NULL, amount numeric(12,2) NOT NULL)"
            ))  # fmt: skip
            c.execute(
                text(
                    "INSERT INTO bare_debits (state, order_id, mandate_id, customer_id, amount) "
                    "SELECT 'PLANNED', 'bare' || g || '-' || :run, 'mdt' || g, 'cst' || g, 399 "
                    "FROM generate_series(1, :n) g"
                ),
                {"n": count, "run": uuid.uuid4().hex[:6]},
            )
            ids = list(c.scalars(text("SELECT id FROM bare_debits ORDER BY id")))
        env = dict(os.environ)
        env.update(BARE_DATABASE_URL=self.database_url, BARE_BROKER_URL=self.broker,
                   BARE_GATEWAY_URL=f"http://127.0.0.1:{self.gateway_port}",
                   PYTHONPATH=str(HERE))  # fmt: skip
        sys.path.insert(0, str(HERE))
        import bare_pipeline  # noqa: PLC0415 - the baseline's app, for sending only

        bare_pipeline.app.conf.broker_url = self.broker
        with bare_pipeline.app.producer_or_acquire() as producer:
            for debit_id in ids:
                bare_pipeline.execute.apply_async(args=[debit_id], producer=producer)
        celery = str(BIN / "celery")
        assert self.gateway is not None
        procs = {"worker": set[int](), "gateway stand-in": self.gateway.group,
                 "redis": self.redis_group}  # fmt: skip
        before = self.cpu(procs)
        started = time.monotonic()
        worker = start([celery, "-A", "bare_pipeline", "worker", "-l", "WARNING", *pool],
                       env=env, cwd=HERE, log=self.tmp / "bare.log")  # fmt: skip
        procs["worker"] = worker.group
        try:
            while True:
                with engine.connect() as c:
                    left = c.scalar(
                        text("SELECT count(*) FROM bare_debits WHERE state <> 'CHARGED'")
                    )
                if not left:
                    break
                if time.monotonic() - started > 900:
                    raise RuntimeError(f"bare: {left} not charged after 900 s")
                time.sleep(0.2)
            wall = time.monotonic() - started
            after = self.cpu(procs)
        finally:
            worker.stop()
            engine.dispose()
        cpu = {k: (after[k] - before.get(k, 0.0)) / wall for k in after}
        return Result(f"bare pipeline {' '.join(pool)}, {latency_ms:g} ms", count, count / wall,
                      wall, cpu)  # fmt: skip


def print_result(r: Result) -> None:
    print(f"  {r.label:<45} {r.rate:8.0f} debits/s  (wall {r.wall:.1f} s; CPU: "
          f"{shares(r.cpu, 1.0)})", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--debits", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BILLING_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin URL: the bench creates and drops its own database there",
    )
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument(
        "--bare-debits",
        type=int,
        default=3000,
        help="debits for each bare-pipeline run (its rate does not depend on the count, and at "
        "30-110 debits/s a full-size run would take an hour)",
    )
    parser.add_argument(
        "--worker-arg", action="append", default=[], help="passed to `billing worker` (repeat)"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="BILLING_NAME=VALUE",
        help="a setting for the product's worker and beat (repeat); the defaults otherwise",
    )
    args = parser.parse_args()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        sys.exit("redis-server is not installed")
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        scratch_database(args.postgres_url, "bench_throughput") as url,
    ):
        tmp = Path(tmp_name)
        migrate.upgrade(url)
        redis_port = free_port()
        redis = start([redis_server, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                      env=dict(os.environ), cwd=tmp, log=tmp / "redis.log")  # fmt: skip
        wait_port(redis_port)
        bench = Bench(tmp, url, redis_port, args.latency_ms)
        bench.redis_group = redis.group
        bench.worker_args = args.worker_arg
        bench.settings = dict(item.split("=", 1) for item in args.setting)
        results: list[Result] = []
        runs = [lambda: bench.run_product(args.debits, args.latency_ms),
                lambda: bench.run_product(args.debits, 0.0)]  # fmt: skip
        if not args.skip_bare:
            for pool in (["-P", "prefork", "-c", "2"], ["-P", "threads", "-c", "32"]):
                runs.append(
                    lambda pool=pool: bench.run_bare(
                        min(args.debits, args.bare_debits), args.latency_ms, pool
                    )
                )
        try:
            for run in runs:
                results.append(run())
                print_result(results[-1])
        finally:
            if bench.gateway is not None:
                bench.gateway.stop()
            redis.stop()
            for log in sorted(tmp.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-3:]
                print(f"[{log.name}] " + " | ".join(tail)[:400], file=sys.stderr)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{args.debits} due debits, {os.cpu_count()} cores, load average {load} at the end")
        for r in results:
            print_result(r)
        product, zero = results[0], results[1]
        print(f"  50 ms / 0 ms: {product.rate / zero.rate:.0%}")
        bare = list(results[2:])
        if bare:
            best = max(bare, key=lambda r: r.rate)
            print(f"  product / best bare ({best.label}): {product.rate / best.rate:.2f}x")


if __name__ == "__main__":
    main()
