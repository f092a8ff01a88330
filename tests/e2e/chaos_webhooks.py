"""The webhook suites of issue 16, against the running receiver (`billing webhooks serve`) and
real workers: fuzz at volume, and events out of order, repeated and stale."""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from billing.bootstrap import Container
from billing.domain.debit import FINAL_DEBIT_STATES
from billing.domain.ids import order_id_for
from billing.sandbox.lifecycle import retry_info
from billing.store import migrate
from billing.store.models import Debit, DebitHistory, Mandate, MandateChange, Order, WebhookEvent
from tests import payout_samples
from tests.e2e.chaos import (
    BILLING,
    Figures,
    PrivatePostgres,
    PrivateRedis,
    chaos_cluster,
    free_port,
    scan_for_secrets,
)
from tests.e2e.conftest import debit_states, due_mandates, plan_due_debits
from tests.integration.sandbox_fixtures import WEBHOOK_PASSWORD, WEBHOOK_USERNAME
from tests.seed_samples import SAMPLES, sample

MAX_BODY = 16 * 1024
EC, PAYOUTS = "/webhooks/juspay", "/webhooks/juspay/payouts"
REFUSALS = {400, 401, 413, 422}


class Receiver:
    """`billing webhooks serve` on a free port, on the given database and broker."""

    def __init__(self, tmp: Path, database_url: str, broker_url: str) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
        self.env.update(
            {
                "BILLING_DATABASE_URL": database_url,
                "BILLING_BROKER_URL": broker_url,
                "BILLING_WEBHOOK_USERNAME": WEBHOOK_USERNAME,
                "BILLING_WEBHOOK_PASSWORD": WEBHOOK_PASSWORD,
                "BILLING_WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
            }
        )
        self.proc = subprocess.Popen(
            [BILLING, "webhooks", "serve", "--port", str(self.port)],
            cwd=tmp, env=self.env, stdout=(tmp / "receiver.log").open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.resent = 0
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.get("/healthz")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the webhook receiver did not start") from None
                time.sleep(0.1)

    def post(self, path: str, body: bytes, *, auth: bool = True, header: str | None = None) -> int:
        headers = {"content-type": "application/json"}
        if header is not None:
            headers["authorization"] = header
        elif auth:
            pair = f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
        try:
            return self.client.post(path, content=body, headers=headers).status_code
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # A keep-alive connection the server closed as this request went out (httpx does
            # not retry): counted, and sent once more on a new connection.
            self.resent += 1
            return self.client.post(path, content=body, headers=headers).status_code

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


@contextmanager
def private_services(tmp: Path) -> Iterator[tuple[str, str]]:
    broker, postgres = PrivateRedis(tmp), PrivatePostgres()
    try:
        broker.start()
        postgres.init()
        migrate.upgrade(postgres.url)
        yield postgres.url, broker.url
    finally:
        broker.kill()
        postgres.destroy()


def _fingerprint(engine: Engine, tables: list[str]) -> tuple[int, ...]:
    """Rows per table, and the newest webhook event: any insert, delete or new event shows."""
    counts = ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables)
    with engine.connect() as connection:
        row = connection.execute(text(f"SELECT {counts}")).one()
    return tuple(int(v) for v in row)


# -- bodies -----------------------------------------------------------------------------------

EC_NAMES = sorted(SAMPLES)
PAYOUT_BODIES = [payout_samples.sample(name) for name in payout_samples.WEBHOOKS]
CARD = "4111111111111111"  # Luhn-valid: must never be stored or logged in clear


