"""Benchmark: webhook events stored per second by ONE `billing webhooks serve` process, beside a
bare Starlette + uvicorn endpoint (one insert per request) measured in the same run.

    .venv/bin/python bench/webhook_ingestion.py [--seconds 10] [--concurrency 48] \\
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] \\
        [--broker-url redis://HOST:PORT/DB]   # default: its own redis-server on a free port

Both servers run as real subprocesses on a scratch PostgreSQL database (dropped at the end):
the product as the README says (`billing webhooks serve --port P` with
BILLING_WEBHOOK_USERNAME / _PASSWORD and a Redis broker, so each stored event is enqueued as
in production), the bare endpoint as `uvicorn` on a Starlette app in this file (read the body,
INSERT one row in its own transaction, 200). The load generator is this process: an asyncio
HTTP/1.1 client on raw keep-alive connections (`--concurrency` requests in flight), because
an httpx client costs ~0.8 ms of CPU per request (README's measured facts) and would be the
bottleneck on 2 cores. Bodies are Juspay's samples (tests/seed_samples.py), each with a distinct
id, Basic auth on every request. Printed per server: events/s (2xx over the window, checked
against the rows stored), p50/p99 latency, the server's and the generator's CPU over the window.
Targets: >= 1,000 events/s and >= 50 % of the bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratch import scratch_database  # bench/scratch.py  # noqa: E402

from billing.store import migrate  # noqa: E402
from tests.seed_samples import SAMPLES, sample  # noqa: E402

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
USERNAME, PASSWORD = "juspay", "bench-secret"
# Juspay's EC samples, the card-bearing ORDER_SUCCEEDED among them (redacted before storing).
NAMES = [n for n in SAMPLES if not n.startswith("PAYOUT")]


# -- the bare endpoint (run as `python bench/webhook_ingestion.py --bare-app`) ----------------


def bare_app() -> object:
    """A Starlette endpoint doing one INSERT per request, on a pooled engine."""
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_size=40, max_overflow=0)
    insert = text("INSERT INTO bare_events (event_id, body) VALUES (:id, :body)")

    def store(event_id: str, body: str) -> None:
        with engine.begin() as c:
            c.execute(insert, {"id": event_id, "body": body})

    async def receive(request: Request) -> JSONResponse:
        raw = await request.body()
        event_id = json.loads(raw)["id"]
        await run_in_threadpool(store, event_id, raw.decode())
        return JSONResponse({"status": "stored", "id": event_id})

    return Starlette(routes=[Route("/webhooks/juspay", receive, methods=["POST"])])


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of one process and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def server(args: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{args[0]} exited: see {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"nothing listening on {port}: see {log}") from None
                time.sleep(0.1)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the load generator ------------------------------------------------------------------------


@dataclass
class Load:
    ok: int
    refused: dict[int, int]
    latencies: list[float]
    seconds: float
    generator_cpu: float
    server_cpu: float


def bodies(prefix: str) -> Iterator[bytes]:
    """Juspay's samples in turn, each with its own id (nothing is refused as a duplicate)."""
    templates = [sample(name) for name in NAMES]
    for n in itertools.count():
        body = templates[n % len(templates)]
        body["id"] = f"evt_{prefix}_{n}"
        yield json.dumps(body).encode()


