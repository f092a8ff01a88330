"""Contract tests: Juspay's own payout samples (tests/payout_samples.py, verbatim from
`juspay/juspay-sdk-integration-demo` branch `juspay-payout`) read by the client's parsers and the
receiver's, and the sandbox's shapes checked against the same samples, each on its own: the
sandbox is held to Juspay's samples, not to what the client reads.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billing.gateway import CardNumber, CardToken, parse_payout_event, parse_payout_order
from billing.gateway.cards import card_info
from billing.sandbox.payout_seed import build_payout
from billing.sandbox.shapes import (
    fulfillment_shape,
    payout_event,
    payout_order_info,
    payout_shape,
    payout_txn_info,
)
from billing.webhooks.parse import parse_payout
from tests import payout_samples
from tests.payout_samples import sample

MIRROR = Path("/work/.mirror/juspay+juspay-sdk-integration-demo/repo")
T0 = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no local mirror of Juspay's demo repository")
@pytest.mark.parametrize("name", sorted(payout_samples.PATHS))
def test_the_fixtures_are_juspays_files_byte_for_byte(name: str) -> None:
    path = payout_samples.PATHS[name]
    spec = f"{payout_samples.COMMIT}:{path}"
    published = subprocess.run(
        ["git", "-C", str(MIRROR), "show", spec], capture_output=True, check=True
    ).stdout.decode()
    assert getattr(payout_samples, name) == published


def test_the_published_order_status_is_not_json_and_the_fix_is_one_comma() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(payout_samples.ORDER_STATUS)
    assert len(payout_samples.ORDER_STATUS) - len(payout_samples.ORDER_STATUS_FIXED) == 1


# --- the client reads Juspay's samples ----------------------------------------------------------


def test_the_order_status_sample_reads_type_rail_and_the_latest_transaction() -> None:
    """`payout-api/order-status/response.json`: an ACCOUNT_IFSC fulfillment whose transactions
    are listed newest first; the rail and the codes come from the newest by createdAt."""
    order = parse_payout_order(sample("ORDER_STATUS"))
    assert (order.order_id, order.status, order.amount) == (
        "Z3ags1v7S6FioDQA",
        "FULFILLMENTS_SUCCESSFUL",
        Decimal("1.00"),
    )
    assert order.customer_id == "ce1d3404-dc3d-4886-a46e-43a48ddd0324"
    assert order.updated_at == datetime(2020, 3, 7, 10, 25, 4, tzinfo=UTC)
    (fulfillment,) = order.fulfillments
    assert (fulfillment.id, fulfillment.status) == ("f9c2f6669ba4f3fa70c4d4d01d4dee-f1", "SUCCESS")
    assert (fulfillment.beneficiary_type, fulfillment.rail) == ("ACCOUNT_IFSC", "DUMMY_IMPS")
    assert fulfillment.status_at == datetime(2020, 3, 7, 10, 25, 4, tzinfo=UTC)
    assert fulfillment.transactions is not None
    success, failure = fulfillment.transactions
    assert (success.ref, success.status, success.response_code) == (
        "3c424431d0243a6a4ff15d1ddac443",
        "SUCCESS",
        "00",
    )
    assert (failure.status, failure.rail, failure.response_code, failure.response_message) == (
        "FAILURE",
        "JUSPAY_VISADIRECT",
        "57",
        "Transaction Not Permitted to card holder",  # responseDescription before responseMessage
    )
    assert fulfillment.latest_transaction == success  # created 2020-03-07, the other 03-06


def test_a_plain_card_order_is_plain_card_by_its_beneficiary_and_the_rail_is_a_method() -> None:
    """`payout-api/order-create-encryp/non-tokenized-card.json`: the create answer for a
    PLAIN_CARD payout on DUMMY_VISADIRECT."""
    order = parse_payout_order(sample("PLAIN_CARD_CREATED"))
    (fulfillment,) = order.fulfillments
    assert (fulfillment.beneficiary_type, fulfillment.rail) == ("PLAIN_CARD", "DUMMY_VISADIRECT")
    assert (fulfillment.status, fulfillment.attempt_threshold) == ("CREATED", 1440)
    assert fulfillment.transactions is None
    assert fulfillment.failure_code is None


@pytest.mark.parametrize(
    ("name", "label", "value"),
    [
        ("WEBHOOK_READY_FOR_FULFILLMENT", "ORDER", "READY_FOR_FULFILLMENT"),
        ("WEBHOOK_FULFILLMENTS_SCHEDULED", "ORDER", "FULFILLMENTS_SCHEDULED"),
        ("WEBHOOK_ORDER_SUCCESS", "ORDER", "FULFILLMENTS_SUCCESSFUL"),
        ("WEBHOOK_PENDING", "FULFILLMENT_ORDER", "INITIATED"),
        ("WEBHOOK_FULFILLMENT_SUCCESS", "FULFILLMENT_ORDER", "SUCCESS"),
        ("WEBHOOK_ATTEMPTED", "FULFILLMENT_TXN", "INITIATED"),
        ("WEBHOOK_TXN_SUCCESS", "FULFILLMENT_TXN", "SUCCESS"),
        ("WEBHOOK_VALIDATION_VALID", "VALIDATION_V2", "VALID"),
        ("WEBHOOK_VALIDATION_INVALID", "VALIDATION_V2", "INVALID"),
        ("WEBHOOK_VALIDATION_ERROR", "VALIDATION_V2", "ERROR"),
    ],
)
def test_every_payout_webhook_sample_is_accepted_by_the_receiver_with_value_as_the_status(
    name: str, label: str, value: str
) -> None:
    body = sample(name)
    event = parse_payout(body)
    assert (event.id, event.category, event.label, event.value) == (
        body["id"],
        "INFO",
        label,
        value,
    )
    content = event.content
    assert content.status == value
    if label == "ORDER":
        assert content.order is not None
        assert (content.order.order_id, content.order.status) == ("6lQuvBOixfADPpmD", value)
        assert content.order.juspay_id == "95eb968ccdd4f2d9ef31c3e972ca40"
    elif label == "FULFILLMENT_ORDER":
        assert content.fulfillment is not None
        assert content.fulfillment.id == "95eb968ccdd4f2d9ef31c3e972ca40-f1"
        # pending.json: value INITIATED while info.status says PENDING; the value is the status
        assert content.fulfillment.status == value
        assert content.fulfillment.transactions is None  # this info lists none
    elif label == "FULFILLMENT_TXN":
        assert content.transaction is not None
        assert content.transaction.fulfillment_id == "95eb968ccdd4f2d9ef31c3e972ca40-f1"
        assert content.transaction.ref == "3ec3d5491604fa39d22bba6f236f38"
        assert content.transaction.created_at == datetime(2020, 5, 29, 7, 26, 18, tzinfo=UTC)
    else:
        assert (content.order, content.fulfillment, content.transaction) == (None, None, None)


def test_our_attempt_plaintext_uses_the_keys_of_juspays_attempt_samples() -> None:
    """`payout-api/attempted/card-number.json` and `card-token-mastercard.json`; `name` is in
    the Attempt API page's field list (seed 001) though not in the sample."""
    by_number = card_info(CardNumber("5513651111111111", "02", "2028", security_code="123"))
    assert by_number == sample("ATTEMPT_CARD_NUMBER")["cardInfo"] | {
        "cardNumber": "5513651111111111"
    }
    named = card_info(CardNumber("5513651111111111", "02", "2028", name="A"))
    assert set(named) <= set(sample("ATTEMPT_CARD_NUMBER")["cardInfo"]) | {"name"}
    assert set(card_info(CardToken("t"))) == set(sample("ATTEMPT_CARD_TOKEN")["cardInfo"])


