"""Request shaping, pinned against the seeds' samples with httpx.MockTransport (no socket)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest
from jwcrypto import jwe, jwk

from billing.domain.errors import InvalidField
from billing.gateway import AttemptEncrypter, CardNumber, CardToken, JuspayClient

# The key behind Juspay's own Basic-auth example; the seeds show it masked as
# "Basic MUQ2QUxxxxxxxxxxxxU5QTIxQzNFNTQwNkFDMEZCOg==".
API_KEY = "1D6AFDC8EA649E9A21C3E5406AC0FB"
BASIC = "Basic MUQ2QUZEQzhFQTY0OUU5QTIxQzNFNTQwNkFDMEZCOg=="
ORDER_JSON = {
    "order_id": "ord1",
    "status": "CHARGED",
    "status_id": 21,
    "amount": 399,
    "customer_id": "customer_1122",
}
MANDATE_JSON = {"mandate_id": "m1", "mandate_status": "ACTIVE"}


class Recorder:
    def __init__(self, body: object = None, status: int = 200, text: str | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.body = body
        self.status = status
        self.text = text

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.text is not None:
            return httpx.Response(self.status, text=self.text)
        return httpx.Response(self.status, json=self.body)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.last.content.decode()))


@pytest.fixture
def rsa_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048)


@pytest.fixture
def client_for(rsa_key: jwk.JWK) -> Callable[[Recorder], JuspayClient]:
    def make(recorder: Recorder, **overrides: object) -> JuspayClient:
        encrypter = AttemptEncrypter(
            juspay_public_key_pem=rsa_key.export_to_pem(),
            key_id="JuspayKID",
            merchant_key_id="JuspaySID",
        )
        options: dict[str, object] = {
            "base_url": "https://sandbox.juspay.in",
            "api_key": API_KEY,
            "merchant_id": "merchant_1",
            "transport": httpx.MockTransport(recorder),
            "attempt_encrypter": encrypter,
        }
        options.update(overrides)
        return JuspayClient(**options)  # type: ignore[arg-type]

    return make


def assert_common_headers(request: httpx.Request, content_type: str) -> None:
    assert request.headers["authorization"] == BASIC
    assert base64.b64decode(BASIC.split()[1]) == f"{API_KEY}:".encode()
    assert request.headers["x-merchantid"] == "merchant_1"
    assert request.headers["x-routing-id"] == "customer_1122"
    assert request.headers["version"] == "2021-03-25"
    assert request.headers["content-type"] == content_type
    assert len(request.headers["x-request-id"]) == 32


def test_mandate_execution_posts_dotted_form_fields_with_every_header(client_for) -> None:
    recorder = Recorder(
        {"order_id": "ord1", "txn_id": "t-1", "txn_uuid": "eul1", "status": "CHARGED"}
    )
    client = client_for(recorder)
    result = client.execute_mandate(
        order_id="ord1",
        amount=Decimal("399"),
        customer_id="customer_1122",
        mandate_id="eul81DBJR2Yv6gjZ7ue",
        execution_date=datetime(2027, 3, 1, 4, 30, tzinfo=UTC),
        notification_id="pdn-1",
    )
    assert result.status == "CHARGED"
    assert result.txn_uuid == "eul1"
    assert recorder.last.method == "POST"
    assert recorder.last.url == "https://sandbox.juspay.in/txns"
    assert_common_headers(recorder.last, "application/x-www-form-urlencoded")
    assert recorder.form() == {
        "order.order_id": "ord1",
        "order.amount": "399.00",
        "order.currency": "INR",
        "order.customer_id": "customer_1122",
        "merchant_id": "merchant_1",
        "mandate_id": "eul81DBJR2Yv6gjZ7ue",
        "format": "json",
        "mandate.execution_date": "1803875400",
        "mandate.notification_id": "pdn-1",
    }
    assert b"order.order_id=ord1" in recorder.last.content  # dots are sent as they are


def test_mandate_execution_leaves_out_optional_fields_and_refuses_bad_amounts(client_for) -> None:
    recorder = Recorder({"order_id": "ord1", "status": "PENDING_VBV"})
    client = client_for(recorder)
    client.execute_mandate(
        order_id="ord1", amount=Decimal("0.1"), customer_id="customer_1122", mandate_id="m1"
    )
    form = recorder.form()
    assert form["order.amount"] == "0.10"
    assert "mandate.execution_date" not in form
    assert "mandate.notification_id" not in form
    with pytest.raises(InvalidField, match=r"order\.amount"):
        client.execute_mandate(
            order_id="o2", amount=Decimal("1.005"), customer_id="c", mandate_id="m1"
        )
    with pytest.raises(ValueError, match="naive"):
        client.execute_mandate(
            order_id="o3",
            amount=Decimal(1),
            customer_id="c",
            mandate_id="m1",
            execution_date=datetime(2027, 3, 1),  # naive on purpose
        )
    assert len(recorder.requests) == 1  # nothing invalid was sent


def test_order_status_is_a_get_with_the_form_content_type(client_for) -> None:
    recorder = Recorder(ORDER_JSON)
    client = client_for(recorder)
    result = client.order_status("ord1", customer_id="customer_1122")
    assert result.amount == Decimal("399.00")
    assert recorder.last.method == "GET"
    assert recorder.last.url == "https://sandbox.juspay.in/orders/ord1"
    assert recorder.last.content == b""
    assert_common_headers(recorder.last, "application/x-www-form-urlencoded")


def test_pre_debit_notification_and_its_status(client_for) -> None:
    body = {"id": "1957069", "object_reference_id": "ref1", "status": "CREATED"}
    recorder = Recorder(body)
    client = client_for(recorder)
    client.send_pre_debit_notification(
        mandate_id="m1",
        customer_id="customer_1122",
        object_reference_id="ref1",
        amount=Decimal("399"),
        txn_date=datetime(2021, 10, 12, 16, 45, 14, tzinfo=UTC),
        description="Notification for upcoming mandate",
    )
    assert recorder.last.url == "https://sandbox.juspay.in/mandates/m1"
    assert_common_headers(recorder.last, "application/x-www-form-urlencoded")
    assert recorder.form() == {
        "command": "pre_debit_notify",
        "object_reference_id": "ref1",
        "description": "Notification for upcoming mandate",
        "source_info.amount": "399.00",
        "source_info.txn_date": "1634057114",  # the seed's txn_date
    }
    client.notification_status("ref1", customer_id="customer_1122")
    assert recorder.last.method == "GET"
    assert recorder.last.url == "https://sandbox.juspay.in/notifications/ref1"


@pytest.mark.parametrize(
    ("call", "form"),
    [
        (
            lambda c: c.mandate_status("m1", customer_id="customer_1122"),
            {"command": "check_status"},
        ),
        (
            lambda c: c.pause_mandate(
                "m1",
                customer_id="customer_1122",
                pause_start_date=date(2022, 9, 26),
                pause_end_date=date(2022, 9, 30),
            ),
            {"command": "pause", "pause_start_date": "1664150400", "pause_end_date": "1664496000"},
        ),
        (
            lambda c: c.pause_mandate(
                "m1", customer_id="customer_1122", pause_start_date=date(2022, 9, 26)
            ),
            {"command": "pause", "pause_start_date": "1664150400"},
        ),
        (
            lambda c: c.resume_mandate(
                "m1", customer_id="customer_1122", resume_date=date(2022, 9, 30)
            ),
            {"command": "resume", "resume_date": "1664496000"},
        ),
        (lambda c: c.revoke_mandate("m1", customer_id="customer_1122"), {"command": "revoke"}),
        (
            lambda c: c.cancel_recurring_transaction(
                "m1", customer_id="customer_1122", order_id="ord9"
            ),
            {"command": "cancel_recurring_transaction", "order_id": "ord9"},
        ),
    ],
)
def test_mandate_commands_post_their_command_form(client_for, call, form) -> None:
    recorder = Recorder(MANDATE_JSON)
    call(client_for(recorder))
    assert recorder.last.method == "POST"
    assert recorder.last.url == "https://sandbox.juspay.in/mandates/m1"
    assert_common_headers(recorder.last, "application/x-www-form-urlencoded")
    assert recorder.form() == form


def test_customer_mandates_reads_the_list_envelope(client_for) -> None:
    recorder = Recorder({"object": "list", "list": [{"mandate_id": "m1", "status": "ACTIVE"}]})
    mandates = client_for(recorder).customer_mandates("customer_1122")
    assert [(m.mandate_id, m.status) for m in mandates] == [("m1", "ACTIVE")]
    assert recorder.last.url == "https://sandbox.juspay.in/customers/customer_1122/mandates"
    assert recorder.last.method == "GET"


def test_payout_order_status_is_a_json_get_with_expand(client_for) -> None:
    recorder = Recorder({"orderId": "po1", "status": "FULFILLMENTS_FAILURE", "fulfillments": []})
    client_for(recorder).payout_order_status("po1", customer_id="customer_1122")
    assert recorder.last.method == "GET"
    assert recorder.last.url.path == "/payout/merchant/v1/orders/po1"
    assert recorder.last.url.params["expand"] == "fulfillment,payment"
    assert_common_headers(recorder.last, "application/json")


def test_attempt_posts_the_encrypted_body_and_reads_ack(client_for, rsa_key) -> None:
    recorder = Recorder(text="ACK")
    client = client_for(recorder)
    card = CardNumber("5513 6511 1111 1111", "02", "2028", name="A Kumar", security_code="123")
    client.attempt_payout(
        "po1",
        customer_id="customer_1122",
        fulfillment_id="c14b43505a545b3a65c416634009a2-f1",
        card=card,
        sender_details={"type": "PAY_CARD", "details": {"name": "Sender"}},
    )
    request = recorder.last
    assert request.url == "https://sandbox.juspay.in/payout/merchant/v1/orders/po1/attempt"
    assert_common_headers(request, "application/json")
    body = json.loads(request.content)
    assert set(body) == {"payload", "kid", "sid", "format"}
    assert (body["kid"], body["sid"], body["format"]) == ("JuspayKID", "JuspaySID", "compact")
    assert b"5513651111111111" not in request.content
    token = jwe.JWE()
    token.deserialize(body["payload"], key=rsa_key)
    assert json.loads(token.payload) == {
        "fulfillmentId": "c14b43505a545b3a65c416634009a2-f1",
        "cardInfo": {
            "cardNumber": "5513651111111111",
            "cardExpiry": {"month": "02", "year": "2028"},
            "name": "A Kumar",
            "cardSecurityCode": "123",
            "senderDetails": {"type": "PAY_CARD", "details": {"name": "Sender"}},
        },
    }


def test_attempt_with_a_token_and_the_documented_alternative_path(client_for, rsa_key) -> None:
    recorder = Recorder(text="ACK")
    client = client_for(recorder, attempt_path="/payout/merchant/v1/{orderId}/attempt")
    client.attempt_payout(
        "po1", customer_id="customer_1122", fulfillment_id="f1", card=CardToken("1111111111111111")
    )
    assert recorder.last.url.path == "/payout/merchant/v1/po1/attempt"
    token = jwe.JWE()
    token.deserialize(json.loads(recorder.last.content)["payload"], key=rsa_key)
    assert json.loads(token.payload)["cardInfo"] == {"cardToken": "1111111111111111"}


def test_attempt_needs_an_encrypter(client_for) -> None:
    recorder = Recorder(text="ACK")
    client = client_for(recorder, attempt_encrypter=None)
    with pytest.raises(RuntimeError, match="AttemptEncrypter"):
        client.attempt_payout("po1", customer_id="c", fulfillment_id="f1", card=CardToken("t"))
    assert recorder.requests == []


def test_the_client_does_not_show_its_key() -> None:
    client = JuspayClient(base_url="https://sandbox.juspay.in", api_key=API_KEY, merchant_id="m")
    assert API_KEY not in repr(client)
    assert "MUQ2" not in repr(client)
    client.close()
