"""The sandbox's own webhook emission drives the receiver end to end: Juspay settles a debit and
billing learns it from the webhook alone, repeated and reordered deliveries change nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from billing.services.mandates.registry import require
from billing.store.models import WebhookEvent
from billing.webhooks.app import ReceiverConfig, create_app
from tests.integration.billing_harness import Harness
from tests.integration.sandbox_fixtures import WEBHOOK_PASSWORD, WEBHOOK_USERNAME, wait_until
from tests.integration.test_webhook_receiver import ThreadServer

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)  # MONTHLY ON 5, 10:00 in Kolkata
LEAD = timedelta(hours=26)


class Hooked:
    """A harness whose sandbox posts its webhooks to a receiver that processes them at once."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.errors: list[BaseException] = []
        app = harness.app
        self.server = ThreadServer(
            create_app(
                sessions=app.sessions,
                config=ReceiverConfig(WEBHOOK_USERNAME, WEBHOOK_PASSWORD),
                enqueue=self.process,
                clock=app.clock,
            )
        )
        url = self.server.start() + "/webhooks/juspay"
        harness.sandbox.state.webhooks.configure(
            url=url, username=WEBHOOK_USERNAME, password=WEBHOOK_PASSWORD
        )

    def process(self, pk: int) -> None:
        try:
            self.harness.app.webhook_events().process(pk)
        except Exception as exc:
            self.errors.append(exc)
            raise

    def events(self) -> list[WebhookEvent]:
        with self.harness.app.sessions() as session:
            return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))

    def settled(self) -> bool:
        """Every delivery the sandbox made (or failed) has been stored and processed."""
        snapshot = self.harness.sandbox.state.webhooks.snapshot()
        emitted, delivered = snapshot["emitted"], snapshot["delivered"]
        assert isinstance(emitted, list)
        assert isinstance(delivered, list)
        copies = 2 if self.harness.sandbox.state.webhooks.config.duplicate else 1
        done = len(delivered) + len(snapshot["failures"])  # type: ignore[arg-type]
        return done >= copies * len(emitted) and all(e.state != "RECEIVED" for e in self.events())


@pytest.fixture
def hooked(harness_factory: Callable[..., Harness]) -> Iterator[Hooked]:
    hooked = Hooked(harness_factory())
    yield hooked
    hooked.server.stop()


def test_a_debit_the_sandbox_settles_is_charged_from_its_webhook_without_a_poll(
    hooked: Hooked,
) -> None:
    harness = hooked.harness
    harness.sandbox.state.webhooks.configure(duplicate=True)  # every event delivered twice
    harness.add_mandate("card1")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)  # juspay flow: executed the lead ahead, Juspay sends its PDN
    debit = harness.debit("card1")
    assert debit.state == "PENDING"
    [order] = harness.orders(debit.id)
    assert order.next_check_at == PLANNED - LEAD + timedelta(minutes=1)  # a poll is scheduled

    harness.at(PLANNED + timedelta(minutes=1))  # Juspay debits on the execution date; no tick
    wait_until(lambda: harness.debit("card1").state == "CHARGED", what="CHARGED by webhook")
    wait_until(hooked.settled, what="every delivery processed")

    [order] = harness.orders(debit.id)
    assert (order.state, order.gateway_status, order.next_check_at) == ("SETTLED", "CHARGED", None)
    polls = [r for r in harness.sandbox.state.requests if r["path"].startswith("/orders/")]
    assert polls == []
    assert len(harness.ledger("card1")) == 1
    names = sorted(e.event_name for e in hooked.events())
    assert names == ["NOTIFICATION_SUCCEEDED", "ORDER_SUCCEEDED"]  # each stored once
    assert {e.state for e in hooked.events()} == {"PROCESSED"}
    assert hooked.errors == []
    history = [cause for *_, cause in harness.history(debit.id)]
    assert history[-1].startswith("webhook: order CHARGED")


def test_mandate_events_delivered_out_of_order_leave_the_newest_status(hooked: Hooked) -> None:
    harness = hooked.harness
    harness.add_mandate("upi1", payment_method_type="UPI")
    harness.at(T0)
    webhooks = harness.sandbox.state.webhooks
    webhooks.configure(hold=True)
    gateway = harness.app.gateway
    gateway.pause_mandate("upi1", customer_id="cst_upi1", pause_start_date=T0.date())
    harness.at(T0 + timedelta(hours=1))
    gateway.resume_mandate("upi1", customer_id="cst_upi1", resume_date=T0.date())
    assert webhooks.release(reverse=True) == 2  # MANDATE_ACTIVATED first, then MANDATE_PAUSED
    wait_until(hooked.settled, what="both events processed")
    assert [e.event_name for e in hooked.events()] == ["MANDATE_ACTIVATED", "MANDATE_PAUSED"]
    with harness.app.sessions() as session:
        mandate = require(session, "upi1")
        assert mandate.status == "ACTIVE"  # as at Juspay: the pause came first
        assert mandate.status_at == T0 + timedelta(hours=1)
    assert hooked.events()[1].outcome == "mandate upi1 stays ACTIVE (PAUSED not applied)"
    assert hooked.errors == []


def test_a_mandate_revoked_at_juspay_ends_its_planned_debits(hooked: Hooked) -> None:
    harness = hooked.harness
    harness.add_mandate("card2")
    harness.tick(T0)
    assert harness.debit("card2").state == "PLANNED"
    harness.app.gateway.revoke_mandate("card2", customer_id="cst_card2")
    wait_until(hooked.settled, what="MANDATE_REVOKED processed")
    assert harness.debit("card2").state == "SKIPPED"
    harness.run_until(PLANNED + timedelta(days=1))
    assert harness.ledger("card2") == []
    assert hooked.errors == []
