"""Parsing of every seed sample (webhook payloads from Juspay's documents) and loose types."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.domain.errors import InvalidField
from billing.gateway import parse_mandate, parse_notification, parse_order, parse_payout_order
from billing.gateway.results import MandateRetryInfo, parse_mandate_list, parse_retry_info
from tests.seed_samples import sample

# Verbatim from shared/seeds (the webhooks page), so a drift in the parsers shows here.
NOTIFICATION_SUCCEEDED = sample("NOTIFICATION_SUCCEEDED")
MANDATE_ACTIVATED = sample("MANDATE_ACTIVATED")
ORDER_SUCCEEDED = sample("ORDER_SUCCEEDED")
ORDER_FAILED = sample("ORDER_FAILED")

SEED_MANDATE_EVENTS = {
    "MANDATE_CREATED": "CREATED",
    "MANDATE_ACTIVATED": "ACTIVE",
    "MANDATE_FAILED": "FAILURE",
    "MANDATE_PAUSED": "PAUSED",
    "MANDATE_EXPIRED": "EXPIRED",
    "MANDATE_REVOKED": "REVOKED",
}


def test_order_succeeded_sample_parses_with_its_mandate_block() -> None:
    order = parse_order(ORDER_SUCCEEDED["content"]["order"])
    assert order.order_id == "2348******3498"
    assert order.status == "CHARGED"
    assert order.status_id == 21
    assert order.amount == Decimal("1.00")
    assert order.currency == "INR"
    assert order.customer_id == "cst_lz*****okv"
    assert order.txn_object_type == "EMANDATE_REGISTER"
    assert order.txn_status == "CHARGED"
    assert order.error_code is None  # "" means none
    assert order.error_message is None
    assert order.retry_info is None
    assert order.date_created == datetime(2020, 8, 30, 9, 47, 46, tzinfo=UTC)
    assert order.mandate_id == "3XMEcS******Ybzj"
    assert order.mandate is not None
    assert order.mandate.status == "ACTIVE"
    assert order.mandate.rule_value == 30
    assert order.mandate.max_amount == Decimal("1000.00")
    assert order.mandate.end_date == "160***10"  # kept raw, even masked
    assert order.mandate.customer_id == "cst_lz*****okv"  # from the order
    assert order.mandate.payment_method_type == "UPI"


def test_order_failed_sample_reads_string_status_id_and_bank_error() -> None:
    order = parse_order(ORDER_FAILED["content"]["order"])
    assert order.status == "AUTHENTICATION_FAILED"
    assert order.status_id == 26  # sent as the string "26"
    assert order.amount == Decimal("1.00")  # sent as the string "1"
    assert order.error_code == "0399"
    assert order.error_message == "payment_authentication_error. 3D Secure authentication failure"
    assert order.txn_status == "CHARGED"  # txn_detail disagrees; order.status is the authority
    assert order.mandate is not None
    assert order.mandate.status == "FAILURE"
    assert order.mandate.max_amount == Decimal("10.00")
    assert order.mandate.mandate_type == "MANDATE"


def test_error_code_falls_back_to_txn_detail() -> None:
    payload = copy.deepcopy(ORDER_FAILED["content"]["order"])
    payload["bank_error_code"] = ""
    payload["bank_error_message"] = None
    order = parse_order(payload)
    assert order.error_code == "0399"
    assert order.error_message.startswith("payment_authentication_error")


@pytest.mark.parametrize("event_name", sorted(SEED_MANDATE_EVENTS))
def test_every_mandate_event_sample_parses(event_name: str) -> None:
    payload = copy.deepcopy(MANDATE_ACTIVATED["content"]["mandate"])
    payload["status"] = SEED_MANDATE_EVENTS[event_name]
    mandate = parse_mandate(payload)
    assert mandate.mandate_id == "eBWQNiQgeG7fdrXPPXtVbL"
    assert mandate.status == SEED_MANDATE_EVENTS[event_name]
    assert mandate.customer_id == "cst_9uiehncjizlfcnps"
    assert mandate.max_amount == Decimal("399.00")
    assert mandate.frequency == "MONTHLY"
    assert mandate.amount_rule == "VARIABLE"
    assert mandate.payment_method_type == "UPI"
    assert mandate.mandate_type == "EMANDATE"
    assert mandate.start_date == "1639802535"
    assert mandate.rule_value is None


def test_notification_samples_parse() -> None:
    notification = parse_notification(NOTIFICATION_SUCCEEDED["content"]["notification"])
    assert notification.id == "1957069"
    assert notification.object_reference_id == "2QNPw8KSbpHL122bNPgAK07"
    assert notification.status == "SUCCESS"
    assert notification.mandate_id == "4rKxSj3bNXs7RQcdtajAkb"
    assert notification.amount == Decimal("1.00")
    assert notification.txn_date == datetime(2021, 10, 12, 16, 45, 14, tzinfo=UTC)
    failed = copy.deepcopy(NOTIFICATION_SUCCEEDED["content"]["notification"])
    failed["status"] = "FAILURE"
    assert parse_notification(failed).status == "FAILURE"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, Decimal("1.00")),
        ("1", Decimal("1.00")),
        (1.0, Decimal("1.00")),
        ("399.00", Decimal("399.00")),
        (0, Decimal("0.00")),
    ],
)
def test_amounts_are_read_loosely(value: object, expected: Decimal) -> None:
    order = parse_order({"order_id": "o", "status": "NEW", "amount": value})
    assert order.amount == expected


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "NEW", "amount": 1}, "order_id"),
        ({"order_id": "o", "amount": 1}, "status"),
        ({"order_id": "o", "status": "NEW"}, "amount"),
        ({"order_id": "o", "status": "NEW", "amount": "1.005"}, "amount"),
        ({"order_id": "o", "status": "NEW", "amount": 1, "status_id": "x"}, "status_id"),
        ({"order_id": "o", "status": "NEW", "amount": 1, "txn_detail": []}, "txn_detail"),
        ({"order_id": "o", "status": "NEW", "amount": 1, "date_created": "soon"}, "date_created"),
    ],
)
def test_a_field_that_cannot_mean_anything_is_named(payload: dict, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_order(payload)
    assert caught.value.field == field


def test_unknown_keys_are_ignored() -> None:
    payload = {"order_id": "o", "status": "NEW", "amount": 1, "brand_new_key": {"x": [1]}}
    assert parse_order(payload).status == "NEW"


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (None, None),
        # juspay-api.md §3; nammayatri Common.hs `MandateRetryInfo`: every value `Maybe Text`
        (
            {"is_retried_order": "true", "retries_done_count": "2", "allowed_retry": "4",
             "is_business_retried": "false", "is_technical_retried": "true"},
            MandateRetryInfo(True, 2, 4, False, True),
        ),
        (
            {"is_retried_order": True, "retries_done_count": 4, "allowed_retry": 4},
            MandateRetryInfo(True, 4, 4, None, None),
        ),
        ({}, MandateRetryInfo(None, None, None, None, None)),
        # unreadable values read as absent: the order itself stays readable
        ({"retries_done_count": "two", "allowed_retry": "4.0"},
         MandateRetryInfo(None, None, None, None, None)),
        ('{"retries_done_count": "1", "allowed_retry": "3"}',  # JSON as a string
         MandateRetryInfo(None, 1, 3, None, None)),
    ],
)  # fmt: skip
def test_juspays_mandate_retry_info_is_read_with_its_own_keys(
    block: object, expected: MandateRetryInfo | None
) -> None:
    payload: dict[str, object] = {"order_id": "o1", "status": "AUTHORIZATION_FAILED", "amount": 1}
    if block is not None:
        payload["additional_info"] = {"mandate_retry_info": block}
    assert parse_retry_info(payload) == expected
    assert parse_order(payload).retry_info == expected


def test_booleans_sent_as_strings_are_read() -> None:
    payout = parse_payout_order(
        {
            "orderId": "po1",
            "status": "FULFILLMENTS_FAILURE",
            "amount": "100",
            "customerId": "c1",
            "fulfillments": [
                {
                    "id": "po1-f1",
                    "status": "FAILURE",
                    "amount": 100,
                    "preferredMethodList": ["DUMMY_VISADIRECT"],
                    "beneficiaryDetails": {"type": "PLAIN_CARD"},
                    "additionalInfo": {"isRetriable": "false", "attemptThreshold": "60"},
                    "transactions": [
                        {"transactionRef": "t1", "status": "FAILURE", "responseCode": "51"}
                    ],
                }
            ],
        }
    )
    (fulfillment,) = payout.fulfillments
    assert fulfillment.is_retriable is False
    assert fulfillment.attempt_threshold == 60
    assert (fulfillment.beneficiary_type, fulfillment.rail) == ("PLAIN_CARD", "DUMMY_VISADIRECT")
    assert fulfillment.failure_code == "51"
    assert payout.amount == Decimal("100.00")


def test_mandate_list_accepts_the_envelope_and_a_bare_list() -> None:
    item = {"mandate_id": "m1", "status": "ACTIVE", "payment_info": {"payment_method_type": "CARD"}}
    assert parse_mandate_list({"object": "list", "list": [item]})[0].payment_method_type == "CARD"
    assert parse_mandate_list([item])[0].status == "ACTIVE"
    with pytest.raises(InvalidField):
        parse_mandate_list({"list": "nope"})
