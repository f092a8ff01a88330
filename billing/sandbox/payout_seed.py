"""Payout orders for the sandbox, from the body Juspay's order create takes (juspay-api.md §6.1;
Juspay's sample `payout-api/order-create-encryp/plain-card.json`):

    {orderId, customerId, amount?, type?, udf1..5?, fulfillments: [{amount,
     preferredMethodList, beneficiaryDetails{type, details}, additionalInfo{isRetriable,
     attemptThreshold, ...}, udf1..5, sandbox?}]}

`sandbox` (ours, per fulfillment) says where the fulfillment stands when the test begins:
`{status: FAILURE (default) | CREATED | PENDING | SUCCESS, responseCode, responseDescription,
responseMessage, id}`: a FAILURE, PENDING or SUCCESS one gets a first transaction in that state on
its first preferred rail; `id` fixes the fulfillment id, which Juspay makes `<order uuid>-f<n>`.
A card number in the details is kept only as `last4ofCard`, as Juspay's create answer shows it.
Anything else is refused with `ValueError` naming the field: an old shape must not slip through.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from billing.sandbox.models import Fulfillment, PayoutOrder, PayoutTxn

ORDER_FIELDS = frozenset(
    {"orderId", "customerId", "customerPhone", "customerEmail", "amount", "type", "fulfillments"}
    | {f"udf{n}" for n in range(1, 6)}
)
FULFILLMENT_FIELDS = frozenset(
    {"amount", "preferredMethodList", "beneficiaryDetails", "additionalInfo", "sandbox"}
    | {f"udf{n}" for n in range(1, 6)}
)
SANDBOX_FIELDS = frozenset(
    {"status", "responseCode", "responseDescription", "responseMessage", "id"}
)
SEED_STATUSES = frozenset({"CREATED", "PENDING", "FAILURE", "SUCCESS"})
# Never kept: the sandbox plays Juspay, which answers with the card masked.
_CARD_SECRETS = frozenset({"cardNumber", "cardToken", "cardSecurityCode", "cardExpiry"})


def seed_amount(value: object, name: str) -> Decimal:
    """An amount a test seeds: > 0 with at most two decimals; `ValueError` names it."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: not an amount") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{name}: expected > 0 with at most 2 decimals")
    return amount.quantize(Decimal("0.01"))


def _unknown(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ValueError(f"{where}{extra[0]}: not a field of Juspay's payout order create")


def _object(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected an object")  # noqa: TRY004 (a 400 to the caller)
    return value


def build_payout(spec: Mapping[str, Any], *, now: datetime) -> PayoutOrder:
    _unknown(spec, ORDER_FIELDS, "")
    order_id, customer_id = spec.get("orderId"), spec.get("customerId")
    if not order_id or not customer_id:
        raise ValueError("orderId and customerId: required")
    juspay_id = uuid.uuid4().hex[:30]
    udfs = {k: str(v) for k, v in spec.items() if k.startswith("udf")}
    payout = PayoutOrder(str(order_id), juspay_id, str(customer_id), now, now, udfs=udfs)
    raw = spec.get("fulfillments")
    if not isinstance(raw, list) or not raw:
        raise ValueError("fulfillments: a non-empty list is required")
    for index, item in enumerate(raw):
        payout.fulfillments.append(
            _fulfillment(payout, _object(item, f"fulfillments[{index}]"), index, now=now)
        )
    if spec.get("amount") is not None and seed_amount(spec["amount"], "amount") != payout.amount:
        raise ValueError("amount: must be the sum of the fulfillments' amounts")
    return payout


def _fulfillment(
    payout: PayoutOrder, item: Mapping[str, Any], index: int, *, now: datetime
) -> Fulfillment:
    where = f"fulfillments[{index}]."
    _unknown(item, FULFILLMENT_FIELDS, where)
    beneficiary = _object(item.get("beneficiaryDetails"), f"{where}beneficiaryDetails")
    kind = beneficiary.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"{where}beneficiaryDetails.type: required")
    details = dict(_object(beneficiary.get("details", {}), f"{where}beneficiaryDetails.details"))
    number = details.get("cardNumber") or details.get("cardToken")
    for secret in _CARD_SECRETS:
        details.pop(secret, None)
    if isinstance(number, str) and len(number.strip()) >= 4:
        details["last4ofCard"] = number.strip()[-4:]
    methods = item.get("preferredMethodList") or []
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"{where}preferredMethodList: expected a list of strings")
    info = dict(_object(item.get("additionalInfo", {}), f"{where}additionalInfo"))
    if "isRetriable" in info and not isinstance(info["isRetriable"], bool):
        raise ValueError(f"{where}additionalInfo.isRetriable: expected a boolean")
    if "attemptThreshold" in info and (
        isinstance(info["attemptThreshold"], bool) or not isinstance(info["attemptThreshold"], int)
    ):
        raise ValueError(f"{where}additionalInfo.attemptThreshold: expected an integer")
    webhook = info.get("webhookDetails")
    if isinstance(webhook, Mapping):  # Juspay's answer leaves the password out
        info["webhookDetails"] = {k: v for k, v in webhook.items() if k != "password"}
    extra = dict(_object(item.get("sandbox", {}), f"{where}sandbox"))
    _unknown(extra, SANDBOX_FIELDS, f"{where}sandbox.")
    status = str(extra.get("status", "FAILURE")).upper()
    if status not in SEED_STATUSES:
        raise ValueError(f"{where}sandbox.status: expected one of {sorted(SEED_STATUSES)}")
    fulfillment = Fulfillment(
        id=str(extra.get("id") or f"{payout.juspay_id}-f{index + 1}"),
        order_id=payout.order_id,
        amount=seed_amount(item.get("amount"), f"{where}amount"),
        beneficiary_type=kind,
        beneficiary_details=details,
        preferred_methods=list(methods),
        additional_info=info,
        created_at=now,
        status=status,
        status_updated_at=now,
        updated_at=now,
        udfs={k: str(v) for k, v in item.items() if k.startswith("udf")},
    )
    if status != "CREATED":
        txn_status = {"PENDING": "INITIATED"}.get(status, status)
        code = extra.get("responseCode", {"FAILURE": "91", "SUCCESS": "00"}.get(status))
        fulfillment.transactions.append(
            PayoutTxn(
                ref=uuid.uuid4().hex[:30],
                id=f"{fulfillment.id}-t1",
                status=txn_status,
                method=fulfillment.rail,
                amount=fulfillment.amount,
                created_at=now,
                updated_at=now,
                response_code=None if code is None else str(code),
                response_message=extra.get("responseMessage", _MESSAGES.get(txn_status)),
                response_description=extra.get(
                    "responseDescription", _DESCRIPTIONS.get(txn_status)
                ),
            )
        )
    return fulfillment


_MESSAGES = {"SUCCESS": "COMPLETED", "FAILURE": "FAILURE"}
_DESCRIPTIONS = {"SUCCESS": "Approved", "FAILURE": "Issuer or switch inoperative"}
