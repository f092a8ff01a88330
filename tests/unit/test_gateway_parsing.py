"""Parsing of every seed sample (webhook payloads from Juspay's documents) and loose types."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.domain.errors import InvalidField
from billing.gateway import parse_mandate, parse_notification, parse_order, parse_payout_order
from billing.gateway.results import mandate_retry_pending, parse_mandate_list

# Verbatim from shared/seeds (the webhooks page), so a drift in the parsers shows here.
NOTIFICATION_SUCCEEDED = json.loads(
    r"""
{
 "id": "evt_V2_bc933a28ee5948be9f2939caac09d9",
 "date_created": "2020-07-24T10:42:25Z",
 "event_name": "NOTIFICATION_SUCCEEDED",
 "content": {
  "notification": {
   "status": "SUCCESS",
   "source_object": "MANDATE",
   "source_info": {
    "txn_date": "1634057114",
    "mandate.display_invoice_number": "INVN67Mzd6wMX4xPVBC",
    "amount": "1"
   },
   "provider_response": {
    "provider_ref_id": "IN0DF815118772"
   },
   "provider_name": "BILLDESK",
   "object_reference_id": "2QNPw8KSbpHL122bNPgAK07",
   "object": "notification",
   "notification_type": "SMS",
   "mandate": {
    "mandate_id": "4rKxSj3bNXs7RQcdtajAkb"
   },
   "last_updated": "1644071838",
   "id": "1957069",
   "description": "Notification for upcoming mandate",
   "date_created": "1644071838"
  }
 }
}
"""
)

MANDATE_ACTIVATED = json.loads(
    r"""
{
 "id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb",
 "event_name": "MANDATE_ACTIVATED",
 "date_created": "2021-12-18T10:15:35Z",
 "content": {
  "mandate": {
   "status": "ACTIVE",
   "start_date": "1639802535",
   "end_date": "3093465599",
   "revokable_by_customer": "true",
   "payment_info": {
    "upi": {
     "payer_vpa": "[email protected]"
    },
    "payment_method_type": "UPI",
    "payment_method": "COLLECT/PAY/INAPP"
   },
   "order_id": "1631719633",
   "max_amount": "399",
   "mandate_type": "EMANDATE",
   "mandate_token": "82eef1552bb840a980f76dc78d3991b1",
   "mandate_id": "eBWQNiQgeG7fdrXPPXtVbL",
   "mandate_debit_token": "82eef1552bb840a980f76dc78d3991b1",
   "last_activated_at": "2020-04-18T10:16:02Z",
   "frequency": "MONTHLY",
   "customer_id": "cst_9uiehncjizlfcnps",
   "currency": "INR",
   "block_fund": false,
   "amount_rule": "VARIABLE",
   "activated_at": "2020-04-18T10:16:02Z"
  }
 }
}
"""
)

ORDER_SUCCEEDED = json.loads(
    r"""
{
 "id": "evt_V2_4b83ba211443b53fc020d4c",
 "event_name": "ORDER_SUCCEEDED",
 "date_created": "2021-03-20T07:48:31Z",
 "content": {
  "order": {
   "udf9": "",
   "udf8": "",
   "udf7": "",
   "udf6": "",
   "udf5": "",
   "udf4": "",
   "udf3": "",
   "udf2": "",
   "udf10": "",
   "udf1": "",
   "txn_uuid": "eulmy******y1Syy",
   "txn_id": "juspay-2348******3498-1",
   "txn_detail": {
    "txn_uuid": "eulmy******y1Syy",
    "txn_object_type": "EMANDATE_REGISTER",
    "txn_id": "juspay-2348******3498-1",
    "txn_amount": 1,
    "tax_amount": null,
    "surcharge_amount": null,
    "status": "CHARGED",
    "source_object_id": "91887",
    "source_object": "MANDATE",
    "redirect": true,
    "order_id": "2348******3498",
    "net_amount": 1,
    "gateway_id": 19,
    "gateway": "PAYTM_V2",
    "express_checkout": false,
    "error_message": "",
    "error_code": "",
    "currency": "INR",
    "created": "2020-08-30T09:53:17Z"
   },
   "status_id": 21,
   "status": "CHARGED",
   "return_url": "https://sandbox.juspay.in",
   "refunded": false,
   "product_id": "",
   "payment_method_type": "UPI",
   "payment_method": "UPI",
   "payment_links": {
    "web": "https://sandbox.juspay.in/merchant/pay/ordeu_9a092980*******4d0206",
    "mobile": "https://sandbox.juspay.in/merchant/pay/ordeu_9a092980*******4d0206?mobile=true",
    "iframe": "https://sandbox.juspay.in/merchant/ipay/ordeu_9a092980*******4d0206"
   },
   "payment_gateway_response": {
    "txn_id": "juspay-2348******3498-1",
    "rrn": "4299662",
    "resp_message": "Txn Success",
    "resp_code": "01",
    "epg_txn_id": "202008*******80189",
    "created": "2020-08-30T09:54:10Z",
    "auth_id_code": ""
   },
   "payer_vpa": "[email protected]",
   "order_id": "2348******3498",
   "metadata": {
    "PAYTM_V2:gateway_reference_id": "upimandate"
   },
   "merchant_id": "juspay",
   "mandate": {
    "start_date": "1598745600",
    "rule_value": 30,
    "rule_type": "AFTER",
    "revokable_by_customer": true,
    "max_amount": 1000,
    "mandate_type": "EMANDATE",
    "mandate_token": "ad1d221******0f3",
    "mandate_status": "ACTIVE",
    "mandate_id": "3XMEcS******Ybzj",
    "frequency": "MONTHLY",
    "end_date": "160***10",
    "block_fund": false,
    "amount_rule": "VARIABLE"
   },
   "id": "ordeu_9a092980*******4d0206",
   "gateway_reference_id": "upimandate",
   "gateway_id": 19,
   "date_created": "2020-08-30T09:47:46Z",
   "customer_phone": "9999999999",
   "customer_id": "cst_lz*****okv",
   "customer_email": "[email protected]",
   "currency": "INR",
   "bank_error_message": "",
   "bank_error_code": "",
   "auth_type": "",
   "amount_refunded": 0,
   "amount": 1
  }
 }
}
"""
)

ORDER_FAILED = json.loads(
    r"""
{
 "id": "evt_V2_6e76c650ff214edc87763234b958fabd",
 "event_name": "ORDER_FAILED",
 "date_created": "2021-12-27T12:42:37Z",
 "content": {
  "order": {
   "udf9": "",
   "udf8": "",
   "udf7": "",
   "udf6": "",
   "udf5": "",
   "udf4": "",
   "udf3": "",
   "udf2": "",
   "udf10": "",
   "udf1": "",
   "txn_uuid": "eulc9Pbtedwqm5ByE3yFc",
   "txn_id": "test-SEwfX7hcqZe-1",
   "txn_detail": {
    "txn_uuid": "eulc9Pbtedwqm5ByE3yFc",
    "txn_object_type": "EMANDATE_REGISTER",
    "txn_id": "test-SEwfX7hcqZe-1",
    "txn_amount": 1,
    "tax_amount": null,
    "surcharge_amount": null,
    "status": "CHARGED",
    "source_object_id": "91887",
    "source_object": "MANDATE",
    "redirect": true,
    "order_id": "SEwfX7hcqZe",
    "net_amount": 1,
    "gateway_id": 19,
    "gateway": "BILLDESK",
    "error_message": "payment_authentication_error. 3D Secure authentication failure",
    "error_code": "0399",
    "currency": "INR",
    "created": "2021-12-27T12:42:08Z"
   },
   "status_id": "26",
   "status": "AUTHENTICATION_FAILED",
   "return_url": "https://sandbox.juspay.in/end",
   "refunded": false,
   "product_id": "",
   "payment_method_type": "CARD",
   "payment_method": "VISA",
   "payment_links": {
    "web": "https://sandbox.juspay.in/merchant/pay/ordeu_9a092980*******4d0206",
    "mobile": "https://sandbox.juspay.in/merchant/pay/ordeu_9a092980*******4d0206?mobile=true",
    "iframe": "https://sandbox.juspay.in/merchant/ipay/ordeu_9a092980*******4d0206"
   },
   "payment_gateway_response": {
    "txn_id": "test_store-DW-SEfX7hcqZe-1",
    "rrn": null,
    "resp_message": "payment_authentication_error. 3D Secure authentication failure",
    "resp_code": "0399",
    "epg_txn_id": "U45600****9600",
    "created": "2021-12-27T12:42:36Z",
    "auth_id_code": null
   },
   "order_id": "SEwfX7hcqZe",
   "offers": [],
   "metadata": null,
   "merchant_id": "test",
   "mandate": {
    "start_date": "1640608898",
    "revokable_by_customer": "true",
    "max_amount": "10",
    "mandate_type": "MANDATE",
    "mandate_token": "FILTERED",
    "mandate_status": "FAILURE",
    "mandate_id": "2K6Nap******5KWPjK15",
    "frequency": "ASPRESENTED",
    "end_date": "2134731745",
    "block_fund": false,
    "amount_rule": "VARIABLE"
   },
   "id": "ordeu_9a092980*******4d0206",
   "gateway_reference_id": null,
   "gateway_id": "27",
   "effective_amount": "1",
   "date_created": "2021-12-27T12:42:08Z",
   "customer_phone": "FILTERED",
   "customer_id": "FILTERED",
   "customer_email": "FILTERED",
   "currency": "INR",
   "card": "FILTERED",
   "bank_pg": null,
   "bank_error_message": "payment_authentication_error. 3D Secure authentication failure",
   "bank_error_code": "0399",
   "auth_type": "THREE_DS",
   "amount_refunded": 0,
   "amount": "1"
  }
 }
}
"""
)

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
    assert order.mandate_retry_pending is False
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
    ("retry_info", "status", "pending"),
    [
        (None, "AUTHORIZATION_FAILED", False),
        ({"is_retry_pending": "true"}, "AUTHORIZATION_FAILED", True),
        ({"is_retry_pending": False}, "AUTHORIZATION_FAILED", False),
        ({"retry_pending": "false"}, "PENDING_VBV", False),
        ({"retry_count": 1, "max_retry_count": 4}, "AUTHORIZATION_FAILED", True),
        ({"retry_count": "4", "max_retry_count": "4"}, "AUTHORIZATION_FAILED", False),
        ({"retries_left": 0}, "AUTHORIZATION_FAILED", False),
        ({}, "AUTHORIZATION_FAILED", True),
        ({"is_retry_pending": True}, "CHARGED", False),
        ('{"is_retry_pending": "true"}', "AUTHORIZATION_FAILED", True),  # JSON as a string
    ],
)
def test_juspay_silent_retry_reading(retry_info: object, status: str, pending: bool) -> None:
    payload: dict[str, object] = {}
    if retry_info is not None:
        payload["additional_info"] = {"mandate_retry_info": retry_info}
    assert mandate_retry_pending(payload, status) is pending


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
                    "preferredMethodList": ["PLAIN_CARD"],
                    "beneficiaryDetails": {"type": "CARD"},
                    "additionalInfo": {"isRetriable": "false"},
                    "transactions": [
                        {"responseCode": "INSUFFICIENT_FUNDS", "responseMessage": "x"}
                    ],
                }
            ],
        }
    )
    (fulfillment,) = payout.fulfillments
    assert fulfillment.is_retriable is False
    assert fulfillment.method == "PLAIN_CARD"
    assert fulfillment.beneficiary_type == "CARD"
    assert fulfillment.failure_code == "INSUFFICIENT_FUNDS"
    assert payout.amount == Decimal("100.00")


def test_mandate_list_accepts_the_envelope_and_a_bare_list() -> None:
    item = {"mandate_id": "m1", "status": "ACTIVE", "payment_info": {"payment_method_type": "CARD"}}
    assert parse_mandate_list({"object": "list", "list": [item]})[0].payment_method_type == "CARD"
    assert parse_mandate_list([item])[0].status == "ACTIVE"
    with pytest.raises(InvalidField):
        parse_mandate_list({"list": "nope"})