def _paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return found
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 10**20, 2**63, rng.randint(-(10**6), 10**6)])
    if choice == 3:
        return rng.choice([1e308, -0.0, 1.001, float(rng.random())])
    if choice == 4:
        return rng.choice(["", "true", "21", "1e999", "2021-12-18T10:15:35Z", "\u0000", "é" * 40])
    if choice == 5:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(12)))
    if choice in (6, 7):
        return {
            rng.choice(["id", "status", "content", "order", "amount", "x", ""]): _random_json(
                rng, depth + 1
            )
            for _ in range(rng.randrange(4))
        }
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def _retype(rng: random.Random, value: object) -> object:
    options: list[object] = [None, "", str(value), [value], {"v": value}, _random_json(rng)]
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        options.append(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        options += [float(value), -value, value * 10**15]
    return rng.choice(options)


def _mutate(rng: random.Random, body: dict[str, Any]) -> None:
    for _ in range(rng.randint(1, 3)):
        where = _paths(body)
        if not where:
            return
        *parents, key = rng.choice(where)
        node: Any = body
        for step in parents:
            node = node[step]
        action = rng.choice(["delete", "retype", "replace", "card"])
        if action == "delete" and isinstance(node, dict):
            del node[key]
        elif action == "retype":
            node[key] = _retype(rng, node[key])
        elif action == "card" and isinstance(node, dict):
            node["card_number"], node["cvv"] = CARD, "123"
            node["note"] = f"paid with {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}"
        else:
            node[key] = _random_json(rng)


def fuzz_body(rng: random.Random, number: int) -> tuple[str, bytes, dict[str, Any]]:
    """One request: path, body and how to post it (auth on by default)."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([EC, PAYOUTS]), rng.randbytes(rng.randrange(300)), {}
    if roll < 0.12:
        return rng.choice([EC, PAYOUTS]), json.dumps(_random_json(rng)).encode(), {}
    if roll < 0.14:
        return EC, b"{" + b" " * MAX_BODY + b"}", {}
    if roll < 0.18:  # a valid body with wrong credentials
        body = sample(rng.choice(EC_NAMES))
        body["id"] = f"evt_fz_{number}"
        pair = rng.choice([f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD[:-1]}", "x:y", WEBHOOK_USERNAME])
        header = rng.choice(["", "Basic " + base64.b64encode(pair.encode()).decode(), "Bearer x"])
        return EC, json.dumps(body).encode(), {"header": header or None, "auth": False}
    if roll < 0.33:
        body = copy.deepcopy(rng.choice(PAYOUT_BODIES))
        body["id"] = f"evt_fz_{number}"
        _mutate(rng, body)
        return PAYOUTS, json.dumps(body).encode(), {}
    body = sample(rng.choice(EC_NAMES))
    body["id"] = f"evt_fz_{number}"
    if rng.random() < 0.9:
        _mutate(rng, body)
    return (EC if rng.random() < 0.95 else PAYOUTS), json.dumps(body).encode(), {}


def run_fuzz(count: int, tmp: Path, *, seed: int = 16) -> Figures:
    """Suite 5: `count` random and mutated bodies against the running receiver: never a 5xx,
    never a change to stored state from a refused body; then the tables and the receiver's log
    are scanned for secrets. (What handlers make of accepted mutated content is
    tests/integration/test_webhook_fuzz.py's.)"""
    figures = Figures("fuzz receiver")
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    with private_services(tmp) as (database_url, broker_url):
        engine = create_engine(database_url)
        tables = sorted(inspect(engine).get_table_names())
        receiver = Receiver(tmp, database_url, broker_url)
        started = time.monotonic()
        try:
            # The receiver is the only writer meanwhile, and it writes webhook_events only. Every
            # body carries a fresh id (evt_fz_N) unless the mutation hit it: at the end, no
            # refused body's id is stored, no more events are stored than bodies accepted, and
            # every other table is as it was.
            first = _fingerprint(engine, tables)
            bodies = [fuzz_body(rng, number) for number in range(count)]

            def post(item: tuple[str, bytes, dict[str, Any]]) -> int:
                return receiver.post(item[0], item[1], **item[2])

            with ThreadPoolExecutor(4) as pool:
                answered = list(pool.map(post, bodies))
            fuzz_seconds = time.monotonic() - started
            last = _fingerprint(engine, tables)
            with engine.connect() as connection:
                stored = set(connection.scalars(select(WebhookEvent.event_id)))
            for number, ((path, body, _), status) in enumerate(zip(bodies, answered, strict=True)):
                statuses[status] += 1
                if status not in REFUSALS | {200}:
                    figures.problems.append(f"#{number} {path}: {status} for {body[:200]!r}")
                elif status != 200 and f"evt_fz_{number}" in stored:
                    figures.problems.append(f"#{number}: refused ({status}) but stored")
            if len(stored) > statuses[200]:
                figures.problems.append(f"{len(stored)} events stored, {statuses[200]} accepted")
            changed = [t for t, a, b in zip(tables, first, last, strict=True)
                       if a != b and t != "webhook_events"]  # fmt: skip
            if changed:
                figures.problems.append(f"the receiver changed {changed}")
        finally:
            receiver.stop()
        figures.problems += scan_for_secrets(database_url, [tmp / "receiver.log"])
        engine.dispose()
    fivexx = sum(n for s, n in statuses.items() if s >= 500)
    figures.values = {
        "bodies": count,
        "answers": ",".join(f"{s}:{n}" for s, n in sorted(statuses.items())),
        "5xx": fivexx,
        "refused_that_changed_state": sum("refused" in p for p in figures.problems),
        "secrets_found": sum(p.startswith("secret") for p in figures.problems),
        "resent_after_a_dropped_connection": receiver.resent,
        "bodies_per_s": round(count / fuzz_seconds),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return figures


# -- out of order -----------------------------------------------------------------------------


def _mandate_event(mandate_id: str, status: str, at: datetime, event_id: str) -> dict[str, Any]:
    name = {"ACTIVE": "MANDATE_ACTIVATED", "PAUSED": "MANDATE_PAUSED",
            "REVOKED": "MANDATE_REVOKED"}[status]  # fmt: skip
    body = sample("MANDATE_ACTIVATED")
    mandate = body["content"]["mandate"]
    mandate.update({"mandate_id": mandate_id, "customer_id": f"c{mandate_id}", "status": status})
    body.update({"id": event_id, "event_name": name, "date_created": _iso(at)})
    return body


def _order_event(
    order: Order, mandate_id: str, customer_id: str, status: str, at: datetime, event_id: str,
    *, retrying: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Juspay's ORDER_SUCCEEDED sample made about one of our debit orders."""
    body = sample("ORDER_SUCCEEDED")
    content = body["content"]["order"]
    failed = status != "CHARGED"
    content.update({
        "order_id": order.order_id, "amount": float(order.amount), "status": status,
        "status_id": 27 if failed else 21, "customer_id": customer_id,
        "payment_method_type": "CARD", "payment_method": "VISA",
    })  # fmt: skip
    content["mandate"]["mandate_id"] = mandate_id
    detail = content["txn_detail"]
    detail.update({"txn_object_type": "EMANDATE_PAYMENT", "order_id": order.order_id,
                   "status": status, "txn_amount": float(order.amount),
                   "error_code": "ZE" if failed else "", "error_message": ""})  # fmt: skip
    if failed:
        content["bank_error_code"] = "ZE"
        content["bank_error_message"] = "Card declined"
    if retrying:
        content["additional_info"] = {"mandate_retry_info": retry_info(1, 4)}
    body.update({"id": event_id, "event_name": "ORDER_FAILED" if failed else "ORDER_SUCCEEDED",
                 "date_created": _iso(at)})  # fmt: skip
    return body


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The events are dated this far after the webhook phase starts: a status billing reads from
# the sandbox meanwhile (which knows nothing of these events, and says PENDING_VBV) must not be
# newer than them, or billing rightly believes it over them (seen on a slow long run).
AHEAD = timedelta(hours=1)


def run_out_of_order(count: int, tmp: Path, *, seed: int = 16) -> Figures:
    """Suite 4: `count` events about real orders (executed by real workers against the
    sandbox) and mandates, each delivered 2-3 times in random order to the running receiver,
    some older than what is already applied. Each is applied at most once, every final state is
    the newest event's, and no debit is moved by a stale event."""
    figures = Figures("webhooks out of order")
    problems = figures.problems
    rng = random.Random(seed)
    orders_n = max(3, count // 4 // 3 * 3)  # two events each: half the events
    mandate_events = count - 2 * orders_n
    with chaos_cluster(tmp, private=True) as (cluster, app, sandbox, broker, _):
        assert broker is not None
        # Orders: a third charged at once, a third pending then charged, a third pending then
        # failed; the two pending thirds are settled by the webhooks alone.
        rows = due_mandates(orders_n)
        sandbox.seed_mandates(rows)
        plan_due_debits(app, rows)
        pending = [
            {"kind": "pending", "polls": 10**6, "endpoint": "txns", "key": order_id_for(m, 0, 1)}
            for m in (r["mandate_id"] for r in rows[orders_n // 3 :])
        ]
        sandbox.call("POST", "/faults", pending)
        cluster.start_beat()
        cluster.start_worker("worker", concurrency=2)
        deadline = time.monotonic() + max(300, orders_n)
        while True:
            states = debit_states(app)
            if states.get("CHARGED", 0) + states.get("PENDING", 0) == orders_n:
                break
            if time.monotonic() > deadline:
                problems.append(f"orders did not reach the webhook phase: {states}")
                return figures
            time.sleep(0.5)
        cluster.stop_all()  # no more polls: from here on only webhooks move anything
        started = time.monotonic()
        now = datetime.now(UTC)
        with app.sessions() as session:
            found = session.execute(
                select(Order, Mandate.mandate_id, Mandate.customer_id, Debit.id)
                .join(Debit, Debit.id == Order.debit_id)
                .join(Mandate, Mandate.id == Debit.mandate_pk)
            ).all()
        events: list[dict[str, Any]] = []
        expect_debit: dict[int, str] = {}
        for index, (order, mandate_id, customer_id, debit_id) in enumerate(
            sorted(found, key=lambda f: f[1])
        ):
            third = 3 * index // len(found)
            ids = (f"evt_ord_{index}_old", f"evt_ord_{index}_new")
            if third == 0:  # charged already: an older failure is stale, the success repeats it
                charged_at = order.status_at or order.settled_at or now
                events.append(_order_event(order, mandate_id, customer_id, "AUTHORIZATION_FAILED",
                                           charged_at - timedelta(minutes=30), ids[0]))  # fmt: skip
                newest = "CHARGED"
            else:  # pending: Juspay's retrying failure first, then the outcome
                soon = now + AHEAD
                old = _order_event(order, mandate_id, customer_id, "AUTHENTICATION_FAILED", soon,
                                   ids[0], retrying=True)  # fmt: skip
                events.append(old)
                newest = "CHARGED" if third == 1 else "AUTHORIZATION_FAILED"
            events.append(_order_event(order, mandate_id, customer_id, newest,
                                       now + 2 * AHEAD, ids[1]))  # fmt: skip
            expect_debit[debit_id] = newest
        expect_mandate: dict[str, str] = {}
        number = 0
        while number < mandate_events:
            mandate_id = f"mwh{len(expect_mandate):05d}"
            statuses = ["ACTIVE", "PAUSED", "ACTIVE", "PAUSED", "REVOKED"][: rng.randint(2, 5)]
            for step, status in enumerate(statuses):
                at = now + AHEAD + timedelta(minutes=step)
                events.append(
                    _mandate_event(mandate_id, status, at, f"evt_mdt_{mandate_id}_{step}")
                )
                number += 1
            expect_mandate[mandate_id] = statuses[-1]
        deliveries = [e for e in events for _ in range(rng.choice((2, 3)))]
        rng.shuffle(deliveries)
        cluster.extra_env.update({"BILLING_WEBHOOK_USERNAME": WEBHOOK_USERNAME,
                                  "BILLING_WEBHOOK_PASSWORD": WEBHOOK_PASSWORD})  # fmt: skip
        cluster.start_worker("webhook-worker", concurrency=2)
        receiver = Receiver(tmp, cluster.database_url, broker.url)
        answers: Counter[int] = Counter()
        try:
            for body in deliveries:
                answers[receiver.post(EC, json.dumps(body).encode())] += 1
        finally:
            receiver.stop()
        deadline = time.monotonic() + max(300, len(events) // 5)
        while time.monotonic() < deadline:
            with app.sessions() as session:
                waiting = session.scalar(
                    select(func.count()).select_from(WebhookEvent)
                    .where(WebhookEvent.state == "RECEIVED")
                )  # fmt: skip
            if not waiting:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        _judge_out_of_order(app, events, expect_debit, expect_mandate, answers, figures)
        figures.values = {
            "events": len(events),
            "deliveries": len(deliveries),
            "orders": len(expect_debit),
            "mandates": len(expect_mandate),
            **figures.values,
            "elapsed_s": round(elapsed, 1),
        }
    return figures


def _judge_out_of_order(
    app: Container,
    events: list[dict[str, Any]],
    expect_debit: dict[int, str],
    expect_mandate: dict[str, str],
    answers: Counter[int],
    figures: Figures,
) -> None:
    problems = figures.problems
    with app.sessions() as session:
        stored = Counter(session.scalars(select(WebhookEvent.event_id)))
        states = Counter(session.scalars(select(WebhookEvent.state)))
        debits = {d.id: d for d in session.scalars(select(Debit))}
        orders = {o.debit_id: o for o in session.scalars(select(Order))}
        moved_by_webhook = Counter(
            session.scalars(
                select(DebitHistory.debit_id).where(DebitHistory.cause.like("webhook%"))
            )
        )
        mandates = {m.mandate_id: m for m in session.scalars(select(Mandate))}
        status_changes = Counter(
            session.scalars(
                select(Mandate.mandate_id)
                .join(MandateChange, MandateChange.mandate_pk == Mandate.id)
                .where(MandateChange.kind == "status", MandateChange.source == "webhook")
            )
        )
    if answers.keys() - {200}:
        problems.append(f"answers other than 200: {dict(answers)}")
    twice = [e for e, n in stored.items() if n > 1]
    if twice or len(stored) != len({e["id"] for e in events}):
        problems.append(f"{len(stored)} events stored for {len(events)} sent; twice: {twice[:5]}")
    if states.keys() - {"PROCESSED", "IGNORED"}:
        problems.append(f"events by state: {dict(states)}")
    wrong_debits = stale_moves = 0
    for debit_id, newest in expect_debit.items():
        debit, order = debits[debit_id], orders[debit_id]
        charged = newest == "CHARGED"
        if (
            order.gateway_status != newest
            or (debit.state == "CHARGED") != charged
            or (debit.state not in FINAL_DEBIT_STATES | {"RETRY_SCHEDULED"})
        ):
            wrong_debits += 1
            problems.append(f"debit {debit_id}: {debit.state}, order {order.gateway_status}, "
                            f"newest event {newest}")  # fmt: skip
        # One webhook move at most: the newest event's (none for a debit charged before).
        if moved_by_webhook[debit_id] > 1:
            stale_moves += moved_by_webhook[debit_id] - 1
            problems.append(
                f"debit {debit_id} moved {moved_by_webhook[debit_id]} times by webhooks"
            )
    per_mandate = Counter(e["content"]["mandate"]["mandate_id"] for e in events
                          if "mandate" in e["content"])  # fmt: skip
    wrong_mandates = applied_twice = 0
    for mandate_id, newest in expect_mandate.items():
        mandate = mandates.get(mandate_id)
        if mandate is None or mandate.status != newest:
            wrong_mandates += 1
            problems.append(f"mandate {mandate_id}: {mandate and mandate.status}, newest {newest}")
        if status_changes[mandate_id] > per_mandate[mandate_id]:
            applied_twice += 1
            problems.append(f"mandate {mandate_id}: {status_changes[mandate_id]} status changes "
                            f"from {per_mandate[mandate_id]} events")  # fmt: skip
    figures.values = {
        "duplicates_refused": answers[200] - len(stored),
        "events_by_state": ",".join(f"{s}:{n}" for s, n in sorted(states.items())),
        "wrong_final_debits": wrong_debits,
        "wrong_final_mandates": wrong_mandates,
        "applied_twice": applied_twice + len(twice),
        "debits_moved_by_stale_events": stale_moves,
    }
