"""The chaos suites' machinery: private Redis and PostgreSQL, the sandbox as `billing sandbox`,
a killer, outages, and the figures each run prints (one line).

The CI versions are tests/e2e/test_chaos.py; the long ones are `python -m bench.chaos SUITE
--long`. Everything runs as the product's own processes (`billing worker`, `billing beat`,
`billing sandbox`, `billing webhooks serve`); the verdict is read from the sandbox's ledger
and the database only, so whichever execution path is the default is the one exercised.
"""

from __future__ import annotations

import base64
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, inspect, select, text

from billing.bootstrap import Container, build
from billing.config import load_settings
from billing.domain.cards import looks_like_card_number
from billing.domain.debit import FINAL_DEBIT_STATES
from billing.domain.ids import order_id_for
from billing.store import migrate
from billing.store.models import Debit, DebitHistory, Mandate, Order
from tests.e2e.conftest import (
    BILLING,
    CARD_WITHOUT_NOTICE,
    Cluster,
    debit_states,
    due_mandates,
    plan_due_debits,
)
from tests.integration.sandbox_fixtures import (
    API_KEY,
    MERCHANT_ID,
    WEBHOOK_PASSWORD,
    WEBHOOK_USERNAME,
)

# Short recovery settings, so a run of thousands of debits ends in minutes (README: what
# bounds recovery with the defaults). The read timeout is short so a timeout fault costs 1 s.
CHAOS_ENV = {
    "BILLING_JUSPAY_CONNECT_TIMEOUT": "1s",
    "BILLING_JUSPAY_READ_TIMEOUT": "1s",
    "BILLING_STALE_CLAIM_AFTER": "4s",
    "BILLING_RECONCILE_AFTER": "1s",
    "BILLING_BEAT_RECLAIM_EVERY": "2s",
    "BILLING_BEAT_DISPATCH_EVERY": "1s",
    # Longer than the queue's wait on a loaded 2-core machine: a lease that runs out while its
    # message still waits re-sends the row, and the duplicates lengthen the queue further.
    "BILLING_DISPATCH_LEASE": "60s",
    # The default: the database's leases, not the broker, bring back a killed worker's work. A
    # visibility timeout shorter than the queue's wait redelivers reserved messages ahead of
    # new ones, over and over (seen at 8 s with a backlog: checks starved for two minutes).
    "BILLING_BROKER_VISIBILITY_TIMEOUT": "1h",
}
TIMEOUT_FAULT_SECONDS = 1.5  # past the 1 s read timeout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log(tmp: Path, name: str) -> Any:
    return (tmp / f"{name}.log").open("ab")


