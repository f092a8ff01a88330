"""The error mapping, pinned as a table: every transport failure and answer -> its class."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from jwcrypto import jwk

from billing.gateway import (
    AttemptEncrypter,
    AuthenticationFailed,
    CardNumber,
    GatewayError,
    JuspayClient,
    MalformedResponse,
    OrderNotFound,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.gateway.errors import failure

Outcome = Exception | httpx.Response


def _client(outcome: Outcome, sent: list[httpx.Request]) -> JuspayClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    key = jwk.JWK.generate(kty="RSA", size=1024)
    encrypter = AttemptEncrypter(
        juspay_public_key_pem=key.export_to_pem(), key_id="k", merchant_key_id="s"
    )
    return JuspayClient(
        base_url="https://sandbox.juspay.in",
        api_key="key",
        merchant_id="m",
        transport=httpx.MockTransport(handler),
        attempt_encrypter=encrypter,
    )


def execute(client: JuspayClient) -> object:
    return client.execute_mandate(
        order_id="o1", amount=Decimal(399), customer_id="c1", mandate_id="m1"
    )


def order_status(client: JuspayClient) -> object:
    return client.order_status("o1", customer_id="c1")


def notification_status(client: JuspayClient) -> object:
    return client.notification_status("ref1", customer_id="c1")


def attempt(client: JuspayClient) -> object:
    card = CardNumber("4111111111111111", "12", "2030", security_code="987")
    client.attempt_payout("po1", customer_id="c1", fulfillment_id="f1", card=card)
    return None


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


DUPLICATE = {"status": "DUPLICATE_ORDER_ID", "status_id": 40, "error_message": "exists"}
INVALID = {
    "status": "Invalid Request",
    "error_code": "MISSING_FIELD",
    "error_message": "Mandatory field missing: order.amount",
}
DENIED = {"status": "error", "error_code": "access_denied"}
E01 = {"error": True, "errorCode": "E01", "errorMessage": "Amount0.0 cannot be less than 1.0"}
E02 = {
    "error": True,
    "errorCode": "E02",
    "errorMessage": "Invalid API key passed in request.",
    "userMessage": "Invalid API Key",
}
NOT_FOUND = {"status": "NOT_FOUND", "error_message": "no such order"}
# juspay-api.md §8: 400 bodies carry `error_info{user_message, developer_message, code,
# category}`; the catalogue code (INVALID_ACTION: "recurring on revoked mandate") is the code.
NOT_ACTIVE = {
    "status": "invalid_request_error",
    "error_message": "Mandate is in REVOKED state. Recurring cannot be executed",
    "error_code": "invalid_request",
    "error_info": {"code": "INVALID_ACTION", "category": "USER_ERROR"},
}
# The pause page (api-reference-global): `error_code` is a phrase, `error_info.code` the code.
MANDATE_NOT_FOUND = {
    "error_message": "Mandate not found",
    "status": "invalid_request_error",
    "error_code": "Mandate not found",
    "error_info": {"code": "RESOURCE_NOT_FOUND", "category": "USER_ERROR"},
}
# The SEA execution page, without error_info: `invalid_request_error` is a generic status word.
SEA_NOT_ACTIVE = {k: v for k, v in NOT_ACTIVE.items() if k != "error_info"}

TABLE: list[
    tuple[str, Callable[[JuspayClient], object], Outcome, type[GatewayError], str | None]
] = [
    ("connect error", execute, httpx.ConnectError("refused"), Unavailable, None),
    ("connect timeout", execute, httpx.ConnectTimeout("slow"), Unavailable, None),
    ("pool timeout", execute, httpx.PoolTimeout("busy"), Unavailable, None),
    ("read timeout", execute, httpx.ReadTimeout("slow"), OutcomeUnknown, None),
    ("write timeout", execute, httpx.WriteTimeout("slow"), OutcomeUnknown, None),
    ("dropped", execute, httpx.RemoteProtocolError("disconnected"), OutcomeUnknown, None),
    ("reset", execute, httpx.ReadError("reset by peer"), OutcomeUnknown, None),
    ("500", execute, _json(500, {"status": "error"}), OutcomeUnknown, "error"),
    ("502", execute, httpx.Response(502, text="<html>bad gateway</html>"), OutcomeUnknown, None),
    ("503", execute, httpx.Response(503), OutcomeUnknown, None),
    ("duplicate", execute, _json(400, DUPLICATE), Rejected, "DUPLICATE_ORDER_ID"),
    ("invalid request", execute, _json(400, INVALID), Rejected, "MISSING_FIELD"),
    ("mandate not active", execute, _json(400, NOT_ACTIVE), Rejected, "INVALID_ACTION"),
    ("catalogue code", execute, _json(400, MANDATE_NOT_FOUND), Rejected, "RESOURCE_NOT_FOUND"),
    ("SEA not active", execute, _json(400, SEA_NOT_ACTIVE), Rejected, "invalid_request"),
    ("401 EC", execute, _json(401, DENIED), AuthenticationFailed, "access_denied"),
    ("429", execute, _json(429, {}), Unavailable, None),
    ("unparsable 200", execute, httpx.Response(200, text="<html>"), MalformedResponse, None),
    ("200 missing status", execute, _json(200, {"order_id": "o1"}), MalformedResponse, None),
    ("200 not an object", execute, _json(200, ["o1"]), MalformedResponse, None),
    ("404 order", order_status, _json(404, NOT_FOUND), OrderNotFound, "NOT_FOUND"),
    ("200 NOT_FOUND", order_status, _json(200, NOT_FOUND), OrderNotFound, "NOT_FOUND"),
    ("400 NOT_FOUND", order_status, _json(400, NOT_FOUND), OrderNotFound, "NOT_FOUND"),
    ("404 elsewhere", notification_status, _json(404, NOT_FOUND), Rejected, "NOT_FOUND"),
    ("E01", attempt, _json(400, E01), Rejected, "E01"),
    ("E02", attempt, _json(401, E02), AuthenticationFailed, "E02"),
    ("not ACK", attempt, httpx.Response(200, text="NACK"), MalformedResponse, None),
]


@pytest.mark.parametrize(
    ("call", "outcome", "expected", "code"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_every_failure_maps_to_one_error_class(call, outcome, expected, code) -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(GatewayError) as caught:
        call(_client(outcome, sent))
    error = caught.value
    assert type(error) is expected
    assert error.code == code
    assert error.request_id == sent[-1].headers["x-request-id"]
    if isinstance(outcome, httpx.Response):
        assert error.http_status == outcome.status_code
    assert "4111111111111111" not in str(error)
    assert not re.search(r"(?<![0-9a-f])987(?![0-9a-f])", str(error))  # not inside the hex id


def test_only_the_404_of_an_order_lookup_means_the_order_does_not_exist() -> None:
    response = httpx.Response(404, json=NOT_FOUND)
    assert isinstance(failure(response, request_id="r", order_lookup=True), OrderNotFound)
    plain = failure(response, request_id="r")
    assert isinstance(plain, Rejected)
    assert not isinstance(plain, OrderNotFound)


def test_the_tree_says_what_may_be_resent() -> None:
    assert issubclass(OrderNotFound, Rejected)
    assert issubclass(AuthenticationFailed, Rejected)
    assert issubclass(MalformedResponse, OutcomeUnknown)
    assert not issubclass(Unavailable, OutcomeUnknown)
    assert not issubclass(OutcomeUnknown, Rejected)


def test_an_error_names_code_message_and_request_id() -> None:
    error = failure(httpx.Response(400, json=INVALID), request_id="abc123")
    assert str(error) == (
        "[MISSING_FIELD] Mandatory field missing: order.amount (HTTP 400) request_id=abc123"
    )
