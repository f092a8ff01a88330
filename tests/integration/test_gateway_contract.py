"""The real client against the real sandbox over HTTP: mandate execution, order status, faults."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from billing.gateway import (
    AuthenticationFailed,
    JuspayClient,
    OrderNotFound,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from tests.integration.sandbox_fixtures import API_KEY, MERCHANT_ID

CUSTOMER = "cst_1122"


@pytest.fixture
def mandates(sandbox: SandboxServer) -> SandboxServer:
    state = sandbox.state
    state.seed_mandate(
        mandate_id="card1", customer_id=CUSTOMER, payment_method_type="CARD", max_amount="1000"
    )
    state.seed_mandate(
        mandate_id="upi1", customer_id=CUSTOMER, payment_method_type="UPI", max_amount="1000"
    )
    state.seed_mandate(
        mandate_id="fixed1",
        customer_id=CUSTOMER,
        payment_method_type="CARD",
        max_amount="399",
        amount_rule="FIXED",
    )
    state.seed_mandate(mandate_id="paused1", customer_id=CUSTOMER, status="PAUSED")
    return sandbox


def charge(client: JuspayClient, order_id: str, mandate_id: str = "card1", amount: str = "399"):
    return client.execute_mandate(
        order_id=order_id, amount=Decimal(amount), customer_id=CUSTOMER, mandate_id=mandate_id
    )


def test_a_card_mandate_is_charged_at_once_and_order_status_confirms_it(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    result = charge(juspay_client, "ord1")
    assert (result.order_id, result.status) == ("ord1", "CHARGED")
    assert result.txn_id == f"{MERCHANT_ID}-ord1-1"
    status = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert (status.status, status.status_id, status.amount) == ("CHARGED", 21, Decimal("399.00"))
    assert (status.mandate_id, status.customer_id) == ("card1", CUSTOMER)
    assert status.txn_object_type == "EMANDATE_PAYMENT"
    assert status.mandate is not None
    assert status.mandate.payment_method_type == "CARD"
    assert [(e["order_id"], e["amount"]) for e in mandates.state.charges()] == [("ord1", "399.00")]


def test_every_call_reaches_juspay_with_routing_version_and_content_type(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    charge(juspay_client, "ord1")
    juspay_client.order_status("ord1", customer_id=CUSTOMER)
    execution, status = list(mandates.state.requests)[-2:]
    for request in (execution, status):
        headers = request["headers"]
        assert headers["x-routing-id"] == CUSTOMER
        assert headers["x-merchantid"] == MERCHANT_ID
        assert headers["version"] == "2021-03-25"
        assert headers["content-type"] == "application/x-www-form-urlencoded"
        assert len(headers["x-request-id"]) == 32
        assert "authorization" not in headers
    assert (execution["method"], execution["path"]) == ("POST", "/txns")
    assert (status["method"], status["path"]) == ("GET", "/orders/ord1")


def test_resending_the_same_order_id_is_rejected_and_charges_nothing(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    charge(juspay_client, "ord1")
    with pytest.raises(Rejected) as caught:
        charge(juspay_client, "ord1")
    assert caught.value.code == "DUPLICATE_ORDER_ID"
    assert caught.value.http_status == 400
    assert len(mandates.state.charges()) == 1


def test_a_timeout_after_charging_is_outcome_unknown_and_reconciles_to_one_charge(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="timeout_after", endpoint="txns", seconds=1.0))
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as caught:
        charge(juspay_client, "ord1")
    assert time.monotonic() - started < 1.0  # the client's read timeout, not the server's hold
    assert "ReadTimeout" in str(caught.value)
    assert len(mandates.state.charges("ord1")) == 1
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"
    with pytest.raises(Rejected, match="DUPLICATE_ORDER_ID"):
        charge(juspay_client, "ord1")
    assert len(mandates.state.charges()) == 1


def test_a_connection_dropped_after_charging_is_outcome_unknown(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="drop_after", key="ord1"))
    with pytest.raises(OutcomeUnknown, match="RemoteProtocolError"):
        charge(juspay_client, "ord1")
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"
    assert len(mandates.state.charges()) == 1


def test_a_drop_before_charging_is_unknown_then_not_found_then_resent_once(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    # The request was written before the connection died: the client cannot know, so unknown.
    mandates.state.faults.add(Fault(kind="drop_before", endpoint="txns"))
    with pytest.raises(OutcomeUnknown):
        charge(juspay_client, "ord1")
    with pytest.raises(OrderNotFound) as caught:
        juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert caught.value.http_status == 404
    assert mandates.state.charges() == []
    assert charge(juspay_client, "ord1").status == "CHARGED"
    assert len(mandates.state.charges()) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_outcome_unknown(
    mandates: SandboxServer, juspay_client: JuspayClient, status: int
) -> None:
    mandates.state.faults.add(Fault(kind="http_error", endpoint="txns", status=status))
    with pytest.raises(OutcomeUnknown) as caught:
        charge(juspay_client, "ord1")
    assert caught.value.http_status == status
    assert mandates.state.charges() == []


def test_a_5xx_after_charging_reconciles_to_the_charge(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="http_error", endpoint="txns", status=500, after=True))
    with pytest.raises(OutcomeUnknown):
        charge(juspay_client, "ord1")
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"


def test_a_wrong_api_key_or_merchant_is_authentication_failed(
    mandates: SandboxServer, make_juspay_client: Callable[..., JuspayClient]
) -> None:
    for client in (make_juspay_client(api_key="wrong"), make_juspay_client(merchant_id="other")):
        with pytest.raises(AuthenticationFailed) as caught:
            client.order_status("ord1", customer_id=CUSTOMER)
        assert (caught.value.code, caught.value.http_status) == ("access_denied", 401)
    with pytest.raises(AuthenticationFailed) as payout:
        make_juspay_client(api_key="wrong").payout_order_status("po1", customer_id=CUSTOMER)
    assert payout.value.code == "E02"
    assert mandates.state.charges() == []


def test_a_closed_port_is_unavailable(make_juspay_client: Callable[..., JuspayClient]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_juspay_client(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(Unavailable, match="ConnectError"):
        charge(client, "ord1")


def test_a_upi_order_is_pending_vbv_and_settles_after_n_polls(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.config.settle_polls = 3
    assert charge(juspay_client, "upi1o", mandate_id="upi1").status == "PENDING_VBV"
    seen = [juspay_client.order_status("upi1o", customer_id=CUSTOMER).status for _ in range(4)]
    assert seen == ["PENDING_VBV", "PENDING_VBV", "CHARGED", "CHARGED"]
    assert len(mandates.state.charges()) == 1


def test_a_pending_fault_keeps_a_card_order_pending_for_n_polls(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="pending", key="ord1", polls=2))
    assert charge(juspay_client, "ord1").status == "PENDING_VBV"
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "PENDING_VBV"
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"


def test_a_fail_fault_ends_the_order_failed_with_the_bank_code(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    fault = Fault(kind="fail", key="ord1", error_code="Z9", error_message="Insufficient funds")
    mandates.state.faults.add(fault)
    assert charge(juspay_client, "ord1").status == "AUTHORIZATION_FAILED"
    status = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert (status.status, status.status_id) == ("AUTHORIZATION_FAILED", 27)
    assert (status.error_code, status.error_message) == ("Z9", "Insufficient funds")
    assert mandates.state.charges() == []


def test_juspays_silent_retry_shows_mandate_retry_info_with_juspays_keys_then_charges(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="silent_retry", key="ord1", polls=2, allowed=4))
    assert charge(juspay_client, "ord1").status == "AUTHORIZATION_FAILED"
    raw = httpx.get(
        f"{mandates.url}/orders/ord1",
        auth=(API_KEY, ""),
        headers={"x-merchantid": MERCHANT_ID, "x-routing-id": CUSTOMER},
    ).json()
    # juspay-api.md §3: `additional_info.mandate_retry_info{is_retried_order, retries_done_count,
    # allowed_retry, is_business_retried, is_technical_retried}`; nammayatri's client
    # (lib/mobility-core/.../Juspay/Types/Common.hs, `MandateRetryInfo`) types each `Maybe Text`.
    info = raw["additional_info"]["mandate_retry_info"]
    assert set(info) == {
        "is_retried_order",
        "retries_done_count",
        "allowed_retry",
        "is_business_retried",
        "is_technical_retried",
    }
    assert all(isinstance(value, str) for value in info.values())
    assert (raw["status"], info["retries_done_count"], info["allowed_retry"]) == (
        "AUTHORIZATION_FAILED",
        "1",
        "4",
    )
    second = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert second.status == "CHARGED"
    assert second.retry_info is not None
    assert second.retry_info.allowed_retry == 4
    assert len(mandates.state.charges()) == 1


def test_silent_retries_that_all_fail_end_with_every_allowed_retry_done(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    fault = Fault(kind="silent_retry", key="ord1", polls=2, then="AUTHORIZATION_FAILED", allowed=3)
    mandates.state.faults.add(fault)
    charge(juspay_client, "ord1")
    first = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert first.retry_info is not None
    assert (first.retry_info.retries_done_count, first.retry_info.allowed_retry) == (1, 3)
    last = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert last.status == "AUTHORIZATION_FAILED"
    assert last.retry_info is not None
    assert (last.retry_info.retries_done_count, last.retry_info.allowed_retry) == (3, 3)
    assert mandates.state.charges() == []


def test_a_failed_order_juspay_takes_up_again_is_pending_then_charged_with_a_new_transaction(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="fail", key="ord1", error_code="51"))
    assert charge(juspay_client, "ord1").status == "AUTHORIZATION_FAILED"
    retried = httpx.post(
        f"{mandates.url}/sandbox/orders/ord1/retry", json={"then": "CHARGED", "polls": 2}
    )
    assert retried.status_code == 200, retried.text
    first = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    assert (first.status, first.txn_id) == ("PENDING_VBV", f"{MERCHANT_ID}-ord1-2")
    assert first.retry_info is not None
    assert first.retry_info.retries_done_count == 1
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"
    assert len(mandates.state.charges()) == 1
    again = httpx.post(f"{mandates.url}/sandbox/orders/ord1/retry", json={})
    assert again.status_code == 400  # only a failed order is taken up again


def test_an_execution_answer_can_be_made_to_name_another_order(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="misreport", key="ord1", answer_order_id="other1"))
    assert charge(juspay_client, "ord1").order_id == "other1"
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"


def test_latency_after_processing_holds_the_answer_of_a_call_that_already_happened(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    fault = Fault(kind="latency", endpoint="txns", seconds=0.3, after=True)
    mandates.state.faults.add(fault)
    started = time.monotonic()
    assert charge(juspay_client, "ord1").status == "CHARGED"
    assert time.monotonic() - started >= 0.3
    assert len(mandates.state.charges()) == 1


def test_a_mandate_not_active_is_refused_in_juspays_shape(mandates: SandboxServer) -> None:
    response = _raw_txns(mandates, {**FULL_FORM, "mandate_id": "paused1", "order.amount": "1"})
    assert response.status_code == 400
    # The mandate execution page (SEA variant, https://juspay.io/sea/docs/hyper-checkout-sea/
    # android/mandates/mandate-execution-api), "Mandate not in active state": {"status":
    # "invalid_request_error", "error_message": "Mandate is in PAUSED state. Recurring cannot be
    # executed", "error_code": "invalid_request"}; with the `error_info` of juspay-api.md §8,
    # whose catalogue code INVALID_ACTION is "e.g. recurring on revoked mandate".
    body = response.json()
    assert {k: body[k] for k in ("status", "error_message", "error_code")} == {
        "status": "invalid_request_error",
        "error_message": "Mandate is in PAUSED state. Recurring cannot be executed",
        "error_code": "invalid_request",
    }
    assert (body["error_info"]["code"], body["error_info"]["category"]) == (
        "INVALID_ACTION",
        "USER_ERROR",
    )


def test_a_mandate_status_changed_at_juspay_can_send_no_webhook(
    mandates: SandboxServer,
) -> None:
    url = f"{mandates.url}/sandbox/mandates/card1/status"
    assert httpx.post(url, json={"status": "REVOKED", "webhook": False}).status_code == 200
    assert mandates.state.mandates["card1"].status == "REVOKED"
    assert mandates.state.webhooks.snapshot()["emitted"] == []
    assert httpx.post(url, json={"status": "ACTIVE"}).status_code == 200
    emitted = mandates.state.webhooks.snapshot()["emitted"]
    assert isinstance(emitted, list)
    assert [e["event_name"] for e in emitted] == ["MANDATE_ACTIVATED"]


def test_latency_below_the_read_timeout_only_slows_the_answer(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="latency", endpoint="order_status", seconds=0.2))
    charge(juspay_client, "ord1")
    started = time.monotonic()
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"
    assert time.monotonic() - started >= 0.2


def test_latency_beyond_the_read_timeout_is_unknown_and_the_charge_still_happens(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    mandates.state.faults.add(Fault(kind="latency", endpoint="txns", seconds=0.8))
    with pytest.raises(OutcomeUnknown):
        charge(juspay_client, "ord1")
    status = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            status = juspay_client.order_status("ord1", customer_id=CUSTOMER).status
            break
        except OrderNotFound:
            time.sleep(0.05)
    assert status == "CHARGED"


@pytest.mark.parametrize(
    ("mandate_id", "amount", "code"),
    [
        ("card1", "1000.01", "AMOUNT_EXCEEDS_MANDATE_LIMIT"),
        ("fixed1", "398", "FIXED_AMOUNT_MISMATCH"),
        ("paused1", "1", "INVALID_ACTION"),
        ("nope", "1", "INVALID_MANDATE"),
    ],
)
def test_the_sandbox_refuses_what_juspay_refuses(
    mandates: SandboxServer, juspay_client: JuspayClient, mandate_id: str, amount: str, code: str
) -> None:
    with pytest.raises(Rejected) as caught:
        charge(juspay_client, "ord1", mandate_id=mandate_id, amount=amount)
    assert caught.value.code == code
    assert mandates.state.charges() == []
    with pytest.raises(OrderNotFound):
        juspay_client.order_status("ord1", customer_id=CUSTOMER)


def _raw_txns(sandbox: SandboxServer, form: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/txns",
        data=form,
        auth=(API_KEY, ""),
        headers={"x-merchantid": MERCHANT_ID, "x-routing-id": CUSTOMER},
    )


FULL_FORM = {
    "order.order_id": "raw1",
    "order.amount": "399.00",
    "order.customer_id": CUSTOMER,
    "merchant_id": MERCHANT_ID,
    "mandate_id": "card1",
    "format": "json",
}


@pytest.mark.parametrize("missing", sorted(FULL_FORM))
def test_a_missing_field_is_named_in_juspays_error_shape(
    mandates: SandboxServer, missing: str
) -> None:
    form = {k: v for k, v in FULL_FORM.items() if k != missing}
    response = _raw_txns(mandates, form)
    assert response.status_code == 400
    assert response.json() == {
        "status": "Invalid Request",
        "error_code": "MISSING_FIELD",
        "error_message": f"Mandatory field missing: {missing}",
        "user_message": f"Mandatory field missing: {missing}",
    }


@pytest.mark.parametrize("amount", ["399.001", "0", "-1", "abc"])
def test_an_amount_juspay_would_not_take_is_refused(mandates: SandboxServer, amount: str) -> None:
    response = _raw_txns(mandates, {**FULL_FORM, "order.amount": amount})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_AMOUNT"
    assert mandates.state.charges() == []


def test_a_json_body_on_an_ec_call_is_refused(mandates: SandboxServer) -> None:
    response = httpx.post(
        f"{mandates.url}/txns",
        json=FULL_FORM,
        auth=(API_KEY, ""),
        headers={"x-merchantid": MERCHANT_ID},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_CONTENT_TYPE"


def test_an_unknown_order_is_order_not_found(
    mandates: SandboxServer, juspay_client: JuspayClient
) -> None:
    with pytest.raises(OrderNotFound) as caught:
        juspay_client.order_status("never", customer_id=CUSTOMER)
    assert caught.value.code == "NOT_FOUND"
