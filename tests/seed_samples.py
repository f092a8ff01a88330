"""Juspay's webhook samples, verbatim from shared/seeds (003: the webhooks page), as bodies.

Shared by the gateway's parsing tests and the receiver's tests, which post exactly these
bytes. Where a test needs a variation (the MANDATE_* samples all share one `id`;
ORDER_SUCCEEDED's end_date is masked as "160***10"), it changes a copy from `sample()` and
says so. tests/unit/test_webhook_samples.py pins the copies to the seed when it is present.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

NOTIFICATION_SUCCEEDED = rb"""
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
}"""

NOTIFICATION_FAILED = rb"""
{
"id": "evt_V2_bc933a28ee5948be9f2939caac09d9",
"date_created": "2020-07-24T10:42:25Z",
"event_name": "NOTIFICATION_FAILED",
"content": {
"notification": {
"status": "FAILURE",
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
}"""

MANDATE_CREATED = rb"""
{
"id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb",
"event_name": "MANDATE_CREATED",
"date_created": "2021-12-18T10:15:35Z",
"content": {
"mandate": {
"status": "CREATED",
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
}"""

MANDATE_ACTIVATED = rb"""
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
}"""

MANDATE_FAILED = rb"""
{
"id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb",
"event_name": "MANDATE_FAILED",
"date_created": "2021-12-18T10:15:35Z",
"content": {
"mandate": {
"status": "FAILURE",
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
}"""

MANDATE_PAUSED = rb"""
{
"id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb",
"event_name": "MANDATE_PAUSED",
"date_created": "2021-12-18T10:15:35Z",
"content": {
"mandate": {
"status": "PAUSED",
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
}"""

MANDATE_EXPIRED = rb"""
{
"id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb",
"event_name": "MANDATE_EXPIRED",
"date_created": "2021-12-18T10:15:35Z",
"content": {
"mandate": {
"status": "EXPIRED",
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
}"""

MANDATE_REVOKED = rb"""
{
"id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb",
"event_name": "MANDATE_REVOKED",
"date_created": "2021-12-18T10:15:35Z",
"content": {
"mandate": {
"status": "REVOKED",
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
}"""

ORDER_SUCCEEDED = rb"""
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
}"""

ORDER_FAILED = rb"""
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
}"""

SAMPLES: dict[str, bytes] = {
    "NOTIFICATION_SUCCEEDED": NOTIFICATION_SUCCEEDED.strip(),
    "NOTIFICATION_FAILED": NOTIFICATION_FAILED.strip(),
    "MANDATE_CREATED": MANDATE_CREATED.strip(),
    "MANDATE_ACTIVATED": MANDATE_ACTIVATED.strip(),
    "MANDATE_FAILED": MANDATE_FAILED.strip(),
    "MANDATE_PAUSED": MANDATE_PAUSED.strip(),
    "MANDATE_EXPIRED": MANDATE_EXPIRED.strip(),
    "MANDATE_REVOKED": MANDATE_REVOKED.strip(),
    "ORDER_SUCCEEDED": ORDER_SUCCEEDED.strip(),
    "ORDER_FAILED": ORDER_FAILED.strip(),
}


def sample(name: str) -> dict[str, Any]:
    """A fresh decoded copy of one sample, free to mutate."""
    return copy.deepcopy(json.loads(SAMPLES[name]))


def seed_samples() -> dict[str, Any]:
    """Every JSON object in the webhooks seed, by event name (the seed holds one of each)."""
    [page] = SEEDS.glob("003_*.txt")
    text, decoder, found, at = page.read_text(), json.JSONDecoder(), {}, 0
    while (start := text.find('\n{\n"id"', at)) >= 0:
        value, at = decoder.raw_decode(text, start + 1)
        found[value["event_name"]] = value
    return found
