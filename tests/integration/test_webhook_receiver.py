"""The receiver over real HTTP (uvicorn on a thread): auth, bounds, refusals, duplicates, the
sweeper after a lost enqueue, order safety, poison and replay. Every test runs on SQLite and
PostgreSQL.

`Receiver` is shared with the other webhook test modules: the real app on a real database,
whose `enqueue` processes the stored event at once (or drops it / raises, to play a crash).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from billing.bootstrap import Container
from billing.services.mandates.registry import import_mandates
from billing.services.webhook_events import (
    MAX_ATTEMPTS,
    SWEEP_AFTER,
    WebhookEvents,
    process_pending,
    sweep_unprocessed,
)
from billing.store.models import Debit, Mandate, MandateChange, Notification, Order, WebhookEvent
from billing.webhooks.app import ReceiverConfig, create_app
from tests.conftest import FakeClock
from tests.integration.sandbox_fixtures import WEBHOOK_PASSWORD, WEBHOOK_USERNAME
from tests.payout_samples import sample as payout_sample
from tests.seed_samples import SAMPLES, sample

AUTH = (WEBHOOK_USERNAME, WEBHOOK_PASSWORD)
MAX_BODY = 64 * 1024


@dataclass
class Receiver:
    """The receiver app served on 127.0.0.1 by uvicorn in a thread, on the container's database.

    `mode` says what `enqueue` does: "process" (the event, synchronously), "drop" (a lost
    message) or "raise" (the broker is down). Processing errors are kept in `errors`.
    """

    container: Container
    mode: str = "process"
    url: str = ""
    enqueued: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def enqueue(self, pk: int) -> None:
        self.enqueued.append(pk)
        if self.mode == "raise":
            raise ConnectionError("broker unreachable")
        if self.mode == "process":
            try:
                self.container.webhook_events().process(pk)
            except Exception as exc:
                self.errors.append(exc)
                raise

    def post(
        self, body: bytes | dict[str, Any], *, path: str = "/webhooks/juspay", auth: Any = AUTH
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(self.url + path, content=content, auth=auth)

    def events(self) -> list[WebhookEvent]:
        with self.container.sessions() as session:
            return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))

    def event(self, event_id: str) -> WebhookEvent:
        [found] = [e for e in self.events() if e.event_id == event_id]
        return found

    def mandate(self, mandate_id: str) -> Mandate | None:
        with self.container.sessions() as session:
            return session.scalars(
                select(Mandate).where(Mandate.mandate_id == mandate_id)
            ).one_or_none()

    def counts(self) -> tuple[int, int, int]:
        with self.container.sessions() as session:
            return tuple(  # type: ignore[return-value]
                session.scalar(select(func.count()).select_from(model)) or 0
                for model in (WebhookEvent, Mandate, MandateChange)
            )


@dataclass
class ThreadServer:
    """Any ASGI app on 127.0.0.1 and a free port, served by uvicorn in a daemon thread."""

    app: Any
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    sock: socket.socket | None = None

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off")
        server = self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert self.thread.is_alive(), "the receiver did not start"
            assert time.monotonic() < deadline, "the receiver did not start in time"
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        if self.sock is not None:
            self.sock.close()


ReceiverFactory = Callable[..., Receiver]


@pytest.fixture
def receiver_factory(
    db_url: str, make_container: Callable[..., Container]
) -> Iterator[ReceiverFactory]:
    """Start receivers on this test's database; `settings` go to the container."""
    started: list[tuple[Receiver, ThreadServer]] = []

    def make(*, mode: str = "process", **settings: Any) -> Receiver:
        settings = {"juspay_api_key": "k", "juspay_merchant_id": "m", **settings}
        container = make_container(db_url, **settings)
        receiver = Receiver(container, mode=mode)
        app = create_app(
            sessions=container.sessions,
            config=ReceiverConfig(WEBHOOK_USERNAME, WEBHOOK_PASSWORD, MAX_BODY),
            enqueue=receiver.enqueue,
            clock=container.clock,
        )
        server = ThreadServer(app)
        receiver.url = server.start()
        started.append((receiver, server))
        return receiver

    yield make
    for receiver, server in started:
        receiver.http.close()
        server.stop()


@pytest.fixture
def receiver(receiver_factory: ReceiverFactory) -> Receiver:
    return receiver_factory()