class PrivateRedis:
    """A redis-server of our own on a free port, without persistence: a restart loses every
    queued message, the worst a broker restart can do."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port = tmp, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=_log(self.tmp, "redis"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"{name} (PostgreSQL server binaries) is not installed")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb, pg_ctl) on a free port; as root it runs as the
    `postgres` user (initdb refuses root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="billing-chaos-pg-"))
        self.data = self.dir / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = list(args) if self.user is None else ["runuser", "-u", self.user, "--", *args]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    def init(self) -> None:
        self._run(postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-l",
                  str(self.dir / "postgres.log"), "-w", "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SandboxProcess:
    """`billing sandbox` on a free port, driven through its control API."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
        self.proc = subprocess.Popen(
            [BILLING, "sandbox", "--port", str(self.port), "--api-key", API_KEY,
             "--merchant-id", MERCHANT_ID, *args],
            cwd=tmp, env=env, stdout=_log(tmp, "sandbox"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.control = httpx.Client(base_url=f"{self.url}/sandbox", timeout=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.control.get("/health").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: object = None) -> Any:
        response = self.control.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def seed_mandates(self, rows: list[dict[str, str]]) -> None:
        for start in range(0, len(rows), 2000):
            self.call("POST", "/mandates", rows[start : start + 2000])

    def stop(self) -> None:
        self.control.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


# -- workers killed, beats doubled, gateway faults, outages -----------------------------------


@dataclass
class ChaosPlan:
    debits: int
    kill_every: float = 3.0
    max_kills: int = 12
    outages: bool = False  # broker restarted at 25 % charged, PostgreSQL down at 50 %
    database_down_seconds: float = 20.0
    deadline: float = 600.0  # for everything to be final once the chaos is over (a loaded machine)
    # A killed worker's prefetched messages come back when their dispatch lease runs out (the
    # recovery p99). The CI sizes drain their queue in seconds, so a short lease is safe there;
    # the long runs keep 60 s (longer than their queue's wait: no duplicate dispatches).
    dispatch_lease: str = "60s"


def gateway_faults(index: int, order_id: str) -> list[dict[str, object]]:
    """The fixed share of executions that meet a fault (one debit in five), by debit index."""
    kind = index % 20
    faults: list[dict[str, object]] = []
    if kind == 0:
        faults.append({"kind": "timeout_after", "seconds": TIMEOUT_FAULT_SECONDS})
    elif kind == 1:
        faults.append({"kind": "http_error", "status": 500, "after": True})
    elif kind == 2:
        faults.append({"kind": "drop_after"})
    elif kind == 3:
        faults.append({"kind": "http_error", "status": 503})
    for fault in faults:
        fault.update({"endpoint": "txns", "key": order_id})
    if kind < 4 and index % 40 < 20:  # half of them: the first two status reads fail too
        faults.append(
            {"kind": "http_error", "status": 500, "endpoint": "order_status", "key": order_id,
             "times": 2}
        )  # fmt: skip
    return faults


@dataclass
class Figures:
    suite: str
    values: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{k}={v}" for k, v in self.values.items()]
        verdict = "OK" if not self.problems else f"FAILED ({len(self.problems)} problems)"
        return f"{self.suite}: {' '.join(parts)} -> {verdict}"


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


Parts = tuple[Cluster, Container, SandboxProcess, PrivateRedis | None, PrivatePostgres | None]


@contextmanager
def chaos_cluster(
    tmp: Path, *, private: bool, database_url: str | None = None, broker_url: str | None = None
) -> Iterator[Parts]:
    """The sandbox process, a migrated database and a broker (private ones when asked), and a
    Cluster on them with the chaos settings; everything stopped on the way out."""
    sandbox = SandboxProcess(tmp)
    broker = postgres = None
    try:
        if private:
            broker, postgres = PrivateRedis(tmp), PrivatePostgres()
            broker.start()
            postgres.init()
            database_url, broker_url = postgres.url, broker.url
        assert database_url is not None, "a database URL or private services"
        assert broker_url is not None, "a broker URL or private services"
        migrate.upgrade(database_url)
        cluster = Cluster(database_url, sandbox, tmp, broker_url=broker_url)  # type: ignore[arg-type]
        cluster.extra_env.update(CHAOS_ENV)
        app = build(
            load_settings(database_url=database_url, notification_flows=CARD_WITHOUT_NOTICE)
        )
        try:
            yield cluster, app, sandbox, broker, postgres
        finally:
            cluster.stop_all()
            app.close()
    finally:
        sandbox.stop()
        if broker is not None:
            broker.kill()
        if postgres is not None:
            postgres.destroy()


def run_debit_chaos(plan: ChaosPlan, tmp: Path, **services: Any) -> Figures:
    """Suites 1 and 2: seed, start two workers and two beats, kill, break, wait, judge."""
    suite = "chaos outages" if plan.outages else "chaos workers"
    with chaos_cluster(tmp, private=plan.outages or not services, **services) as parts:
        cluster, app, sandbox, broker, postgres = parts
        cluster.extra_env["BILLING_DISPATCH_LEASE"] = plan.dispatch_lease
        rows = due_mandates(plan.debits)
        sandbox.seed_mandates(rows)
        plan_due_debits(app, rows)
        faults = [
            fault
            for index, row in enumerate(rows)
            for fault in gateway_faults(index, order_id_for(row["mandate_id"], 0, 1))
        ]
        for start in range(0, len(faults), 5000):
            sandbox.call("POST", "/faults", faults[start : start + 5000])
        started = time.monotonic()
        cluster.start_beat("beat-a")
        cluster.start_beat("beat-b")
        cluster.start_worker("worker-a", concurrency=2)
        cluster.start_worker("worker-b", concurrency=2)
        faults_at: list[datetime] = []  # kills, the broker's restart, the database's return
        events: Counter[str] = Counter()
        broker_done = database_done = not plan.outages

        def open_debits() -> int:
            try:
                states = debit_states(app)
            except Exception:  # the database is down: still open
                return plan.debits
            return sum(n for s, n in states.items() if s not in FINAL_DEBIT_STATES)

        def charged() -> int:
            return debit_states(app).get("CHARGED", 0)

        def outage_due() -> bool:
            """Restart the broker at 25 % charged (two kills done), take the database away at
            50 %."""
            nonlocal broker_done, database_done
            if (
                not broker_done
                and broker is not None
                and charged() >= plan.debits // 4
                and (events["kills"] >= 2 or not open_debits())
            ):
                broker.kill()
                time.sleep(2)
                broker.start()
                faults_at.append(datetime.now(UTC))
                broker_done, events["broker_restarts"] = True, 1
                return True
            if not database_done and postgres is not None and charged() >= plan.debits // 2:
                postgres.stop()
                time.sleep(plan.database_down_seconds)
                postgres.start()
                faults_at.append(datetime.now(UTC))
                database_done, events["database_outages"] = True, 1
                return True
            return False

        while open_debits() and events["kills"] < plan.max_kills:
            time.sleep(plan.kill_every)
            if outage_due() or (plan.outages and broker_done):
                break  # from the broker's restart on, no process is restarted by anyone
            victim = ("worker-a", "worker-b")[events["kills"] % 2]
            cluster.kill(victim)
            faults_at.append(datetime.now(UTC))
            events["kills"] += 1
            cluster.start_worker(victim, concurrency=2)
        while not (broker_done and database_done) and open_debits():
            time.sleep(0.5)
            outage_due()
        deadline = time.monotonic() + plan.deadline
        while open_debits() and time.monotonic() < deadline:
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        exited = [name for name, proc in cluster.procs.items() if proc.poll() is not None]
        figures = judge_debits(app, sandbox, plan.debits, faults_at, suite=suite)
        figures.values = {
            "debits": plan.debits,
            "kills": events["kills"],
            **({"broker_restarts": events["broker_restarts"],
                "database_down_s": plan.database_down_seconds} if plan.outages else {}),
            **figures.values,
            "elapsed_s": round(elapsed, 1),
        }  # fmt: skip
        if plan.outages and not (broker_done and database_done):
            figures.problems.append("the run ended before both outages happened")
        if exited:  # the outages must be survived by the processes that lived through them
            figures.problems.append(f"processes exited: {exited}")
        logs = [tmp / f"{n}.log" for n in ("worker-a", "worker-b", "beat-a", "beat-b")]
        figures.problems += scan_for_secrets(cluster.database_url, logs)
        figures.values["secrets_found"] = sum(p.startswith("secret") for p in figures.problems)
        return figures


def judge_debits(
    app: Container, sandbox: SandboxProcess, count: int, faults_at: list[datetime], *, suite: str
) -> Figures:
    """Every due debit charged exactly once, none lost, every UNKNOWN reconciled, nothing left
    claimed, the database and the ledger agreeing order by order; and how long recovery took."""
    figures = Figures(suite)
    problems = figures.problems
    ledger = sandbox.call("GET", "/ledger")["entries"]
    stats = sandbox.call("GET", "/stats")
    with app.sessions() as session:
        debits = {d.id: d for d in session.scalars(select(Debit))}
        mandates = {m.id: m.mandate_id for m in session.scalars(select(Mandate))}
        orders = {o.order_id: o for o in session.scalars(select(Order))}
        history = session.scalars(select(DebitHistory).order_by(DebitHistory.id)).all()
    per_mandate = Counter(e["mandate_id"] for e in ledger)
    double = sum(n - 1 for n in per_mandate.values() if n > 1)
    lost = sum(1 for m in mandates.values() if per_mandate[m] == 0)
    states = Counter(d.state for d in debits.values())
    stuck = sum(n for s, n in states.items() if s not in FINAL_DEBIT_STATES)
    claimed = [o.order_id for o in orders.values() if o.next_check_at is not None]
    if len(debits) != count:
        problems.append(f"{len(debits)} debits in the database, {count} seeded")
    if double:
        problems.append(
            f"{double} double charges: {[m for m, n in per_mandate.items() if n > 1][:5]}"
        )
    if lost:
        problems.append(f"{lost} debits never charged")
    if states.get("CHARGED", 0) != count:
        problems.append(f"debits by state: {dict(states)}")
    if claimed:
        problems.append(f"{len(claimed)} orders still waiting for a check: {claimed[:5]}")
    for entry in ledger:  # the ledger's side, order by order
        order = orders.get(entry["order_id"])
        if order is None:
            problems.append(f"ledger order {entry['order_id']} unknown to the database")
            continue
        debit = debits[order.debit_id]
        if mandates[debit.mandate_pk] != entry["mandate_id"] or str(order.amount) != str(
            entry["amount"]
        ):
            problems.append(f"order {order.order_id}: mandate or amount differs from the ledger")
        if debit.state != "CHARGED" or order.gateway_status != "CHARGED":
            problems.append(
                f"order {order.order_id} charged in the ledger, here {order.gateway_status}, "
                f"its debit {debit.state}"
            )
    charged_orders = {e["order_id"] for e in ledger}
    for order in orders.values():  # the database's side
        if order.gateway_status == "CHARGED" and order.order_id not in charged_orders:
            problems.append(f"order {order.order_id} CHARGED here, not in the ledger")
    went_unknown: dict[int, DebitHistory] = {}
    final_at: dict[int, datetime] = {}
    for row in history:
        if row.to_state == "UNKNOWN" and row.debit_id not in went_unknown:
            went_unknown[row.debit_id] = row
        if row.to_state in FINAL_DEBIT_STATES:
            final_at[row.debit_id] = row.at
    unresolved = [d for d in went_unknown if debits[d].state not in FINAL_DEBIT_STATES]
    if unresolved:
        problems.append(f"{len(unresolved)} UNKNOWN debits not reconciled")
    recovery = []
    for debit_id, row in went_unknown.items():
        if debit_id not in final_at:
            continue
        # A reclaimed claim was caused by the last kill or outage before it; any other UNKNOWN
        # by the gateway fault it met (seen at most the read timeout after it happened).
        since = row.at
        if row.cause.startswith("claimed but not settled"):
            since = max((f for f in faults_at if f <= row.at), default=row.at)
        recovery.append((final_at[debit_id] - since).total_seconds())
    last_fault, last_final = max(faults_at, default=None), max(final_at.values(), default=None)
    after_last_fault = 0.0
    if last_fault is not None and last_final is not None:
        after_last_fault = (last_final - last_fault).total_seconds()
    figures.values = {
        "faults": ",".join(f"{k}:{v}" for k, v in sorted(stats["faults"].items())) or "none",
        "duplicates_refused": stats["duplicates_refused"],
        "unknown_reconciled": len(went_unknown) - len(unresolved),
        "double_charges": double,
        "lost": lost,
        "stuck": stuck,
        "recovery_p50_s": round(_percentile(recovery, 0.5), 1),
        "recovery_p99_s": round(_percentile(recovery, 0.99), 1),
        "recovery_max_s": round(max(recovery, default=0.0), 1),
        # The "how long after the last fault every debit was final" (kills go on
        # while debits are open, so the per-UNKNOWN figures above include later kills).
        "final_after_last_fault_s": round(max(after_last_fault, 0.0), 1),
    }
    return figures


# -- the scan ---------------------------------------------------------------------------------

SECRETS = {
    "API key": API_KEY,
    "API key (Basic header)": base64.b64encode(f"{API_KEY}:".encode()).decode(),
    "webhook password": WEBHOOK_PASSWORD,
    "webhook password (Basic header)": base64.b64encode(
        f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}".encode()
    ).decode(),
}
# 13-19 digits in a row, or in groups of four split by a blank or a dash, standing alone (not
# inside a UUID or an id, nor a decimal number's digits: the fuzz's floats have 16 of them).
_DIGIT_RUN = re.compile(
    r"(?<![\w.-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?)(?![\w-])(?!\.\d)"
)
_CVV = re.compile(r"(?i)\bcvv2?\b[\"']?\s*[:=]\s*[\"']?\d{3,4}\b")


def secrets_in(text_: str) -> list[str]:
    """What in `text_` would be a leak: a card number in clear (13-19 digits passing Luhn, not a
    masked one), a CVV with its value, the API key, the webhook password."""
    found = [name for name, value in SECRETS.items() if value in text_]
    for match in _DIGIT_RUN.finditer(text_):
        digits = "".join(c for c in match.group() if c.isdigit())
        if (
            13 <= len(digits) <= 19
            and looks_like_card_number(digits)
            and not _epoch_like(digits)
            and "0" * 9 not in digits  # n x 10^k, as the fuzz makes of `gateway_id: 19`
        ):
            found.append(f"card number {digits[:4]}…{digits[-4:]}")
    if _CVV.search(text_):
        found.append("a CVV")
    return found


def _epoch_like(digits: str) -> bool:
    """Epoch milliseconds/microseconds of this century pass Luhn one time in ten: not cards."""
    return digits[:2] in ("16", "17", "18") and len(digits) in (13, 16)


def scan_for_secrets(database_url: str, logs: list[Path]) -> list[str]:
    """Every table's every row (as text) and every log record."""
    problems = []
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    for leak in secrets_in(" | ".join(str(v) for v in row)):
                        problems.append(f"secret in table {table}: {leak}")
    finally:
        engine.dispose()
    for log in logs:
        if not log.exists():
            continue
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            for leak in secrets_in(line):
                problems.append(f"secret in {log.name}:{number}: {leak}")
    return problems


def timed(action: Callable[[], Figures]) -> Figures:
    started = time.monotonic()
    figures = action()
    figures.values.setdefault("elapsed_s", round(time.monotonic() - started, 1))
    return figures
