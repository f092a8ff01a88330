"""Juspay-shaped JSON for the sandbox's records, after the samples in Juspay's documents."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.sandbox.models import (
    STATUS_IDS,
    Fulfillment,
    Mandate,
    Notification,
    Order,
    PayoutOrder,
    PayoutTxn,
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def number(amount: Decimal) -> float:
    """Order amounts travel as JSON numbers ("Double" in Juspay's order table)."""
    return float(amount)


def mandate_block(
    mandate: Mandate, *, full: bool = False, status_key: str = "mandate_status"
) -> dict[str, Any]:
    """The `mandate{...}` block of an order; `full` adds what mandate APIs and webhooks carry."""
    block: dict[str, Any] = {
        "mandate_id": mandate.mandate_id,
        "mandate_token": mandate.mandate_token,
        status_key: mandate.status,
        "mandate_type": mandate.mandate_type,
        "max_amount": number(mandate.max_amount),
        "amount_rule": mandate.amount_rule,
        "frequency": mandate.frequency,
        "currency": mandate.currency,
        "block_fund": False,
        "revokable_by_customer": True,
    }
    if mandate.rule_type is not None:
        block["rule_type"] = mandate.rule_type
    if mandate.rule_value is not None:
        block["rule_value"] = mandate.rule_value
    if mandate.start_date is not None:
        block["start_date"] = str(mandate.start_date)
    if mandate.end_date is not None:
        block["end_date"] = str(mandate.end_date)
    if full:
        block["customer_id"] = mandate.customer_id
        block["payment_info"] = {
            "payment_method_type": mandate.payment_method_type,
            "payment_method": mandate.payment_method or mandate.payment_method_type,
        }
        if mandate.activated_at is not None:
            block["activated_at"] = block["last_activated_at"] = iso(mandate.activated_at)
        if mandate.pause_start is not None:
            block["pause_start_date"] = epoch(mandate.pause_start)
        if mandate.pause_end is not None:
            block["pause_end_date"] = epoch(mandate.pause_end)
    return block


def order_shape(order: Order, mandate: Mandate, merchant_id: str) -> dict[str, Any]:
    txn_id = f"{merchant_id}-{order.order_id}-{order.txns}"  # the latest transaction
    code = order.bank_error_code or ""
    message = order.bank_error_message or ""
    detail = {
        "txn_id": txn_id,
        "txn_uuid": order.txn_uuid,
        "order_id": order.order_id,
        "txn_object_type": "EMANDATE_PAYMENT",
        "status": order.status,
        "txn_amount": number(order.amount),
        "net_amount": number(order.amount),
        "currency": order.currency,
        "source_object": "MANDATE",
        "source_object_id": order.mandate_id,
        "gateway": "SANDBOX",
        "gateway_id": 100,
        "express_checkout": False,
        "redirect": False,
        "error_code": code,
        "error_message": message,
        "created": iso(order.created_at),
    }
    digest = hashlib.sha1(order.order_id.encode(), usedforsecurity=False).hexdigest()
    shape: dict[str, Any] = {
        "id": f"ordeu_{digest[:24]}",
        "order_id": order.order_id,
        "merchant_id": merchant_id,
        "customer_id": order.customer_id,
        "status": order.status,
        "status_id": STATUS_IDS.get(order.status),
        "amount": number(order.amount),
        "effective_amount": number(order.amount),
        "currency": order.currency,
        "date_created": iso(order.created_at),
        "refunded": False,
        "amount_refunded": 0,
        "payment_method_type": order.payment_method_type,
        "payment_method": mandate.payment_method or order.payment_method_type,
        "txn_id": txn_id,
        "txn_uuid": order.txn_uuid,
        "bank_error_code": code,
        "bank_error_message": message,
        "gateway_id": 100,
        "mandate": mandate_block(mandate),
        "txn_detail": detail,
    }
    if order.retry_info is not None:
        shape["additional_info"] = {"mandate_retry_info": dict(order.retry_info)}
    return shape


def notification_shape(notification: Notification) -> dict[str, Any]:
    updated = notification.updated_at or notification.created_at
    return {
        "id": notification.id,
        "object": "notification",
        "object_reference_id": notification.object_reference_id,
        "source_object": "MANDATE",
        "source_object_id": notification.mandate_id,
        "provider_name": "SANDBOX",
        "notification_type": "SMS",
        "description": notification.description,
        "status": notification.status,
        "date_created": epoch(notification.created_at),
        "last_updated": epoch(updated),
        "mandate": {"mandate_id": notification.mandate_id},
        "source_info": {
            "amount": str(notification.amount),
            "txn_date": str(notification.txn_date),
        },
        "provider_response": {"provider_ref_id": f"SBX{notification.id}"},
    }


def transaction_shape(txn: PayoutTxn) -> dict[str, Any]:
    """One entry of `transactions[]` (Juspay's sample `payout-api/order-status/response.json`)."""
    shape: dict[str, Any] = {
        "transactionRef": txn.ref,
        "gatewayRefId": txn.ref,
        "status": txn.status,
        "fulfillmentMethod": txn.method,
        "amount": number(txn.amount),
        "createdAt": iso(txn.created_at),
        "updatedAt": iso(txn.updated_at),
        "timeStamp": iso(txn.updated_at),
        "txnResponse": {
            "status": "PENDING" if txn.status == "INITIATED" else txn.status,
            "requestId": txn.ref,
            "amount": number(txn.amount),
        },
    }
    for key, value in (
        ("responseCode", txn.response_code),
        ("responseMessage", txn.response_message),
        ("responseDescription", txn.response_description),
    ):
        if value is not None:
            shape[key] = value
    return shape


def fulfillment_shape(
    fulfillment: Fulfillment, customer_id: str, *, transactions: bool = True
) -> dict[str, Any]:
    """A fulfillment as the order status lists it (and, without transactions, as the
    FULFILLMENT_ORDER webhook's `info` carries it: Juspay's sample `webhooks/pending.json`)."""
    updated = fulfillment.updated_at or fulfillment.created_at
    shape: dict[str, Any] = {
        "id": fulfillment.id,
        "status": fulfillment.status,
        "statusUpdatedAt": iso(fulfillment.status_updated_at or updated),
        "updatedAt": iso(updated),
        "createdAt": iso(fulfillment.created_at),
        "updatedBy": "DEFAULT",
        "type": "ORDER",
        "amount": number(fulfillment.amount),
        "merchantCustomerId": customer_id,
        "preferredMethodList": list(fulfillment.preferred_methods),
        "fulfillmentMethodList": (
            [] if fulfillment.status == "CREATED" else list(fulfillment.preferred_methods)
        ),
        "beneficiaryDetails": {
            "type": fulfillment.beneficiary_type,
            "details": dict(fulfillment.beneficiary_details),
        },
        "additionalInfo": dict(fulfillment.additional_info),
        **fulfillment.udfs,
    }
    if transactions:
        shape["transactions"] = [transaction_shape(t) for t in fulfillment.transactions]
    return shape


def payout_shape(payout: PayoutOrder) -> dict[str, Any]:
    """The order status answer (Juspay's sample `payout-api/order-status/response.json`)."""
    return {
        "orderId": payout.order_id,
        "status": payout.status,
        "type": "FULFILL_ONLY",
        "amount": number(payout.amount),
        "customerId": payout.customer_id,
        "createdAt": iso(payout.created_at),
        "updatedAt": iso(payout.updated_at),
        **payout.udfs,
        "payments": [],
        "refunds": [],
        "fulfillments": [fulfillment_shape(f, payout.customer_id) for f in payout.fulfillments],
    }


def payout_order_info(payout: PayoutOrder) -> dict[str, Any]:
    """`info` of an ORDER webhook (Juspay's sample `webhooks/order-success.json`)."""
    return {
        "id": payout.juspay_id,
        "merchantOrderId": payout.order_id,
        "merchantCustomerId": payout.customer_id,
        "orderType": "FULFILL_ONLY",
        "status": payout.status,
        "amount": number(payout.amount),
        "createdAt": iso(payout.created_at),
        "updatedAt": iso(payout.updated_at),
    }


def payout_txn_info(fulfillment: Fulfillment, txn: PayoutTxn) -> dict[str, Any]:
    """`info` of a FULFILLMENT_TXN webhook (Juspay's sample `webhooks/attempted.json`)."""
    info = transaction_shape(txn)
    info.pop("timeStamp")
    info.update(id=txn.id, attempted=txn.attempted, FulfillmentId=fulfillment.id)
    return info


def ec_event(event_name: str, now: datetime, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_V2_{uuid.uuid4().hex[:30]}",
        "event_name": event_name,
        "date_created": iso(now),
        "content": content,
    }


def payout_event(label: str, value: str, info: dict[str, Any]) -> dict[str, Any]:
    """Juspay's payout webhook envelope (juspay-api.md §6.3; its samples under `webhooks/`)."""
    return {"id": uuid.uuid4().hex[:30], "category": "INFO", "label": label, "value": value,
            "info": info}  # fmt: skip
