"""Client against sandbox: payout order status and the encrypted Attempt API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from jwcrypto import jwe, jwk, jws

from billing.gateway import (
    AttemptEncrypter,
    AuthenticationFailed,
    CardNumber,
    CardToken,
    JuspayClient,
    OrderNotFound,
    Rejected,
)
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from tests.integration.sandbox_fixtures import (
    API_KEY,
    KEY_ID,
    MERCHANT_ID,
    MERCHANT_KEY_ID,
    card_fulfillment,
    payout_order,
)

CUSTOMER = "cst_3344"
CARD = CardNumber("5513651111111111", "02", "2028", name="A Kumar", security_code="123")


@pytest.fixture
def payout(sandbox: SandboxServer) -> SandboxServer:
    sandbox.state.seed_payout(
        payout_order(
            "po1",
            CUSTOMER,
            card_fulfillment("250.50", fid="po1-f1"),
            card_fulfillment("100", retriable=False, fid="po1-f2"),
        )
    )
    return sandbox


def attempt(client: JuspayClient, card: CardNumber | CardToken = CARD, **extra: object) -> None:
    client.attempt_payout(
        "po1", customer_id=CUSTOMER, fulfillment_id=str(extra.get("fid", "po1-f1")), card=card
    )


def sandbox_private_key(sandbox: SandboxServer) -> jwk.JWK:
    pem = httpx.get(f"{sandbox.url}/sandbox/keys/juspay-private.pem").content
    return jwk.JWK.from_pem(pem)


def test_payout_status_reads_the_fulfillments(
    payout: SandboxServer, juspay_client: JuspayClient
) -> None:
    result = juspay_client.payout_order_status("po1", customer_id=CUSTOMER)
    assert (result.order_id, result.status, result.customer_id) == (
        "po1",
        "FULFILLMENTS_FAILURE",
        CUSTOMER,
    )
    assert result.amount == Decimal("350.50")
    first, second = result.fulfillments
    assert (first.id, first.status, first.amount) == ("po1-f1", "FAILURE", Decimal("250.50"))
    assert (first.beneficiary_type, first.rail, first.is_retriable, first.attempt_threshold) == (
        "PLAIN_CARD",
        "DUMMY_VISADIRECT",
        None,
        1440,
    )
    assert (first.failure_code, first.failure_message) == ("91", "Issuer or switch inoperative")
    assert first.transactions is not None
    assert [t.status for t in first.transactions] == ["FAILURE"]
    assert second.is_retriable is False
    request = list(payout.state.requests)[-1]
    assert request["query"] == "expand=fulfillment%2Cpayment"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["x-routing-id"] == CUSTOMER


def test_an_unknown_payout_order_is_not_found(
    payout: SandboxServer, juspay_client: JuspayClient
) -> None:
    with pytest.raises(OrderNotFound):
        juspay_client.payout_order_status("nope", customer_id=CUSTOMER)


def test_an_attempt_is_acked_decrypted_recorded_and_settles_after_n_polls(
    payout: SandboxServer, juspay_client: JuspayClient
) -> None:
    attempt(juspay_client)
    (recorded,) = payout.state.attempt_views()
    assert recorded["plaintext"] == {
        "fulfillmentId": "po1-f1",
        "cardInfo": {
            "cardNumber": "5513651111111111",
            "cardExpiry": {"month": "02", "year": "2028"},
            "name": "A Kumar",
            "cardSecurityCode": "123",
        },
    }
    assert (recorded["kid"], recorded["sid"], recorded["signed"]) == (
        KEY_ID,
        MERCHANT_KEY_ID,
        False,
    )
    statuses = []
    for _ in range(2):
        result = juspay_client.payout_order_status("po1", customer_id=CUSTOMER)
        first = result.fulfillments[0]
        assert first.transactions is not None
        statuses.append((result.status, first.status, [t.status for t in first.transactions]))
    assert statuses == [
        ("FULFILLMENTS_SCHEDULED", "PENDING", ["FAILURE", "INITIATED"]),  # the attempt's own
        ("FULFILLED_PARTIALLY", "SUCCESS", ["FAILURE", "SUCCESS"]),  # po1-f2 is still FAILURE
    ]
    assert [(e["fulfillment_id"], e["amount"]) for e in payout.state.payout_ledger] == [
        ("po1-f1", "250.50")
    ]
    with pytest.raises(Rejected, match="not in a retriable state"):
        attempt(juspay_client)  # SUCCESS now: nothing to retry


def test_the_jwe_the_client_sent_opens_with_an_independent_decryption(
    payout: SandboxServer, juspay_client: JuspayClient
) -> None:
    attempt(juspay_client, CardToken("4111111111111111"))
    (recorded,) = httpx.get(f"{payout.url}/sandbox/attempts").json()["attempts"]
    token = jwe.JWE()
    token.deserialize(recorded["payload"], key=sandbox_private_key(payout))
    assert json.loads(token.payload) == {
        "fulfillmentId": "po1-f1",
        "cardInfo": {"cardToken": "4111111111111111"},
    }
    assert json.loads(token.objects["protected"]) == {
        "alg": "RSA-OAEP",
        "typ": "JWT",
        "enc": "A256CBC-HS512",
        "kid": KEY_ID,
    }


@pytest.mark.parametrize(
    ("alg", "enc"), [("RSA-OAEP-256", "A128CBC-HS256"), ("RSA-OAEP", "A256GCM")]
)
def test_alg_and_enc_settings_reach_the_request(
    payout: SandboxServer,
    make_juspay_client: Callable[..., JuspayClient],
    juspay_public_key_file: Path,
    alg: str,
    enc: str,
) -> None:
    encrypter = AttemptEncrypter.from_files(
        public_key_file=juspay_public_key_file,
        key_id=KEY_ID,
        merchant_key_id=MERCHANT_KEY_ID,
        alg=alg,
        enc=enc,
    )
    attempt(make_juspay_client(attempt_encrypter=encrypter))
    header = payout.state.attempt_views()[0]["header"]
    assert (header["alg"], header["enc"]) == (alg, enc)


def _post_attempt(sandbox: SandboxServer, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/payout/merchant/v1/orders/po1/attempt",
        json=body,
        auth=(API_KEY, ""),
        headers={"x-merchantid": MERCHANT_ID, "x-routing-id": CUSTOMER},
    )


def _tamper(token: str) -> str:
    parts = token.split(".")
    ciphertext = parts[3]
    parts[3] = ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]
    return ".".join(parts)


def test_a_tampered_jwe_is_refused_with_e01(
    payout: SandboxServer, attempt_encrypter: AttemptEncrypter
) -> None:
    body = attempt_encrypter.body({"fulfillmentId": "po1-f1", "cardInfo": {"cardToken": "t"}})
    body["payload"] = _tamper(body["payload"])
    response = _post_attempt(payout, body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "E01"
    assert response.json()["error"] is True
    assert payout.state.attempts == []


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [
        ({"cardInfo": {"cardToken": "t"}}, "fulfillmentId"),
        ({"fulfillmentId": "po9-f1", "cardInfo": {"cardToken": "t"}}, "does not belong"),
        ({"fulfillmentId": "po1-f1"}, "cardInfo"),
        ({"fulfillmentId": "po1-f1", "cardInfo": {"cardNumber": "5513651111111111"}}, "cardExpiry"),
        ({"fulfillmentId": "po1-f1", "cardInfo": {"name": "x"}}, "cardNumber"),
        ({"fulfillmentId": "po1-f2", "cardInfo": {"cardToken": "t"}}, "retriable"),
    ],
)
def test_a_plaintext_juspay_cannot_use_is_refused_with_e01(
    payout: SandboxServer, attempt_encrypter: AttemptEncrypter, plaintext: dict, message: str
) -> None:
    response = _post_attempt(payout, attempt_encrypter.body(plaintext))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "E01"
    assert message in response.json()["errorMessage"]


@pytest.mark.parametrize("wrong", ["kid", "sid"])
def test_a_wrong_kid_or_sid_is_refused(
    payout: SandboxServer,
    make_juspay_client: Callable[..., JuspayClient],
    juspay_public_key_file: Path,
    wrong: str,
) -> None:
    encrypter = AttemptEncrypter.from_files(
        public_key_file=juspay_public_key_file,
        key_id="OtherKID" if wrong == "kid" else KEY_ID,
        merchant_key_id="OtherSID" if wrong == "sid" else MERCHANT_KEY_ID,
    )
    with pytest.raises(Rejected) as caught:
        attempt(make_juspay_client(attempt_encrypter=encrypter))
    assert (caught.value.code, caught.value.http_status) == ("E01", 400)
    assert f"Invalid {wrong}" in caught.value.message


def test_a_payload_for_another_key_is_refused(
    payout: SandboxServer, make_juspay_client: Callable[..., JuspayClient]
) -> None:
    stranger = jwk.JWK.generate(kty="RSA", size=2048)
    encrypter = AttemptEncrypter(
        juspay_public_key_pem=stranger.export_to_pem(),
        key_id=KEY_ID,
        merchant_key_id=MERCHANT_KEY_ID,
    )
    with pytest.raises(Rejected, match="Unable to decrypt"):
        attempt(make_juspay_client(attempt_encrypter=encrypter))


def _signed_then_encrypted(
    plaintext: dict[str, object], merchant: jwk.JWK, sandbox: SandboxServer
) -> str:
    """The old order, the EC APIs' (juspay-api.md §7): a JWS inside the JWE."""
    inner = jws.JWS(json.dumps(plaintext).encode())
    inner.add_signature(
        merchant, alg="RS256", protected=json.dumps({"alg": "RS256", "kid": MERCHANT_KEY_ID})
    )
    public = jwk.JWK.from_pem(httpx.get(f"{sandbox.url}/sandbox/keys/juspay-public.pem").content)
    header = {"alg": "RSA-OAEP", "enc": "A256CBC-HS512", "typ": "JWT", "cty": "JWT", "kid": KEY_ID}
    token = jwe.JWE(inner.serialize(compact=True).encode(), protected=json.dumps(header))
    token.add_recipient(public)
    return str(token.serialize(compact=True))


