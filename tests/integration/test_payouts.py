"""Payout retries against the sandbox over HTTP, on SQLite and PostgreSQL, driven by one clock.

The harness here is the payout twin of billing_harness.Harness: the real container (with the
Attempt API keys, a card data key and optionally a CVV provider), the sandbox, one clock, and
`tick` = what `billing tick` / beat do for payouts. Each scenario ends by checking what the
sandbox recorded (its decrypted attempts and its payout ledger), not only what we believe.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwcrypto import jwe, jwk
from sqlalchemy import select

from billing.bootstrap import Container
from billing.gateway import CardNumber, CardToken
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from billing.services.payouts.service import (
    Payouts,
    Registration,
    apply_payout_event,
    payout_halt,
    resume,
)
from billing.store.models import Fulfillment, PayoutAttempt, PayoutOrder
from tests.conftest import FakeClock
from tests.integration.sandbox_fixtures import (
    API_KEY,
    KEY_ID,
    MERCHANT_ID,
    MERCHANT_KEY_ID,
    WebhookReceiver,
    card_fulfillment,
    payout_order,
    wait_until,
)

T0 = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
CUSTOMER = "cst_payout_1"
PAN = "5513651111111111"
CARD = CardNumber(PAN, "02", "2028", name="A Kumar")
TOKEN = "4895370011112222"
CVV = "7319"


def cvv_provider(*, order_id: str, fulfillment_id: str) -> str | None:
    """The merchant's CVV provider (BILLING_CVV_PROVIDER=tests.integration.test_payouts:...)."""
    return CVV if fulfillment_id.endswith("-cvv") or order_id.endswith("cvv") else None


def no_cvv_provider(*, order_id: str, fulfillment_id: str) -> str | None:
    return None


