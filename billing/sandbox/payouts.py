"""Payout order status and the encrypted Attempt API, as Juspay documents them (juspay-api.md
§6.2-6.5, Juspay's samples under `payout-api/` and `webhooks/`).

Attempt: body `{payload, kid, sid, format: "compact"}`; kid must be the sandbox's key id and sid
the merchant's; the payload is opened as Juspay's encryption guide has it built (a JWE, signed
after encryption when the merchant signs: see crypto). The plaintext must name a fulfillment of
this order that is FAILURE and not `isRetriable: false`, with `cardInfo` holding cardNumber +
cardExpiry{month, year} or cardToken. A miss is 400 `E01` (`E03` for a signature). Accepted,
the answer is the text `ACK` and Juspay takes the attempt up: a new transaction (INITIATED,
`attempted: true`) on the fulfillment's rail, the fulfillment PENDING, webhooks for the
transaction, the fulfillment and the order. The transaction settles SUCCESS (a payout in the
ledger) or FAILURE (by fault) on the N-th status read or after a delay.

Fault `queued` (endpoint attempt, `seconds`): Juspay ACKs the attempt but takes it up only
`seconds` later (sandbox clock); until then the order shows what it showed before, the old
FAILURE included. Every accepted attempt is processed: two accepted attempts can pay twice, and
the payout ledger shows it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from billing.sandbox import lifecycle
from billing.sandbox.crypto import AttemptRefused
from billing.sandbox.faults import FaultPlan
from billing.sandbox.models import (
    Answer,
    Attempt,
    QueuedAttempt,
    Refusal,
    new_id,
    payout_error,
)
from billing.sandbox.shapes import payout_shape
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
        return payout_error("E09", f"Order {order_id} not found", "Order not found", status=404)
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
        raise Refusal(payout_error(exc.code, str(exc), "Invalid request")) from None
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
    queued = QueuedAttempt(
        due=now + timedelta(seconds=plan.queued or 0),
        outcome="FAILURE" if plan.fail is not None else "SUCCESS",
        outcome_code=(plan.fail.error_code or "91") if plan.fail is not None else "00",
        outcome_description=(
            (plan.fail.error_message or "Issuer or switch inoperative")
            if plan.fail is not None
            else "Approved"
        ),
        settle_polls=plan.pending_polls or state.config.fulfillment_polls,
    )
    fulfillment.queued.append(queued)
    state.open_fulfillments[fulfillment.id] = (payout, fulfillment)
    lifecycle.advance_fulfillment(state, payout, fulfillment, polled=False)
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
