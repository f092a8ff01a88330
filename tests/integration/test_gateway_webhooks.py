"""The sandbox's webhooks reach a receiver, shaped so the client's parsers read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from billing.gateway import (
    CardToken,
    JuspayClient,
    parse_mandate,
    parse_notification,
    parse_order,
    parse_payout_event,
)
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from tests.integration.sandbox_fixtures import (
    WEBHOOK_PASSWORD,
    WEBHOOK_USERNAME,
    WebhookReceiver,
    card_fulfillment,
    payout_order,
    wait_until,
)

CUSTOMER = "cst_4455"


@pytest.fixture
def seeded(sandbox: SandboxServer) -> SandboxServer:
    for mandate_id, method in (("card1", "CARD"), ("upi1", "UPI")):
        sandbox.state.seed_mandate(
            mandate_id=mandate_id, customer_id=CUSTOMER, payment_method_type=method
        )
    return sandbox


def charge(client: JuspayClient, order_id: str, mandate_id: str = "card1") -> None:
    client.execute_mandate(
        order_id=order_id, amount=Decimal("399"), customer_id=CUSTOMER, mandate_id=mandate_id
    )


def test_a_settled_order_is_posted_with_basic_auth_and_parses_as_order_status_does(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    charge(juspay_client, "ord1")
    (event,) = wait_until(webhook_receiver.events, what="ORDER_SUCCEEDED")
    (delivery,) = webhook_receiver.received
    assert delivery["credentials"] == f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}"
    assert delivery["path"] == "/webhooks/juspay"
    assert set(event) == {"id", "event_name", "date_created", "content"}
    assert event["event_name"] == "ORDER_SUCCEEDED"
    assert event["id"].startswith("evt_V2_")
    from_hook = parse_order(event["content"]["order"])
    from_api = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert from_hook == from_api


def test_a_failed_order_is_order_failed(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    seeded.state.faults.add(Fault(kind="fail", key="ord1", error_code="Z9"))
    charge(juspay_client, "ord1")
    (event,) = wait_until(webhook_receiver.events, what="ORDER_FAILED")
    assert event["event_name"] == "ORDER_FAILED"
    order = parse_order(event["content"]["order"])
    assert (order.status, order.error_code) == ("AUTHORIZATION_FAILED", "Z9")


def test_mandate_and_notification_events(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    juspay_client.revoke_mandate("upi1", customer_id=CUSTOMER)
    (revoked,) = wait_until(webhook_receiver.events, what="MANDATE_REVOKED")
    assert revoked["event_name"] == "MANDATE_REVOKED"
    mandate = parse_mandate(revoked["content"]["mandate"])
    assert (mandate.mandate_id, mandate.status, mandate.customer_id) == (
        "upi1",
        "REVOKED",
        CUSTOMER,
    )
    assert mandate.payment_method_type == "UPI"

    httpx.post(f"{seeded.url}/sandbox/mandates/card1/status", json={"status": "PAUSED"})
    wait_until(lambda: len(webhook_receiver.events()) == 2, what="MANDATE_PAUSED")
    assert webhook_receiver.names()[-1] == "MANDATE_PAUSED"

    seeded.state.seed_mandate(mandate_id="upi2", customer_id=CUSTOMER)
    juspay_client.send_pre_debit_notification(
        mandate_id="upi2",
        customer_id=CUSTOMER,
        object_reference_id="pdn1",
        amount=Decimal("10"),
        txn_date=datetime.now(UTC) + timedelta(days=2),
        description="March",
    )
    for _ in range(2):
        juspay_client.notification_status("pdn1", customer_id=CUSTOMER)
    wait_until(lambda: len(webhook_receiver.events()) == 3, what="NOTIFICATION_SUCCEEDED")
    event = webhook_receiver.events()[-1]
    assert event["event_name"] == "NOTIFICATION_SUCCEEDED"
    notification = parse_notification(event["content"]["notification"])
    assert (notification.object_reference_id, notification.status) == ("pdn1", "SUCCESS")
    assert notification.amount == Decimal("10.00")


def test_payout_events_go_to_the_payout_url_in_juspays_envelope(
    sandbox: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    """The sandbox's payout webhooks are Juspay's (juspay-api.md §6.3, the samples under
    `webhooks/`): `{id, category: INFO, label, value: the new status, info: the object}`."""
    sandbox.state.seed_payout(payout_order("po1", CUSTOMER, card_fulfillment("100", fid="po1-f1")))
    juspay_client.attempt_payout(
        "po1", customer_id=CUSTOMER, fulfillment_id="po1-f1", card=CardToken("tok")
    )
    for _ in range(2):
        juspay_client.payout_order_status("po1", customer_id=CUSTOMER)
    events = wait_until(
        lambda: len(webhook_receiver.events("/payouts")) == 6 and webhook_receiver.events(),
        what="6 payout events",
    )
    assert [(e["label"], e["value"]) for e in events] == [
        ("FULFILLMENT_TXN", "INITIATED"),  # the attempt's transaction
        ("FULFILLMENT_ORDER", "PENDING"),
        ("ORDER", "FULFILLMENTS_SCHEDULED"),
        ("FULFILLMENT_TXN", "SUCCESS"),
        ("FULFILLMENT_ORDER", "SUCCESS"),
        ("ORDER", "FULFILLMENTS_SUCCESSFUL"),
    ]
    for event in events:
        assert set(event) == {"id", "category", "label", "value", "info"}
        assert event["category"] == "INFO"
    txn = events[0]["info"]
    assert (txn["FulfillmentId"], txn["attempted"], txn["id"]) == ("po1-f1", True, "po1-f1-t2")
    fulfillment = parse_payout_event("FULFILLMENT_ORDER", events[4]["value"], events[4]["info"])
    assert fulfillment.fulfillment is not None
    assert (fulfillment.fulfillment.id, fulfillment.fulfillment.status) == ("po1-f1", "SUCCESS")
    assert fulfillment.fulfillment.beneficiary_type == "PLAIN_CARD"
    order = events[5]["info"]
    assert (order["merchantOrderId"], order["status"]) == ("po1", "FULFILLMENTS_SUCCESSFUL")


def test_the_duplicate_switch_sends_every_event_twice(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    httpx.post(f"{seeded.url}/sandbox/webhooks", json={"duplicate": True}).raise_for_status()
    charge(juspay_client, "ord1")
    first, second = wait_until(
        lambda: len(webhook_receiver.events()) == 2 and webhook_receiver.events(), what="2 copies"
    )
    assert first == second


def test_held_events_are_delivered_out_of_order(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    seeded.state.webhooks.configure(hold=True)
    charge(juspay_client, "ord1")
    charge(juspay_client, "ord2")
    assert httpx.get(f"{seeded.url}/sandbox/webhooks").json()["held"] == 2
    assert webhook_receiver.events() == []
    released = httpx.post(f"{seeded.url}/sandbox/webhooks/release", json={"reverse": True})
    assert released.json() == {"released": 2}
    events = wait_until(
        lambda: len(webhook_receiver.events()) == 2 and webhook_receiver.events(), what="2 events"
    )
    assert [e["content"]["order"]["order_id"] for e in events] == ["ord2", "ord1"]


def test_disabled_webhooks_are_recorded_but_not_sent(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    seeded.state.webhooks.configure(enabled=False)
    charge(juspay_client, "ord1")
    snapshot = httpx.get(f"{seeded.url}/sandbox/webhooks").json()
    assert [e["event_name"] for e in snapshot["emitted"]] == ["ORDER_SUCCEEDED"]
    assert snapshot["delivered"] == []
    assert webhook_receiver.events() == []


def test_a_failed_delivery_is_kept_for_inspection(
    seeded: SandboxServer, webhook_receiver: WebhookReceiver, juspay_client: JuspayClient
) -> None:
    webhook_receiver.status = 500
    charge(juspay_client, "ord1")
    failures = wait_until(
        lambda: httpx.get(f"{seeded.url}/sandbox/webhooks").json()["failures"], what="a failure"
    )
    assert failures[0]["reason"] == "HTTP 500"
    assert failures[0]["url"] == webhook_receiver.url
    snapshot = httpx.get(f"{seeded.url}/sandbox/webhooks").json()
    assert snapshot["config"]["password_set"] is True
    assert WEBHOOK_PASSWORD not in str(snapshot)
