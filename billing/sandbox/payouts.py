"""Payout order status and the encrypted Attempt API.

Attempt: body `{payload, kid, sid, format: "compact"}`; kid must be the sandbox's key id and sid
the merchant's; the JWE is decrypted with the sandbox's private key (and its nested RS256
signature verified when a merchant public key is registered); the plaintext must name a
fulfillment of this order that is FAILURE and retriable, with `cardInfo` holding cardNumber +
cardExpiry{month, year} or cardToken. Any miss is 400 `E01`. Accepted: the attempt is recorded,
the fulfillment goes PENDING, and the answer is the text `ACK`; the fulfillment then settles
SUCCESS (payout ledger) or FAILURE (by fault) on the N-th status poll or after a delay.
"""

from __future__ import annotations

import re
from typing import Any

from billing.sandbox import lifecycle
from billing.sandbox.crypto import AttemptRefused
from billing.sandbox.faults import FaultPlan
from billing.sandbox.models import Answer, Attempt, Refusal, new_id, payout_error
from billing.sandbox.shapes import iso, payout_shape
from billing.sandbox.state import SandboxState

_PAN = re.compile(r"^\d{12,19}$")
_MONTH = re.compile(r"^(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^\d{4}$")


def _e01(message: str) -> Refusal:
    return Refusal(payout_error("E01", message, "Invalid request"))


def _check_routing(state: SandboxState, routing_id: str | None, customer_id: str) -> None:
    if state.config.strict_routing and routing_id != customer_id:
        raise _e01("x-routing-id must be the customer id")


def payout_status(state: SandboxState, order_id: str, routing_id: str | None) -> Answer:
    payout = state.payouts.get(order_id)
    if payout is None:
        return payout_error("E404", f"Order {order_id} not found", "Order not found", status=404)
    _check_routing(state, routing_id, payout.customer_id)
    for fulfillment in payout.fulfillments:
        lifecycle.advance_fulfillment(state, payout, fulfillment, polled=True)
    return Answer(200, payout_shape(payout))


def attempt(
    state: SandboxState, order_id: str, body: object, routing_id: str | None, plan: FaultPlan
) -> Answer:
    payout = state.payouts.get(order_id)
    if payout is None:
        raise _e01(f"Invalid orderId {order_id}")
    _check_routing(state, routing_id, payout.customer_id)
    if not isinstance(body, dict):
        raise _e01("Request body must be a JSON object")
    for name in ("payload", "kid", "sid", "format"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise _e01(f"Mandatory field missing: {name}")
    if body["format"] != "compact":
        raise _e01("format: only compact is supported")
    if body["kid"] != state.config.key_id:
        raise _e01("Invalid kid")
    if body["sid"] != state.config.merchant_key_id:
        raise _e01("Invalid sid")
    try:
        opened = state.keys.open(body["payload"])
    except AttemptRefused as exc:
        raise _e01(str(exc)) from None
    if opened.header.get("kid") not in (None, state.config.key_id):
        raise _e01("kid in the JWE header does not match")
    fulfillment_id = opened.plaintext.get("fulfillmentId")
    if not isinstance(fulfillment_id, str) or not fulfillment_id:
        raise _e01("Mandatory field missing: fulfillmentId")
    fulfillment = next((f for f in payout.fulfillments if f.id == fulfillment_id), None)
    if fulfillment is None:
        raise _e01(f"Fulfillment {fulfillment_id} does not belong to order {order_id}")
    _check_card(opened.plaintext.get("cardInfo"))
    if fulfillment.status != "FAILURE" or fulfillment.is_retriable is False:
        raise _e01(f"Fulfillment {fulfillment_id} is not in a retriable state")

    now = state.clock.now()
    state.attempts.append(
        Attempt(
            id=new_id("att_"),
            order_id=order_id,
            fulfillment_id=fulfillment_id,
            at=now,
            header=opened.header,
            kid=body["kid"],
            sid=body["sid"],
            signed=opened.signed,
            payload=body["payload"],
            plaintext=opened.plaintext,
        )
    )
    fulfillment.status = "PENDING"
    state.open_fulfillments[fulfillment.id] = (payout, fulfillment)
    fulfillment.polls = 0
    fulfillment.started_at = now
    fulfillment.settle_polls = plan.pending_polls or state.config.fulfillment_polls
    fulfillment.outcome, fulfillment.outcome_code, fulfillment.outcome_message = (
        ("FAILURE", plan.fail.error_code or "FAILED", plan.fail.error_message or "Declined")
        if plan.fail is not None
        else ("SUCCESS", None, None)
    )
    fulfillment.transactions.append(
        {
            "id": new_id("txn_"),
            "status": "PENDING",
            "fulfillmentMethod": fulfillment.method,
            "amount": float(fulfillment.amount),
            "createdAt": iso(now),
        }
    )
    state.emit_fulfillment(payout, fulfillment)
    return Answer(200, "ACK", text=True)


def _check_card(card: Any) -> None:
    if not isinstance(card, dict):
        raise _e01("Mandatory field missing: cardInfo")
    if card.get("cardToken"):
        return
    number = card.get("cardNumber")
    if not isinstance(number, str) or not number.strip():
        raise _e01("cardInfo must hold cardNumber and cardExpiry, or cardToken")
    if not _PAN.match(re.sub(r"\s", "", number)):
        raise _e01("Invalid cardNumber")
    expiry = card.get("cardExpiry")
    if not isinstance(expiry, dict):
        raise _e01("Mandatory field missing: cardInfo.cardExpiry")
    if not _MONTH.match(str(expiry.get("month", ""))):
        raise _e01("Invalid cardInfo.cardExpiry.month")
    if not _YEAR.match(str(expiry.get("year", ""))):
        raise _e01("Invalid cardInfo.cardExpiry.year")