def test_with_jws_sign_the_sandbox_accepts_the_signature_over_the_jwe_and_refuses_the_old_order(
    payout: SandboxServer,
    make_juspay_client: Callable[..., JuspayClient],
    juspay_public_key_file: Path,
    tmp_path: Path,
) -> None:
    """Juspay's payout encryption guide: encrypt, then sign the result (juspay-api.md §6.5)."""
    merchant = jwk.JWK.generate(kty="RSA", size=2048)
    private = tmp_path / "merchant.pem"
    private.write_bytes(merchant.export_to_pem(private_key=True, password=None))
    signing = AttemptEncrypter.from_files(
        public_key_file=juspay_public_key_file,
        key_id=KEY_ID,
        merchant_key_id=MERCHANT_KEY_ID,
        private_key_file=private,
    )
    with pytest.raises(Rejected, match="no merchant key registered") as caught:
        attempt(make_juspay_client(attempt_encrypter=signing))  # Juspay has no key for sid
    assert caught.value.code == "E03"
    registered = httpx.post(
        f"{payout.url}/sandbox/keys/merchant-public.pem", content=merchant.export_to_pem()
    )
    assert registered.json() == {"merchant_public_key": True}

    with pytest.raises(Rejected, match="must be signed") as caught:
        attempt(make_juspay_client())  # a bare JWE, now that a key is registered
    assert caught.value.code == "E03"
    plaintext = {"fulfillmentId": "po1-f1", "cardInfo": {"cardToken": "tok"}}
    body = {
        "payload": _signed_then_encrypted(plaintext, merchant, payout),
        "kid": KEY_ID,
        "sid": MERCHANT_KEY_ID,
        "format": "compact",
    }
    refused = _post_attempt(payout, body)
    assert (refused.status_code, refused.json()["errorCode"]) == (400, "E03")
    assert "signed before encryption" in refused.json()["errorMessage"]
    forged = signing.body(plaintext)
    header, claims, signature = forged["payload"].split(".")
    forged["payload"] = ".".join([header, claims, signature[::-1]])
    assert _post_attempt(payout, forged).json()["errorCode"] == "E03"
    assert payout.state.attempts == []

    attempt(make_juspay_client(attempt_encrypter=signing))
    (recorded,) = payout.state.attempt_views()
    assert recorded["signed"] is True
    assert recorded["payload"].count(".") == 2  # the compact JWS travels in `payload`
    assert "cty" not in recorded["header"]
    assert recorded["plaintext"]["fulfillmentId"] == "po1-f1"