def new_card_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@dataclass
class PayoutHarness:
    app: Container
    sandbox: SandboxServer
    clock: FakeClock

    def at(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.sandbox.state.clock.set(moment)

    def payouts(self) -> Payouts:
        return self.app.payouts()

    def tick(self, moment: datetime | None = None) -> int:
        if moment is not None:
            self.at(moment)
        return self.payouts().run_due()

    def next_due(self) -> datetime | None:
        now = self.clock()
        with self.app.sessions() as session:
            found = [
                session.scalar(select(column).where(column > now).order_by(column).limit(1))
                for column in (Fulfillment.next_attempt_at, PayoutOrder.next_check_at)
            ]
        due = [moment for moment in found if moment is not None]
        return min(due) if due else None

    def run_until(self, end: datetime) -> None:
        """Tick at every instant something is due until `end`."""
        self.tick()
        while (due := self.next_due()) is not None and due <= end:
            self.tick(due)
        self.at(end)

    def seed(self, order_id: str, *fulfillments: dict[str, Any]) -> None:
        """A payout order as Juspay's order create takes it: by default one PLAIN_CARD
        fulfillment `<order>-f1` of 250.50 that failed with a soft code (91)."""
        self.sandbox.state.seed_payout(payout_order(order_id, CUSTOMER, *fulfillments))

    def track(
        self, order_id: str, card: CardNumber | CardToken | None = CARD, **extra: Any
    ) -> None:
        self.payouts().track(Registration(order_id, CUSTOMER, card, **extra))

    def fulfillment(self, fulfillment_id: str) -> Fulfillment:
        with self.app.sessions() as session:
            return session.scalars(
                select(Fulfillment).where(Fulfillment.fulfillment_id == fulfillment_id)
            ).one()

    def attempts(self, fulfillment_id: str) -> list[PayoutAttempt]:
        with self.app.sessions() as session:
            return list(
                session.scalars(
                    select(PayoutAttempt)
                    .join(Fulfillment, Fulfillment.id == PayoutAttempt.fulfillment_pk)
                    .where(Fulfillment.fulfillment_id == fulfillment_id)
                    .order_by(PayoutAttempt.number)
                )
            )

    def sandbox_attempts(self, fulfillment_id: str | None = None) -> list[dict[str, Any]]:
        views = httpx.get(f"{self.sandbox.url}/sandbox/attempts").json()["attempts"]
        return [a for a in views if fulfillment_id in (None, a["fulfillment_id"])]

    def paid(self) -> list[tuple[str, str]]:
        ledger = httpx.get(f"{self.sandbox.url}/sandbox/payout-ledger").json()["entries"]
        return [(e["fulfillment_id"], e["amount"]) for e in ledger]

    def fault(self, **spec: Any) -> None:
        self.sandbox.state.faults.add(Fault.from_spec(spec))


@pytest.fixture
def payout_harness_factory(
    db_url: str,
    make_container: Callable[..., Container],
    sandbox: SandboxServer,
    clock: FakeClock,
    juspay_public_key_file: Path,
) -> Iterator[Callable[..., PayoutHarness]]:
    def make(**settings: object) -> PayoutHarness:
        options: dict[str, object] = {
            "juspay_base_url": sandbox.url,
            "juspay_api_key": API_KEY,
            "juspay_merchant_id": MERCHANT_ID,
            "juspay_read_timeout": timedelta(seconds=0.5),
            "juspay_connect_timeout": timedelta(seconds=0.5),
            "juspay_public_key_file": juspay_public_key_file,
            "juspay_key_id": KEY_ID,
            "merchant_key_id": MERCHANT_KEY_ID,
            "card_data_key": new_card_key(),
        }
        options.update(settings)
        harness = PayoutHarness(make_container(db_url, **options), sandbox, clock)
        harness.at(T0)
        return harness

    yield make
    sandbox.state.clock.real()


@pytest.fixture
def payout_harness(payout_harness_factory: Callable[..., PayoutHarness]) -> PayoutHarness:
    return payout_harness_factory()


# --- a retry that succeeds -------------------------------------------------------------------


def test_a_failed_card_fulfillment_is_retried_with_a_jwe_and_settles_success_by_polling(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po1")
    h.track("po1")
    tracked = h.fulfillment("po1-f1")
    assert (tracked.status, tracked.attempt_state, tracked.card_last4) == ("FAILURE", "DUE", "1111")
    assert tracked.next_attempt_at == T0  # the first attempt is due as soon as it is seen

    h.tick(T0)
    (sent,) = h.sandbox_attempts()
    assert sent["plaintext"] == {
        "fulfillmentId": "po1-f1",
        "cardInfo": {
            "cardNumber": PAN,
            "cardExpiry": {"month": "02", "year": "2028"},
            "name": "A Kumar",
        },
    }
    waiting = h.fulfillment("po1-f1")
    assert (waiting.attempt_state, waiting.attempts_made) == ("WAITING", 1)
    (attempt,) = h.attempts("po1-f1")
    assert (attempt.number, attempt.state, attempt.counted, attempt.outcome) == (
        1,
        "ACK",
        True,
        None,
    )

    h.run_until(T0 + timedelta(hours=1))
    done = h.fulfillment("po1-f1")
    assert (done.status, done.attempt_state, done.attempts_made) == ("SUCCESS", "DONE", 1)
    (attempt,) = h.attempts("po1-f1")
    assert attempt.outcome == "SUCCESS"
    assert h.paid() == [("po1-f1", "250.50")]
    assert len(h.sandbox_attempts()) == 1
    with h.app.sessions() as session:
        order = session.scalars(select(PayoutOrder)).one()
        assert (order.status, order.next_check_at) == ("FULFILLMENTS_SUCCESSFUL", None)


def test_a_card_token_attempt_sends_only_the_token(payout_harness: PayoutHarness) -> None:
    h = payout_harness
    h.seed("po2")
    h.track("po2", CardToken(TOKEN))
    assert h.fulfillment("po2-f1").card_kind == "TOKEN"
    h.tick(T0)
    (sent,) = h.sandbox_attempts()
    assert sent["plaintext"] == {"fulfillmentId": "po2-f1", "cardInfo": {"cardToken": TOKEN}}
    # and the JWE opens independently with the sandbox's private key
    private = jwk.JWK.from_pem(
        httpx.get(f"{h.sandbox.url}/sandbox/keys/juspay-private.pem").content
    )
    token = jwe.JWE()
    token.deserialize(sent["payload"], key=private)
    assert b'"cardToken"' in token.payload
    h.run_until(T0 + timedelta(hours=1))
    assert h.fulfillment("po2-f1").attempt_state == "DONE"
    assert h.paid() == [("po2-f1", "250.50")]


def test_the_attempt_settles_success_through_the_payout_webhook_without_polling(
    payout_harness: PayoutHarness, webhook_receiver: WebhookReceiver
) -> None:
    h = payout_harness
    h.seed("po3")
    h.track("po3")
    h.tick(T0)
    assert h.fulfillment("po3-f1").attempt_state == "WAITING"
    requests_before = len(h.sandbox.state.requests)
    h.sandbox.state.clock.set(T0 + timedelta(seconds=61))  # the sandbox settles on its own
    events = wait_until(
        lambda: [
            e
            for e in webhook_receiver.events("/payouts")
            if (e["label"], e["value"]) == ("FULFILLMENT_ORDER", "SUCCESS")
        ],
        what="the FULFILLMENT_ORDER SUCCESS webhook",
    )
    h.clock.set(T0 + timedelta(seconds=61))
    result = apply_payout_event(h.app.sessions, events[0], now=h.clock())
    assert result.startswith("applied: po3-f1 SUCCESS/DONE")
    done = h.fulfillment("po3-f1")
    assert (done.status, done.attempt_state) == ("SUCCESS", "DONE")
    assert h.attempts("po3-f1")[0].outcome == "SUCCESS"
    # every other event, replayed late and in any order, changes nothing
    for event in reversed(webhook_receiver.events("/payouts")):
        apply_payout_event(h.app.sessions, event, now=h.clock())
    assert h.fulfillment("po3-f1").attempt_state == "DONE"
    assert len(h.sandbox.state.requests) == requests_before  # no status read was needed
    with h.app.sessions() as session:
        assert session.scalars(select(PayoutOrder)).one().next_check_at is None


def test_a_failure_webhook_makes_a_tracked_fulfillment_due_and_stale_events_do_not_undo_it(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po4", card_fulfillment("10", status="PENDING", fid="po4-f1"))
    h.track("po4")
    assert h.fulfillment("po4-f1").attempt_state == "IDLE"

    def event(status: str, at: datetime) -> dict[str, Any]:
        """Juspay's FULFILLMENT_ORDER envelope (its sample `webhooks/pending.json`)."""
        info = {
            "id": "po4-f1",
            "status": status,
            "statusUpdatedAt": at.isoformat(),
            "updatedAt": at.isoformat(),
            "amount": 10,
            "preferredMethodList": ["DUMMY_VISADIRECT"],
            "beneficiaryDetails": {"type": "PLAIN_CARD", "details": {"name": "A Kumar"}},
            "merchantCustomerId": CUSTOMER,
        }
        event_id = f"evt{status}{at:%H%M}"
        return {"id": event_id, "category": "INFO", "label": "FULFILLMENT_ORDER",
                "value": status, "info": info}  # fmt: skip

    later = T0 + timedelta(minutes=10)
    h.clock.set(later)
    assert apply_payout_event(h.app.sessions, event("FAILURE", later), now=later).startswith(
        "applied"
    )
    due = h.fulfillment("po4-f1")
    assert (due.status, due.attempt_state, due.next_attempt_at) == ("FAILURE", "DUE", later)
    # an older PENDING is stale
    stale = apply_payout_event(
        h.app.sessions, event("PENDING", T0 + timedelta(minutes=1)), now=later
    )
    assert stale.startswith("stale")
    assert h.fulfillment("po4-f1").attempt_state == "DUE"
    # what we do not track, and the labels that are not ours, are acknowledged and ignored
    other = event("FAILURE", later)
    other["info"] = {**other["info"], "id": "zz-f1"}
    assert apply_payout_event(h.app.sessions, other, now=later).startswith("ignored")
    refund = {"id": "e", "category": "INFO", "label": "REFUND", "value": "SUCCESS", "info": {}}
    assert apply_payout_event(h.app.sessions, refund, now=later).startswith("ignored")


# --- an attempt that may still pay --------------------------------------------------------------


def status_reads(h: PayoutHarness, order_id: str) -> int:
    return sum(
        1
        for r in list(h.sandbox.state.requests)
        if r["method"] == "GET" and r["path"].endswith(f"/orders/{order_id}")
    )


def test_a_slow_status_move_after_an_ack_never_leads_to_a_second_attempt(
    payout_harness: PayoutHarness,
) -> None:
    """Juspay ACKs the attempt but takes it up 45 min later; meanwhile every read shows the old
    FAILURE. A second attempt then could pay the customer twice: none is made."""
    h = payout_harness
    h.seed("po20")
    h.track("po20")
    h.fault(kind="queued", endpoint="attempt", key="po20", seconds=45 * 60)
    h.tick(T0)
    assert [a.state for a in h.attempts("po20-f1")] == ["ACK"]
    reads_before = status_reads(h, "po20")
    h.run_until(T0 + timedelta(minutes=44))
    assert status_reads(h, "po20") - reads_before >= 3  # read at 1, 6 and 36 min: old FAILURE
    waiting = h.fulfillment("po20-f1")
    assert (waiting.status, waiting.attempt_state, waiting.attempts_made) == (
        "FAILURE",
        "WAITING",
        1,
    )
    assert len(h.sandbox_attempts()) == 1

    h.run_until(T0 + timedelta(hours=3))  # taken up at 45 min, paid two reads later
    done = h.fulfillment("po20-f1")
    assert (done.status, done.attempt_state, done.attempts_made) == ("SUCCESS", "DONE", 1)
    assert [(a.state, a.outcome) for a in h.attempts("po20-f1")] == [("ACK", "SUCCESS")]
    assert len(h.sandbox_attempts()) == 1
    assert h.paid() == [("po20-f1", "250.50")]


def test_a_move_slower_than_the_threshold_goes_to_review_and_still_pays_once(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po21", card_fulfillment(threshold=60, fid="po21-f1"))
    h.track("po21")
    h.fault(kind="queued", endpoint="attempt", key="po21", seconds=3 * 3600)
    h.tick(T0)
    h.run_until(T0 + timedelta(hours=2, minutes=59))
    review = h.fulfillment("po21-f1")
    assert (review.attempt_state, review.attempts_made) == ("REVIEW", 1)
    assert len(h.sandbox_attempts()) == 1
    h.run_until(T0 + timedelta(hours=8))  # Juspay took it up at last: the review is answered
    done = h.fulfillment("po21-f1")
    assert (done.status, done.attempt_state) == ("SUCCESS", "DONE")
    assert [(a.state, a.outcome) for a in h.attempts("po21-f1")] == [("ACK", "SUCCESS")]
    assert h.paid() == [("po21-f1", "250.50")]


def test_a_slow_failure_is_retried_only_once_it_is_known(payout_harness: PayoutHarness) -> None:
    h = payout_harness
    h.seed("po22")
    h.track("po22")
    h.fault(kind="queued", endpoint="attempt", key="po22", seconds=20 * 60)
    h.fault(kind="fail", endpoint="attempt", key="po22", error_code="91")
    h.tick(T0)
    h.run_until(T0 + timedelta(hours=3))
    attempts = h.attempts("po22-f1")
    assert [(a.state, a.outcome) for a in attempts] == [("ACK", "FAILURE"), ("ACK", "SUCCESS")]
    # the failure became known at a read after Juspay took the attempt up (20 min) and settled
    # it; the second attempt came 5 min after that, never before
    assert attempts[1].created_at >= T0 + timedelta(minutes=20 + 5)
    assert h.paid() == [("po22-f1", "250.50")]


# --- limits and failures -----------------------------------------------------------------------


def test_a_fulfillment_failing_every_time_stops_at_the_maximum(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po5")
    h.fault(kind="fail", endpoint="attempt", key="po5", times=10, error_code="ISSUER_DOWN")
    h.track("po5")
    h.run_until(T0 + timedelta(hours=6))
    stopped = h.fulfillment("po5-f1")
    assert (stopped.status, stopped.attempt_state, stopped.attempts_made) == (
        "FAILURE",
        "STOPPED",
        3,
    )
    assert stopped.stop_reason == "all 3 attempts made"
    attempts = h.attempts("po5-f1")
    assert [(a.state, a.outcome) for a in attempts] == [("ACK", "FAILURE")] * 3
    # the back-off: each retry 5 min, then 30 min after the previous one's failure was read
    gaps = [b.created_at - a.created_at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= timedelta(minutes=5)
    assert gaps[1] >= timedelta(minutes=30)
    assert len(h.sandbox_attempts()) == 3
    assert h.paid() == []


def test_two_workers_racing_for_one_fulfillment_make_one_attempt(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po6")
    h.track("po6")
    h.fault(kind="latency", endpoint="attempt", seconds=0.3)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        payouts = h.payouts()
        barrier.wait()
        results.append(payouts.attempt("po6-f1"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results)[0] == "ACK", results
    assert results.count("ACK") == 1
    assert len(h.sandbox_attempts("po6-f1")) == 1
    assert [a.number for a in h.attempts("po6-f1")] == [1]


def test_a_400_e01_is_recorded_and_stops_retries_for_that_fulfillment(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po7")
    h.track("po7")
    with h.sandbox.state.lock:  # Juspay changed its mind: the attempt will be refused
        h.sandbox.state.payouts["po7"].fulfillments[0].additional_info["isRetriable"] = False
    h.run_until(T0 + timedelta(hours=3))
    (attempt,) = h.attempts("po7-f1")
    assert (attempt.state, attempt.error_code, attempt.counted) == ("REJECTED", "E01", True)
    assert "not in a retriable state" in (attempt.error_message or "")
    stopped = h.fulfillment("po7-f1")
    assert (stopped.attempt_state, stopped.attempts_made) == ("STOPPED", 1)
    assert (stopped.stop_reason or "").startswith("rejected E01: ")
    assert h.sandbox_attempts() == []


def test_a_401_e02_halts_every_attempt_without_using_any_up_until_resumed(
    payout_harness: PayoutHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = payout_harness
    h.seed("po8")
    h.seed("po9")
    h.track("po8")
    h.track("po9")
    h.sandbox.state.config.api_key = "rotated-key"  # our key no longer works
    h.tick(T0)
    assert {h.fulfillment(f).attempt_state for f in ("po8-f1", "po9-f1")} >= {"HALTED"}
    halted = [h.fulfillment(f) for f in ("po8-f1", "po9-f1")]
    assert [f.attempts_made for f in halted] == [0, 0]
    made = h.attempts("po8-f1") + h.attempts("po9-f1")
    assert [(a.state, a.error_code, a.counted) for a in made] == [("REJECTED", "E02", False)]
    assert any(r.levelname == "CRITICAL" and "HALTED" in r.getMessage() for r in caplog.records)
    assert "Juspay refused our credentials" in (payout_halt(h.app.sessions) or "")
    h.run_until(T0 + timedelta(hours=2))
    assert len(h.attempts("po8-f1") + h.attempts("po9-f1")) == 1  # nothing while halted

    h.sandbox.state.config.api_key = API_KEY  # fixed; the operator resumes
    assert resume(h.app.sessions, now=h.clock()) == 1
    h.run_until(h.clock() + timedelta(hours=1))
    assert payout_halt(h.app.sessions) is None
    assert [h.fulfillment(f).attempt_state for f in ("po8-f1", "po9-f1")] == ["DONE", "DONE"]
    assert [h.fulfillment(f).attempts_made for f in ("po8-f1", "po9-f1")] == [1, 1]
    assert sorted(h.paid()) == [("po8-f1", "250.50"), ("po9-f1", "250.50")]


def test_an_unreachable_juspay_retries_the_same_attempt_soon_without_counting_it(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po10")
    h.track("po10")
    h.fault(kind="http_error", endpoint="attempt", status=429)
    h.tick(T0)
    unsent = h.fulfillment("po10-f1")
    assert (unsent.attempt_state, unsent.attempts_made) == ("DUE", 0)
    assert unsent.next_attempt_at == T0 + timedelta(minutes=1)
    h.run_until(T0 + timedelta(hours=1))
    assert [(a.state, a.counted) for a in h.attempts("po10-f1")] == [
        ("UNSENT", False),
        ("ACK", True),
    ]
    assert h.fulfillment("po10-f1").attempt_state == "DONE"


def test_an_attempt_with_an_unknown_outcome_that_landed_is_read_not_resent(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po11")
    h.track("po11")
    h.fault(kind="timeout_after", endpoint="attempt", seconds=1.0)  # processed, then no answer
    h.tick(T0)
    (attempt,) = h.attempts("po11-f1")
    assert attempt.state == "UNKNOWN"
    h.run_until(T0 + timedelta(hours=1))
    assert h.fulfillment("po11-f1").attempt_state == "DONE"
    assert [(a.state, a.outcome) for a in h.attempts("po11-f1")] == [("UNKNOWN", "SUCCESS")]
    assert len(h.sandbox_attempts()) == 1


def test_an_attempt_that_never_landed_is_never_resent_it_goes_to_review_at_its_threshold(
    payout_harness: PayoutHarness,
) -> None:
    """A dropped connection: did Juspay take the attempt? Only evidence would say; none comes,
    so after the fulfillment's attemptThreshold a person decides, and only then is it resent."""
    h = payout_harness
    h.seed("po12", card_fulfillment(threshold=60, fid="po12-f1"))
    h.track("po12")
    h.fault(kind="drop_before", endpoint="attempt")  # the connection dies before Juspay acts
    h.tick(T0)
    assert h.attempts("po12-f1")[0].state == "UNKNOWN"
    h.run_until(T0 + timedelta(minutes=59))
    assert h.fulfillment("po12-f1").attempt_state == "WAITING"
    h.run_until(T0 + timedelta(hours=6))
    review = h.fulfillment("po12-f1")
    assert (review.attempt_state, review.attempts_made) == ("REVIEW", 1)
    assert (review.stop_reason or "").startswith(
        "no outcome of attempt 1 within its attemptThreshold (60 min)"
    )
    assert [(a.state, a.outcome) for a in h.attempts("po12-f1")] == [("UNKNOWN", None)]
    assert h.sandbox_attempts() == []

    assert resume(h.app.sessions, now=h.clock(), order_id="po12") == 1  # Juspay: never arrived
    h.run_until(h.clock() + timedelta(hours=1))
    attempts = h.attempts("po12-f1")
    assert [(a.state, a.outcome) for a in attempts] == [
        ("UNKNOWN", "NOT_LANDED"),
        ("ACK", "SUCCESS"),
    ]
    assert h.fulfillment("po12-f1").attempts_made == 2
    assert h.paid() == [("po12-f1", "250.50")]


def test_a_worker_lost_after_recording_leaves_an_attempt_that_is_never_resent_blindly(
    payout_harness: PayoutHarness,
) -> None:
    h = payout_harness
    h.seed("po13", card_fulfillment(threshold=30, fid="po13-f1"))
    h.track("po13")

    class Crash(Exception):  # noqa: N818 (a worker dying, not an error of ours)
        pass

    payouts = h.payouts()

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    payouts.attempts.gateway = type("G", (), {"attempt_payout": staticmethod(crash)})()  # type: ignore[assignment]
    with pytest.raises(Crash):
        payouts.attempt("po13-f1")
    (attempt,) = h.attempts("po13-f1")
    assert attempt.state == "SENDING"
    assert h.fulfillment("po13-f1").attempt_state == "IN_FLIGHT"
    h.tick(T0 + timedelta(minutes=11))  # past the stale timeout
    assert h.attempts("po13-f1")[0].state == "UNKNOWN"
    h.run_until(T0 + timedelta(hours=3))
    assert [(a.state, a.outcome) for a in h.attempts("po13-f1")] == [("UNKNOWN", None)]
    assert h.fulfillment("po13-f1").attempt_state == "REVIEW"
    assert h.sandbox_attempts() == []


# --- the CVV, sender details and the encryption settings ----------------------------------------


def test_a_rail_needing_a_cvv_gets_it_from_the_provider_at_attempt_time(
    payout_harness_factory: Callable[..., PayoutHarness],
) -> None:
    h = payout_harness_factory(cvv_provider="tests.integration.test_payouts:cvv_provider")
    h.seed("po14", card_fulfillment("99", fid="po14-cvv"))
    sender = {"type": "PAY_CARD", "details": {"name": "Sender Co", "pan": "4111111111111111"}}
    h.track("po14", needs_cvv=True, sender_details=sender)
    h.tick(T0)
    (sent,) = h.sandbox_attempts()
    assert sent["plaintext"]["cardInfo"]["cardSecurityCode"] == CVV
    assert sent["plaintext"]["cardInfo"]["senderDetails"] == sender
    stored = h.fulfillment("po14-cvv")
    assert stored.sender_ciphertext is not None
    assert "4111" not in stored.sender_ciphertext


@pytest.mark.parametrize("provider", [None, "tests.integration.test_payouts:no_cvv_provider"])
def test_without_a_cvv_the_attempt_is_not_made_and_the_reason_is_recorded(
    payout_harness_factory: Callable[..., PayoutHarness], provider: str | None
) -> None:
    h = payout_harness_factory(cvv_provider=provider)
    h.seed("po15")
    h.track("po15", needs_cvv=True)
    h.run_until(T0 + timedelta(hours=1))
    (attempt,) = h.attempts("po15-f1")
    assert (attempt.state, attempt.counted) == ("NOT_MADE", False)
    assert "CVV" in (attempt.error_message or "")
    stopped = h.fulfillment("po15-f1")
    assert (stopped.attempt_state, stopped.attempts_made) == ("STOPPED", 0)
    assert (stopped.stop_reason or "").startswith("attempt not made: the rail needs a CVV")
    assert h.sandbox_attempts() == []


@pytest.mark.parametrize(
    ("alg", "enc"), [("RSA-OAEP-256", "A128CBC-HS256"), ("RSA-OAEP", "A256GCM")]
)
def test_the_encryption_settings_reach_the_request(
    payout_harness_factory: Callable[..., PayoutHarness], alg: str, enc: str
) -> None:
    h = payout_harness_factory(jwe_alg=alg, jwe_enc=enc)
    h.seed("po16")
    h.track("po16")
    h.tick(T0)
    (sent,) = h.sandbox_attempts()
    assert (sent["header"]["alg"], sent["header"]["enc"], sent["header"]["kid"]) == (
        alg,
        enc,
        KEY_ID,
    )
    assert (sent["kid"], sent["sid"], sent["signed"]) == (KEY_ID, MERCHANT_KEY_ID, False)


def test_a_signed_payload_when_jws_sign_is_set(
    payout_harness_factory: Callable[..., PayoutHarness], tmp_path: Path
) -> None:
    merchant = jwk.JWK.generate(kty="RSA", size=2048)
    private = tmp_path / "merchant.pem"
    private.write_bytes(merchant.export_to_pem(private_key=True, password=None))
    h = payout_harness_factory(jws_sign=True, merchant_private_key_file=private)
    httpx.post(
        f"{h.sandbox.url}/sandbox/keys/merchant-public.pem", content=merchant.export_to_pem()
    ).raise_for_status()
    h.seed("po17")
    h.track("po17")
    h.tick(T0)
    (sent,) = h.sandbox_attempts()
    assert (sent["signed"], sent["sid"]) == (True, MERCHANT_KEY_ID)
    assert sent["payload"].count(".") == 2  # signed after encryption: a JWS over the JWE
    assert "cty" not in sent["header"]
    h.run_until(T0 + timedelta(hours=1))
    assert h.paid() == [("po17-f1", "250.50")]


def test_tracking_a_card_without_the_card_data_key_is_one_clear_error(
    payout_harness_factory: Callable[..., PayoutHarness],
) -> None:
    h = payout_harness_factory(card_data_key=None)
    h.seed("po18")
    with pytest.raises(Exception, match="BILLING_CARD_DATA_KEY: required"):
        h.track("po18")
    h.track("po18", card=None)  # without a card it is tracked, but nothing can be attempted
    idle = h.fulfillment("po18-f1")
    assert (idle.attempt_state, idle.stop_reason) == (
        "IDLE",
        "no card on file: track it with a card",
    )