def request(port: int, body: bytes) -> bytes:
    auth = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    return (
        f"POST /webhooks/juspay HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def one_connection(
    port: int, source: Iterator[bytes], stop: float, window: tuple[float, float], load: Load
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (started := time.perf_counter()) < stop:
            writer.write(request(port, next(source)))
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            done = time.perf_counter()
            if not window[0] <= started < window[1]:
                continue  # warm-up and wind-down are not counted
            status = int(status_line.split()[1])
            if status == 200:
                load.ok += 1
                load.latencies.append(done - started)
            else:
                load.refused[status] = load.refused.get(status, 0) + 1
    finally:
        writer.close()


async def drive(port: int, pid: int, prefix: str, seconds: float, concurrency: int) -> Load:
    warm = 2.0
    now = time.perf_counter()
    window = (now + warm, now + warm + seconds)
    load = Load(0, {}, [], seconds, 0.0, 0.0)
    source = bodies(prefix)
    tasks = [
        asyncio.create_task(one_connection(port, source, window[1], window, load))
        for _ in range(concurrency)
    ]
    await asyncio.sleep(warm)
    cpu0, server0 = own_cpu(), cpu_of(pid)
    await asyncio.sleep(seconds)
    load.generator_cpu, load.server_cpu = own_cpu() - cpu0, cpu_of(pid) - server0
    await asyncio.gather(*tasks)
    return load


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def line(label: str, load: Load, stored: int) -> float:
    rate = load.ok / load.seconds
    print(
        f"{label}: {rate:,.0f} events/s ({load.ok} x 200 in {load.seconds:.0f} s, "
        f"{stored} rows stored in all, refused {load.refused or 'none'}), "
        f"p50 {percentile(load.latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(load.latencies, 0.99) * 1000:.1f} ms; CPU over the window: server "
        f"{load.server_cpu / load.seconds:.0%}, load generator "
        f"{load.generator_cpu / load.seconds:.0%} of one core",
        flush=True,
    )
    return rate


@contextmanager
def own_redis(url: str | None) -> Iterator[str]:
    """The given broker URL, or a private redis-server on a free port for the run."""
    if url:
        yield url
        return
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    if sys.argv[1:] == ["--bare-app"]:  # pragma: no cover - the subprocess's entry
        import uvicorn  # noqa: PLC0415

        uvicorn.run(bare_app(), host="127.0.0.1", port=int(os.environ["BENCH_PORT"]),
                    log_config=None, access_log=False)  # fmt: skip
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument(
        "--broker-url", help="a Redis database the bench may empty (default: its own redis-server)"
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--logs", type=Path, default=Path("/tmp"))
    parser.add_argument(
        "--profile", type=Path, help="py-spy the product over the window: collapsed stacks here"
    )
    args = parser.parse_args()
    with (
        own_redis(args.broker_url) as broker_url,
        scratch_database(args.postgres_url, "bench_webhooks") as url,
    ):
        args.broker_url = broker_url
        migrate.upgrade(url)
        engine = create_engine(url)
        with engine.begin() as c:
            c.execute(text("CREATE TABLE bare_events (id bigserial PRIMARY KEY, "
                           "event_id text UNIQUE NOT NULL, body text NOT NULL, "
                           "received_at timestamptz NOT NULL DEFAULT now())"))  # fmt: skip
        env = {
            **os.environ,
            "BILLING_DATABASE_URL": url,
            "BILLING_BROKER_URL": args.broker_url,
            "BILLING_WEBHOOK_USERNAME": USERNAME,
            "BILLING_WEBHOOK_PASSWORD": PASSWORD,
        }
        port = free_port()
        with server(
            [str(BIN / "billing"), "webhooks", "serve", "--port", str(port)],
            env, port, args.logs / "bench_webhooks_product.log",
        ) as pid:  # fmt: skip
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [str(BIN / "py-spy"), "record", "--nonblocking", "--gil", "-p", str(pid),
                     "-r", "200", "-d", str(int(args.seconds + 2)), "-f", "raw",
                     "-o", str(args.profile)],
                    stdout=subprocess.DEVNULL,
                )  # fmt: skip
            product = asyncio.run(drive(port, pid, "p", args.seconds, args.concurrency))
            if spy:
                spy.wait()
        with engine.connect() as c:
            stored = c.scalar(text("SELECT count(*) FROM webhook_events"))
        ours = line("billing webhooks serve", product, stored or 0)
        broker = redis.Redis.from_url(args.broker_url)  # this bench's own database: emptied
        print(f"  {broker.llen('webhooks')} messages enqueued for {stored} events", flush=True)
        broker.flushdb()
        port = free_port()
        with server(
            [sys.executable, __file__, "--bare-app"],
            {**env, "BENCH_DATABASE_URL": url, "BENCH_PORT": str(port)},
            port, args.logs / "bench_webhooks_bare.log",
        ) as pid:  # fmt: skip
            bare = asyncio.run(drive(port, pid, "b", args.seconds, args.concurrency))
        with engine.connect() as c:
            stored = c.scalar(text("SELECT count(*) FROM bare_events"))
        theirs = line("bare Starlette + uvicorn, one INSERT", bare, stored or 0)
        engine.dispose()
    print(
        f"ratio product/bare = {ours / theirs:.0%} (target >= 50 %); "
        f"product {'meets' if ours >= 1000 else 'MISSES'} >= 1,000 events/s",
        flush=True,
    )


if __name__ == "__main__":
    main()