def test_a_queued_attempt_leaves_the_old_failure_showing_until_juspay_takes_it_up(
    payout: SandboxServer, juspay_client: JuspayClient
) -> None:
    """The sandbox can be slow the way Juspay may be: ACK now, the attempt's transaction later."""
    payout.state.faults.add(Fault(kind="queued", endpoint="attempt", seconds=600))
    payout.state.clock.set(datetime(2027, 3, 1, 6, 0, tzinfo=UTC))
    before = juspay_client.payout_order_status("po1", customer_id=CUSTOMER).fulfillments[0]
    attempt(juspay_client)
    for _ in range(3):
        payout.state.clock.advance(timedelta(minutes=3))
        still = juspay_client.payout_order_status("po1", customer_id=CUSTOMER).fulfillments[0]
        assert still == before  # the same FAILURE, the same statusUpdatedAt, one transaction
    payout.state.clock.advance(timedelta(minutes=2))
    taken = juspay_client.payout_order_status("po1", customer_id=CUSTOMER).fulfillments[0]
    assert taken.status == "PENDING"
    assert taken.transactions is not None
    assert [t.status for t in taken.transactions] == ["FAILURE", "INITIATED"]


def test_a_failing_attempt_ends_the_fulfillment_failed_with_its_code(
    payout: SandboxServer, juspay_client: JuspayClient
) -> None:
    payout.state.faults.add(
        Fault(kind="fail", endpoint="attempt", error_code="INVALID_CARD", polls=1)
    )
    payout.state.faults.add(Fault(kind="pending", endpoint="attempt", polls=1))
    attempt(juspay_client)
    result = juspay_client.payout_order_status("po1", customer_id=CUSTOMER)
    first = result.fulfillments[0]
    assert (first.status, first.failure_code) == ("FAILURE", "INVALID_CARD")
    assert payout.state.payout_ledger == []


def test_the_documented_alternative_path_and_a_wrong_key(
    payout: SandboxServer, make_juspay_client: Callable[..., JuspayClient]
) -> None:
    client = make_juspay_client(attempt_path="/payout/merchant/v1/{order_id}/attempt")
    attempt(client, CardToken("tok"))
    assert list(payout.state.requests)[-1]["path"] == "/payout/merchant/v1/po1/attempt"
    with pytest.raises(AuthenticationFailed) as caught:
        attempt(make_juspay_client(api_key="wrong"), fid="po1-f1")
    assert caught.value.code == "E02"
    assert caught.value.message == "Invalid API key passed in request."