# --- the sandbox answers in Juspay's shapes -----------------------------------------------------


def keys(value: dict[str, Any]) -> set[str]:
    return set(value)


def seeded(status: str = "FAILURE") -> Any:
    """Juspay's PLAIN_CARD create body, verbatim, plus where the sandbox starts it."""
    body = sample("PLAIN_CARD_CREATE")
    body["fulfillments"][0]["sandbox"] = {"status": status}
    return build_payout(body, now=T0)


def test_the_sandbox_takes_juspays_create_body_and_keeps_only_the_last_four() -> None:
    payout = seeded("CREATED")
    shape = payout_shape(payout)
    (fulfillment,) = shape["fulfillments"]
    created = sample("PLAIN_CARD_CREATED")["fulfillments"][0]
    assert keys(created) - {"additionalInfo"} <= keys(fulfillment)
    assert fulfillment["beneficiaryDetails"] == created["beneficiaryDetails"]
    assert fulfillment["status"] == "CREATED"
    assert fulfillment["fulfillmentMethodList"] == []
    assert "4111111111111111" not in json.dumps(shape)
    assert "cardSecurityCode" not in json.dumps(shape)
    token = sample("PLAIN_CARD_TOKEN_CREATE")
    assert build_payout(token, now=T0).fulfillments[0].additional_info["isRetriable"] is True


def test_the_sandbox_order_status_has_every_key_of_juspays_sample() -> None:
    published = sample("ORDER_STATUS")
    published_txns = published["fulfillments"][0]["transactions"]
    for status, txn_sample in (("SUCCESS", published_txns[0]), ("FAILURE", published_txns[1])):
        shape = payout_shape(seeded(status))
        assert keys(published) - {"fulfillments"} <= keys(shape)
        (fulfillment,) = shape["fulfillments"]
        assert keys(published["fulfillments"][0]) <= keys(fulfillment)
        (txn,) = fulfillment["transactions"]
        assert keys(txn_sample) - {"epgTxnId"} <= keys(txn)
        assert txn["status"] == status


def test_the_sandbox_webhooks_have_juspays_envelope_and_every_key_of_its_samples() -> None:
    payout = seeded("PENDING")
    fulfillment = payout.fulfillments[0]
    (txn,) = fulfillment.transactions
    made = {
        "ORDER": payout_event("ORDER", payout.status, payout_order_info(payout)),
        "FULFILLMENT_ORDER": payout_event(
            "FULFILLMENT_ORDER",
            fulfillment.status,
            fulfillment_shape(fulfillment, payout.customer_id, transactions=False),
        ),
        "FULFILLMENT_TXN": payout_event(
            "FULFILLMENT_TXN", txn.status, payout_txn_info(fulfillment, txn)
        ),
    }
    for label, name in (
        ("ORDER", "WEBHOOK_ORDER_SUCCESS"),
        ("FULFILLMENT_ORDER", "WEBHOOK_FULFILLMENT_SUCCESS"),
        ("FULFILLMENT_TXN", "WEBHOOK_ATTEMPTED"),
    ):
        published, event = sample(name), made[label]
        assert keys(event) == keys(published) == {"id", "category", "label", "value", "info"}
        assert (event["category"], event["label"]) == ("INFO", label)
        assert isinstance(event["value"], str)
        assert keys(published["info"]) <= keys(event["info"]), label
        assert parse_payout_event(label, event["value"], event["info"]).label == label
