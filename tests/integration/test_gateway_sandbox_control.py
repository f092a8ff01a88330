"""The sandbox's control API over HTTP: what tests and out-of-process runs use to drive it."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from billing.gateway import JuspayClient, OutcomeUnknown
from billing.sandbox.server import SandboxServer
from tests.integration.sandbox_fixtures import payout_order

CUSTOMER = "cst_6677"


def control(sandbox: SandboxServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{sandbox.url}/sandbox/{path}", **kwargs)  # type: ignore[arg-type]


def test_seed_fault_charge_and_read_the_ledger_over_http(
    sandbox: SandboxServer, juspay_client: JuspayClient
) -> None:
    seeded = control(
        sandbox,
        "POST",
        "mandates",
        json=[
            {"mandate_id": "m1", "customer_id": CUSTOMER, "payment_method_type": "CARD"},
            {"mandate_id": "m2", "customer_id": CUSTOMER, "max_amount": "50.5"},
        ],
    )
    assert seeded.status_code == 201
    assert [m["mandate_id"] for m in seeded.json()["mandates"]] == ["m1", "m2"]
    fault = control(
        sandbox, "POST", "faults", json={"kind": "http_error", "endpoint": "txns", "status": 502}
    )
    assert fault.status_code == 201
    assert control(sandbox, "GET", "faults").json()["faults"][0]["kind"] == "http_error"
    with pytest.raises(OutcomeUnknown):
        juspay_client.execute_mandate(
            order_id="o1", amount=Decimal(5), customer_id=CUSTOMER, mandate_id="m1"
        )
    assert control(sandbox, "GET", "faults").json()["faults"] == []
    juspay_client.execute_mandate(
        order_id="o1", amount=Decimal(5), customer_id=CUSTOMER, mandate_id="m1"
    )
    ledger = control(sandbox, "GET", "ledger").json()
    assert (ledger["count"], ledger["total"]) == (1, "5.00")
    assert ledger["entries"][0]["order_id"] == "o1"
    order = control(sandbox, "GET", "orders/o1").json()
    assert order["order"]["status"] == "CHARGED"
    requests = control(sandbox, "GET", "requests").json()["requests"]
    assert [r["status"] for r in requests if r["path"] == "/txns"] == [502, 200]
    assert all("authorization" not in r["headers"] for r in requests)


def test_orders_and_notifications_can_be_settled_by_hand(
    sandbox: SandboxServer, juspay_client: JuspayClient
) -> None:
    sandbox.state.seed_mandate(mandate_id="u1", customer_id=CUSTOMER)
    juspay_client.execute_mandate(
        order_id="o1", amount=Decimal(5), customer_id=CUSTOMER, mandate_id="u1"
    )
    settled = control(
        sandbox,
        "POST",
        "orders/o1/settle",
        json={"status": "AUTHORIZATION_FAILED", "error_code": "U30"},
    )
    assert settled.json()["order"]["bank_error_code"] == "U30"
    assert juspay_client.order_status("o1", customer_id=CUSTOMER).status == "AUTHORIZATION_FAILED"


def test_bad_control_input_is_a_400_naming_the_field(sandbox: SandboxServer) -> None:
    bad_fault = control(sandbox, "POST", "faults", json={"kind": "explode"})
    assert bad_fault.status_code == 400
    assert bad_fault.json()["error"].startswith("kind:")
    bad_mandate = control(sandbox, "POST", "mandates", json={"mandate_id": "m1"})
    assert bad_mandate.json() == {"error": "customer_id: required"}
    bad_setting = control(sandbox, "POST", "config", json={"nope": 1})
    assert bad_setting.status_code == 400


def test_config_clock_keys_and_reset(sandbox: SandboxServer) -> None:
    config = control(sandbox, "POST", "config", json={"settle_polls": 5}).json()
    assert config["settle_polls"] == 5
    assert "api_key" not in config
    clock = control(sandbox, "POST", "clock", json={"now": "2027-03-01T00:00:00+00:00"}).json()
    assert clock == {"now": "2027-03-01T00:00:00Z", "frozen": True}
    moved = control(sandbox, "POST", "clock", json={"advance_seconds": 90}).json()
    assert moved["now"] == "2027-03-01T00:01:30Z"
    pem = control(sandbox, "GET", "keys/juspay-public.pem").text
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    created = control(sandbox, "POST", "payouts", json=payout_order("p1", "c"))
    assert created.status_code == 201
    assert control(sandbox, "GET", "payouts/p1").json()["fulfillments"][0]["id"] == "p1-f1"
    old_shape = {"orderId": "p2", "customerId": "c", "fulfillments": [{"method": "PLAIN_CARD"}]}
    refused = control(sandbox, "POST", "payouts", json=old_shape)
    assert refused.status_code == 400
    assert "fulfillments[0].method: not a field of Juspay's payout order create" in refused.text
    assert control(sandbox, "POST", "reset").json() == {"reset": True}
    assert control(sandbox, "GET", "config").json()["settle_polls"] == 2
    assert control(sandbox, "GET", "clock").json()["frozen"] is False
    assert control(sandbox, "GET", "payouts/p1").status_code == 404