def mandate_event(name: str, event_id: str, date_created: str) -> dict[str, Any]:
    """A MANDATE_* sample with its own id and date (the samples share one id and one date)."""
    body = sample(name)
    body["id"], body["date_created"] = event_id, date_created
    return body


def seed_mandate(container: Container, mandate_id: str, **terms: object) -> None:
    fields: dict[str, object] = {
        "customer_id": f"cst_{mandate_id}",
        "mandate_id": mandate_id,
        "frequency": "ASPRESENTED",
        "amount_rule": "VARIABLE",
        "max_amount": "1000",
        "start_date": "2020-01-01",
        "payment_method_type": "UPI",
        **terms,
    }
    report = import_mandates(
        container.sessions, [(1, fields)], now=container.clock(), calendar=container.calendar
    )
    assert report.bad == 0, report.errors


def seed_debit(
    container: Container,
    mandate_id: str,
    *,
    state: str,
    flow: str,
    amount: str,
    planned_at: datetime,
    order_id: str | None = None,
    execution_date: datetime | None = None,
) -> int:
    """A debit in `state` (with its one order when `order_id` is given), as execution leaves it."""
    now = container.clock()
    with container.sessions() as session, session.begin():
        mandate = session.scalars(select(Mandate).where(Mandate.mandate_id == mandate_id)).one()
        day = container.calendar.local_date(planned_at)
        debit = Debit(
            mandate_pk=mandate.id, cycle=0, state=state, flow=flow, amount=Decimal(amount),
            currency="INR", window_first_day=day, window_last_day=day + timedelta(days=20),
            planned_at=planned_at, window_closes_at=planned_at + timedelta(days=20),
            tries=1 if order_id else 0, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(debit)
        session.flush()
        if order_id is not None:
            session.add(
                Order(
                    order_id=order_id,
                    debit_id=debit.id,
                    try_number=1,
                    amount=Decimal(amount),
                    currency="INR",
                    state="SENT",
                    execution_date=execution_date or planned_at,
                    checks=0,
                    created_at=now,
                    sent_at=now,
                    next_check_at=now + timedelta(hours=1),
                )
            )
        return debit.id


def seed_pdn(container: Container, reference: str, debit_id: int, *, txn_date: datetime) -> None:
    """Our merchant-flow PDN for a debit, sent and waiting for Juspay's answer."""
    now = container.clock()
    with container.sessions() as session, session.begin():
        debit = session.get_one(Debit, debit_id)
        session.add(
            Notification(
                reference=reference,
                mandate_pk=debit.mandate_pk,
                debit_id=debit_id,
                status="PENDING",
                amount=debit.amount,
                txn_date=txn_date,
                checks=0,
                next_check_at=now + timedelta(minutes=2),
                created_at=now,
                updated_at=now,
            )
        )


# -- the edge ------------------------------------------------------------------------------------


def test_a_sample_is_stored_and_applied_once_however_often_it_is_sent(receiver: Receiver) -> None:
    answers = [receiver.post(SAMPLES["MANDATE_CREATED"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
    [event] = receiver.events()
    assert (event.state, event.attempts, event.kind) == ("PROCESSED", 1, "ec")
    assert event.outcome == "mandate eBWQNiQgeG7fdrXPPXtVbL registered CREATED"
    assert event.body == SAMPLES["MANDATE_CREATED"].decode()  # the raw body, as received
    assert len(receiver.enqueued) == 1
    assert receiver.counts() == (1, 1, 0)
    assert receiver.errors == []


@pytest.mark.parametrize(
    "auth",
    [
        None,
        (WEBHOOK_USERNAME, "wrong"),
        ("someone", WEBHOOK_PASSWORD),
        (WEBHOOK_USERNAME, WEBHOOK_PASSWORD + "x"),
        (WEBHOOK_USERNAME, ""),
    ],
)
def test_bad_or_missing_credentials_are_401_and_store_nothing(
    receiver: Receiver, auth: tuple[str, str] | None
) -> None:
    answer = receiver.post(SAMPLES["MANDATE_CREATED"], auth=auth)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic realm=")
    assert receiver.counts() == (0, 0, 0)


@pytest.mark.parametrize(
    "header",
    ["Bearer abc", "Basic", "Basic !!!", "Basic " + "anVzcGF5LWhvb2tz", "basic"],  # no colon
)
def test_malformed_authorization_headers_are_401(receiver: Receiver, header: str) -> None:
    answer = receiver.http.post(
        receiver.url + "/webhooks/juspay",
        content=SAMPLES["MANDATE_CREATED"],
        headers={"authorization": header},
    )
    assert answer.status_code == 401
    assert receiver.counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (lambda b: b"{not json", 400, None),
        (lambda b: b"[]", 400, None),
        (lambda b: b.pop("id"), 422, "id"),
        (lambda b: b.pop("event_name"), 422, "event_name"),
        (lambda b: b.pop("content"), 422, "content"),
        (lambda b: b.update(date_created="2021-13-45"), 422, "date_created"),
        (lambda b: b["content"]["mandate"].pop("mandate_id"), 422, "content.mandate.mandate_id"),
    ],
)
def test_unreadable_or_incomplete_events_are_refused_naming_the_field(
    receiver: Receiver, change: Callable[[dict[str, Any]], Any], status: int, field: str | None
) -> None:
    body = sample("MANDATE_ACTIVATED")
    replaced = change(body)
    answer = receiver.post(replaced if isinstance(replaced, bytes) else body)
    assert answer.status_code == status
    assert answer.json().get("field") == field
    assert answer.json()["error"]
    assert receiver.counts() == (0, 0, 0)


def test_an_oversize_body_is_413_declared_or_streamed(receiver: Receiver) -> None:
    big = sample("MANDATE_CREATED")
    big["content"]["padding"] = "x" * MAX_BODY
    assert receiver.post(big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield from (b" " * 8192 for _ in range(MAX_BODY // 8192 + 2))

    streamed = receiver.http.post(receiver.url + "/webhooks/juspay", content=chunks(), auth=AUTH)
    assert streamed.status_code == 413
    assert receiver.counts() == (0, 0, 0)


def test_healthz_and_wrong_methods(receiver: Receiver) -> None:
    assert receiver.http.get(receiver.url + "/healthz").json() == {"status": "ok"}
    assert receiver.http.get(receiver.url + "/webhooks/juspay").status_code == 405


def test_an_unknown_event_is_stored_acknowledged_and_ignored(receiver: Receiver) -> None:
    body = {"id": "evt_refund_1", "event_name": "REFUND_SUCCEEDED", "date_created": 1,
            "content": {"refund": {"amount": "5"}}}  # fmt: skip
    assert receiver.post(body).status_code == 200
    event = receiver.event("evt_refund_1")
    assert event.state == "IGNORED"
    assert event.outcome == "REFUND_SUCCEEDED is not an event billing acts on"


# -- recovery ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "raise"])
def test_an_event_whose_enqueue_was_lost_is_processed_by_the_sweeper(
    receiver_factory: ReceiverFactory, clock: FakeClock, mode: str
) -> None:
    receiver = receiver_factory(mode=mode)
    assert receiver.post(SAMPLES["MANDATE_ACTIVATED"]).status_code == 200  # stored all the same
    [event] = receiver.events()
    assert (event.state, event.attempts) == ("RECEIVED", 0)
    sessions = receiver.container.sessions
    assert sweep_unprocessed(sessions, now=clock()) == []  # it may still be in the queue
    clock.advance(SWEEP_AFTER)
    assert sweep_unprocessed(sessions, now=clock()) == [event.id]
    assert sweep_unprocessed(sessions, now=clock()) == []  # leased: not enqueued twice
    assert receiver.container.webhook_events().process(event.id).startswith("PROCESSED")
    mandate = receiver.mandate("eBWQNiQgeG7fdrXPPXtVbL")
    assert mandate is not None
    assert mandate.status == "ACTIVE"
    clock.advance(SWEEP_AFTER)
    assert sweep_unprocessed(sessions, now=clock()) == []


def test_tick_can_process_what_is_pending(
    receiver_factory: ReceiverFactory, clock: FakeClock
) -> None:
    receiver = receiver_factory(mode="drop")
    for name in ("MANDATE_CREATED", "MANDATE_PAUSED"):
        receiver.post(mandate_event(name, f"evt_{name}", "2021-12-18T10:15:35Z"))
    events = receiver.container.webhook_events()
    assert process_pending(receiver.container.sessions, events, now=clock()) == 2
    assert {e.state for e in receiver.events()} == {"PROCESSED"}
    assert process_pending(receiver.container.sessions, events, now=clock()) == 0


def test_a_failing_event_is_retried_then_poisoned_and_can_be_replayed(
    receiver_factory: ReceiverFactory, clock: FakeClock
) -> None:
    receiver = receiver_factory(mode="drop")
    container = receiver.container

    def broken() -> Any:
        raise RuntimeError("notification service down")

    failing = WebhookEvents(
        container.sessions, clock=clock, calendar=container.calendar,
        debits=container.debits, notifications=broken,
    )  # fmt: skip
    # A PDN of ours (by its reference) needs the notification service.
    seed_mandate(container, "4rKxSj3bNXs7RQcdtajAkb")
    debit_id = seed_debit(container, "4rKxSj3bNXs7RQcdtajAkb", state="NOTIFYING", amount="1",
                          flow="merchant", planned_at=clock() + timedelta(days=3))  # fmt: skip
    seed_pdn(container, "2QNPw8KSbpHL122bNPgAK07", debit_id, txn_date=clock() + timedelta(days=3))
    receiver.post(SAMPLES["NOTIFICATION_SUCCEEDED"])
    [event] = receiver.events()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(RuntimeError):
            failing.process(event.id)
        stored = receiver.event(event.event_id)
        assert stored.attempts == attempt
        assert stored.last_error == "RuntimeError: notification service down"
        assert stored.state == ("POISONED" if attempt == MAX_ATTEMPTS else "RECEIVED")
        clock.advance(SWEEP_AFTER)
    assert sweep_unprocessed(container.sessions, now=clock()) == []  # never retried by itself
    result = container.webhook_events().process(event.id, replay=True)
    assert result.startswith("PROCESSED: notification 2QNPw8KSbpHL122bNPgAK07")
    assert receiver.event(event.event_id).attempts == MAX_ATTEMPTS + 1


def test_a_replay_of_a_processed_event_needs_force(receiver: Receiver) -> None:
    receiver.post(SAMPLES["MANDATE_CREATED"])
    [event] = receiver.events()
    events = receiver.container.webhook_events()
    assert events.process(event.id, replay=True) == "already PROCESSED"
    assert events.process(event.id, replay=True, force=True).startswith("PROCESSED: mandate")
    assert events.process(event.id) == "already PROCESSED"  # a redelivered task


def test_a_claimed_event_is_not_processed_twice(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(mode="drop")
    receiver.post(SAMPLES["MANDATE_CREATED"])
    [event] = receiver.events()
    with receiver.container.sessions() as session, session.begin():
        row = session.get_one(WebhookEvent, event.id)
        row.claimed_at = receiver.container.clock()  # a worker holds it right now
    assert receiver.container.webhook_events().process(event.id) == "being processed elsewhere"
    assert receiver.mandate("eBWQNiQgeG7fdrXPPXtVbL") is None


# -- order safety --------------------------------------------------------------------------------


def test_an_activation_dated_before_a_stored_revocation_leaves_the_mandate_revoked(
    receiver: Receiver,
) -> None:
    receiver.post(mandate_event("MANDATE_ACTIVATED", "evt_a1", "2021-12-18T10:15:35Z"))
    receiver.post(mandate_event("MANDATE_REVOKED", "evt_r", "2021-12-20T08:00:00Z"))
    receiver.post(mandate_event("MANDATE_ACTIVATED", "evt_a2", "2021-12-19T08:00:00Z"))
    mandate = receiver.mandate("eBWQNiQgeG7fdrXPPXtVbL")
    assert mandate is not None
    assert mandate.status == "REVOKED"
    assert receiver.event("evt_a2").outcome == (
        "mandate eBWQNiQgeG7fdrXPPXtVbL stays REVOKED (ACTIVE not applied)"
    )
    assert receiver.errors == []


def test_a_stale_open_status_does_not_move_a_mandate_back_but_a_newer_one_does(
    receiver: Receiver,
) -> None:
    def status_after(name: str, event_id: str, day: int) -> str:
        receiver.post(mandate_event(name, event_id, f"2021-12-{day}T10:00:00Z"))
        mandate = receiver.mandate("eBWQNiQgeG7fdrXPPXtVbL")
        assert mandate is not None
        return mandate.status

    assert status_after("MANDATE_ACTIVATED", "evt_1", 18) == "ACTIVE"
    assert status_after("MANDATE_PAUSED", "evt_2", 20) == "PAUSED"
    assert status_after("MANDATE_ACTIVATED", "evt_3", 19) == "PAUSED"  # older: stale
    assert status_after("MANDATE_ACTIVATED", "evt_4", 21) == "ACTIVE"
    assert status_after("MANDATE_ACTIVATED", "evt_5", 23) == "ACTIVE"  # a repeat, newer...
    assert status_after("MANDATE_PAUSED", "evt_6", 22) == "ACTIVE"  # ...makes the 22nd stale
    assert receiver.errors == []


# -- payouts -------------------------------------------------------------------------------------


def payout_event_with_a_card() -> dict[str, Any]:
    """Juspay's FULFILLMENT_ORDER sample (`webhooks/fulfillment-success.json`) for a card
    payout whose details carry a card number and a CVV (Juspay's answers mask them; a
    merchant's custom setup might not)."""
    body = payout_sample("WEBHOOK_FULFILLMENT_SUCCESS")
    body["id"] = "evt_pay_1"
    body["info"]["beneficiaryDetails"] = {
        "type": "PLAIN_CARD",
        "details": {"cardNumber": "4111111111111111", "cvv": "123", "name": "A Kumar"},
    }
    return body


def test_payout_events_are_stored_under_their_label_with_card_data_redacted_and_passed_on(
    receiver: Receiver,
) -> None:
    answer = receiver.post(payout_event_with_a_card(), path="/webhooks/juspay/payouts")
    assert answer.status_code == 200
    event = receiver.event("evt_pay_1")
    assert (event.kind, event.event_name) == ("payout", "FULFILLMENT_ORDER")
    assert event.event_at == datetime(2020, 5, 29, 7, 26, 3, tzinfo=UTC)  # its statusUpdatedAt
    assert "4111111111111111" not in event.body
    assert '"cvv": "[REDACTED]"' in event.body
    assert "XXXXXXXXXXXX1111" in event.body
    assert (event.state, event.outcome) == (
        "IGNORED",
        "ignored: fulfillment 95eb968ccdd4f2d9ef31c3e972ca40-f1 is not tracked",
    )
    assert receiver.errors == []


def test_a_malformed_payout_event_is_refused_naming_the_field_and_nothing_is_stored(
    receiver: Receiver,
) -> None:
    old_shape = {**payout_sample("WEBHOOK_PENDING"), "value": {"status": "PENDING"}}
    no_fulfillment = payout_sample("WEBHOOK_ATTEMPTED")
    del no_fulfillment["info"]["FulfillmentId"]
    bad_amount = payout_sample("WEBHOOK_ORDER_SUCCESS")
    bad_amount["info"]["amount"] = "ten"
    for body, field_name in (
        (old_shape, "value"),
        (no_fulfillment, "info.FulfillmentId"),
        (bad_amount, "info.amount"),
        ({k: v for k, v in payout_sample("WEBHOOK_PENDING").items() if k != "info"}, "info"),
    ):
        answer = receiver.post(body, path="/webhooks/juspay/payouts")
        assert (answer.status_code, answer.json()["field"]) == (422, field_name)
    assert receiver.events() == []


def test_payout_events_wait_when_payouts_are_not_there(
    receiver_factory: ReceiverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        sys.modules, "billing.services.payouts.service", None
    )  # as if not installed
    receiver = receiver_factory()
    receiver.post(payout_event_with_a_card(), path="/webhooks/juspay/payouts")
    event = receiver.event("evt_pay_1")
    assert (event.state, event.outcome) == ("IGNORED", "payouts not available")
    unknown = {**payout_event_with_a_card(), "id": "evt_pay_2", "label": "REFUND"}
    receiver.post(unknown, path="/webhooks/juspay/payouts")
    assert receiver.event("evt_pay_2").outcome == "payout REFUND is not an event billing acts on"


def test_the_sweeper_window_is_a_lease_not_a_delay(
    receiver_factory: ReceiverFactory, clock: FakeClock
) -> None:
    receiver = receiver_factory(mode="drop")
    receiver.post(SAMPLES["MANDATE_CREATED"])
    clock.advance(SWEEP_AFTER + timedelta(seconds=1))
    [pk] = sweep_unprocessed(receiver.container.sessions, now=clock())
    clock.advance(SWEEP_AFTER)  # the task that was sent got lost as well
    assert sweep_unprocessed(receiver.container.sessions, now=clock()) == [pk]
