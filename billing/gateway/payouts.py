"""Payout results as Juspay shapes them (`juspay-api.md` §6.2, §6.3), parsed at the edge.

Order status (`GET /payout/merchant/v1/orders/{orderId}?expand=fulfillment,...`):
`{orderId, status, amount, customerId, createdAt, updatedAt, fulfillments[{id, status,
statusUpdatedAt, updatedAt, amount, preferredMethodList, fulfillmentMethodList,
beneficiaryDetails{type, details}, additionalInfo{isRetriable, attemptThreshold, ...},
transactions[{transactionRef, status, fulfillmentMethod, responseCode, responseMessage,
responseDescription, amount, createdAt, updatedAt, ...}]}]}`.

Payout webhooks: `{id, category, label, value, info}`; `value` is the new status (a string) and
`info` the object: the order summary for `ORDER` (`{id: Juspay's uuid, merchantOrderId,
merchantCustomerId, status, amount, createdAt, updatedAt}`), the fulfillment for
`FULFILLMENT_ORDER`, the transaction plus `FulfillmentId` for `FULFILLMENT_TXN`; `VALIDATION_V2`
is a beneficiary validation, which billing does not track.

Two readings are ours *(interpretation)*: a fulfillment is PLAIN_CARD when its
`beneficiaryDetails.type` is (the method lists and a transaction's `fulfillmentMethod` name the
rail: `DUMMY_VISADIRECT`, `YESBANK_IMPS`, ...); and a fulfillment's failure code is its latest
transaction's `responseCode` (latest by `createdAt`: Juspay's own sample lists an older
transaction after a newer one), its message that transaction's `responseDescription`, else
`responseMessage`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from billing.domain.errors import InvalidField
from billing.gateway import loose

ORDER, FULFILLMENT_ORDER, FULFILLMENT_TXN, VALIDATION_V2 = (
    "ORDER",
    "FULFILLMENT_ORDER",
    "FULFILLMENT_TXN",
    "VALIDATION_V2",
)
PAYOUT_LABELS = frozenset({ORDER, FULFILLMENT_ORDER, FULFILLMENT_TXN, VALIDATION_V2})

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PayoutTransaction:
    """One try of a fulfillment at its rail (an attempt makes one)."""

    ref: str  # transactionRef (else the webhook's id)
    status: str  # INITIATED | SUCCESS | FAILURE | REVERSED | CONFLICTED | MANUAL_REVIEW ...
    rail: str | None  # fulfillmentMethod
    response_code: str | None
    response_message: str | None
    amount: Decimal | None
    created_at: datetime | None  # Juspay's clock
    updated_at: datetime | None
    fulfillment_id: str | None = None  # FulfillmentId, in FULFILLMENT_TXN webhooks


@dataclass(frozen=True, slots=True)
class FulfillmentResult:
    id: str
    status: str
    amount: Decimal | None
    beneficiary_type: str | None  # beneficiaryDetails.type: PLAIN_CARD, CARD, ACCOUNT_IFSC ...
    rail: str | None  # the latest transaction's fulfillmentMethod, else the method lists'
    is_retriable: bool | None
    attempt_threshold: int | None  # additionalInfo.attemptThreshold (minutes)
    status_at: datetime | None  # statusUpdatedAt, else updatedAt (Juspay's clock)
    transactions: tuple[PayoutTransaction, ...] | None  # None: the reading did not list them

    @property
    def latest_transaction(self) -> PayoutTransaction | None:
        return latest(self.transactions or ())

    @property
    def failure_code(self) -> str | None:
        txn = self.latest_transaction
        return None if txn is None else txn.response_code

    @property
    def failure_message(self) -> str | None:
        txn = self.latest_transaction
        return None if txn is None else txn.response_message


@dataclass(frozen=True, slots=True)
class PayoutOrderResult:
    order_id: str
    status: str
    amount: Decimal | None
    customer_id: str | None
    updated_at: datetime | None
    fulfillments: tuple[FulfillmentResult, ...]


@dataclass(frozen=True, slots=True)
class PayoutOrderSummary:
    """`info` of an ORDER webhook: the order without its fulfillments."""

    juspay_id: str | None
    order_id: str  # merchantOrderId
    customer_id: str | None
    status: str
    amount: Decimal | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class PayoutEventContent:
    """A payout webhook's `value` and its typed `info` (None for what its label does not carry)."""

    label: str
    status: str  # `value`: the new status
    at: datetime | None  # when it happened, by Juspay's clock (info's updatedAt / createdAt)
    order: PayoutOrderSummary | None = None
    fulfillment: FulfillmentResult | None = None
    transaction: PayoutTransaction | None = None


def latest(transactions: Sequence[PayoutTransaction]) -> PayoutTransaction | None:
    """The newest transaction by `createdAt`; among equal or missing dates, the later listed."""
    if not transactions:
        return None
    order = sorted(range(len(transactions)), key=lambda i: (_when(transactions[i]), i))
    return transactions[order[-1]]


def _when(txn: PayoutTransaction) -> datetime:
    return txn.created_at or _EARLIEST


def _first(value: object, field: str) -> str | None:
    """The first entry of a method list (`preferredMethodList`, `fulfillmentMethodList`)."""
    if value is None or value == "":
        return None
    if not isinstance(value, list):
        raise InvalidField(field, "expected a list")
    return loose.text(value[0], f"{field}[0]") if value else None


def parse_payout_transaction(
    payload: Mapping[str, object], *, prefix: str, webhook: bool = False
) -> PayoutTransaction:
    """A transaction from `transactions[]`, or a FULFILLMENT_TXN webhook's `info` (which adds
    `id` and `FulfillmentId`, required there)."""
    ref = payload.get("transactionRef") or payload.get("id")
    message = payload.get("responseDescription") or payload.get("responseMessage")
    fulfillment_id = None
    if webhook:
        field = f"{prefix}.FulfillmentId"
        fulfillment_id = loose.required_text(payload.get("FulfillmentId"), field)
    return PayoutTransaction(
        ref=loose.required_text(ref, f"{prefix}.transactionRef"),
        status=loose.required_text(payload.get("status"), f"{prefix}.status"),
        rail=loose.text(payload.get("fulfillmentMethod"), f"{prefix}.fulfillmentMethod"),
        response_code=loose.text(payload.get("responseCode"), f"{prefix}.responseCode"),
        response_message=loose.text(message, f"{prefix}.responseMessage"),
        amount=loose.amount(payload.get("amount"), f"{prefix}.amount"),
        created_at=loose.instant(payload.get("createdAt"), f"{prefix}.createdAt"),
        updated_at=loose.instant(payload.get("updatedAt"), f"{prefix}.updatedAt"),
        fulfillment_id=fulfillment_id,
    )


def parse_fulfillment(
    payload: Mapping[str, object], *, prefix: str, status: str | None = None
) -> FulfillmentResult:
    """A fulfillment from an order status or a FULFILLMENT_ORDER webhook's `info` (whose status
    is the event's `value`, passed as `status`)."""
    beneficiary = loose.mapping(payload.get("beneficiaryDetails"), f"{prefix}.beneficiaryDetails")
    info = loose.mapping(payload.get("additionalInfo"), f"{prefix}.additionalInfo") or {}
    raw = payload.get("transactions")
    transactions: tuple[PayoutTransaction, ...] | None = None
    if raw is not None:
        if not isinstance(raw, list):
            raise InvalidField(f"{prefix}.transactions", "expected a list")
        items = []
        for index, item in enumerate(raw):
            where = f"{prefix}.transactions[{index}]"
            item_map = loose.mapping(item, where)
            if item_map is not None:
                items.append(parse_payout_transaction(item_map, prefix=where))
        transactions = tuple(items)
    newest = latest(transactions or ())
    rail = (
        (newest.rail if newest is not None else None)
        or _first(payload.get("fulfillmentMethodList"), f"{prefix}.fulfillmentMethodList")
        or _first(payload.get("preferredMethodList"), f"{prefix}.preferredMethodList")
    )
    threshold = loose.integer(
        info.get("attemptThreshold"), f"{prefix}.additionalInfo.attemptThreshold"
    )
    if threshold is not None and threshold < 0:
        raise InvalidField(f"{prefix}.additionalInfo.attemptThreshold", "must not be negative")
    status_at = payload.get("statusUpdatedAt") or payload.get("updatedAt")
    return FulfillmentResult(
        id=loose.required_text(payload.get("id"), f"{prefix}.id"),
        status=status or loose.required_text(payload.get("status"), f"{prefix}.status"),
        amount=loose.amount(payload.get("amount"), f"{prefix}.amount"),
        beneficiary_type=loose.text(
            (beneficiary or {}).get("type"), f"{prefix}.beneficiaryDetails.type"
        ),
        rail=rail,
        is_retriable=loose.boolean(info.get("isRetriable"), f"{prefix}.additionalInfo.isRetriable"),
        attempt_threshold=threshold,
        status_at=loose.instant(status_at, f"{prefix}.statusUpdatedAt"),
        transactions=transactions,
    )


def parse_payout_order(payload: Mapping[str, object]) -> PayoutOrderResult:
    """A payout order as the order status API returns it."""
    raw = payload.get("fulfillments") or []
    if not isinstance(raw, list):
        raise InvalidField("fulfillments", "expected a list")
    fulfillments = []
    for index, item in enumerate(raw):
        item_map = loose.mapping(item, f"fulfillments[{index}]")
        if item_map is not None:
            fulfillments.append(parse_fulfillment(item_map, prefix=f"fulfillments[{index}]"))
    return PayoutOrderResult(
        order_id=loose.required_text(payload.get("orderId"), "orderId"),
        status=loose.required_text(payload.get("status"), "status"),
        amount=loose.amount(payload.get("amount"), "amount"),
        customer_id=loose.text(payload.get("customerId"), "customerId"),
        updated_at=loose.instant(payload.get("updatedAt"), "updatedAt"),
        fulfillments=tuple(fulfillments),
    )


def parse_order_summary(
    payload: Mapping[str, object], *, prefix: str, status: str
) -> PayoutOrderSummary:
    return PayoutOrderSummary(
        juspay_id=loose.text(payload.get("id"), f"{prefix}.id"),
        order_id=loose.required_text(payload.get("merchantOrderId"), f"{prefix}.merchantOrderId"),
        customer_id=loose.text(payload.get("merchantCustomerId"), f"{prefix}.merchantCustomerId"),
        status=status,
        amount=loose.amount(payload.get("amount"), f"{prefix}.amount"),
        updated_at=loose.instant(payload.get("updatedAt"), f"{prefix}.updatedAt"),
    )


def parse_payout_event(label: str, value: str, info: Mapping[str, object]) -> PayoutEventContent:
    """Type a payout webhook's `info` for its `label`; `InvalidField` names the field from the
    envelope down (`info.FulfillmentId`). Labels billing does not act on need nothing."""
    at = loose.instant(info.get("updatedAt") or info.get("createdAt"), "info.updatedAt")
    content = PayoutEventContent(label=label, status=value, at=at)
    if label == ORDER:
        order = parse_order_summary(info, prefix="info", status=value)
        return PayoutEventContent(label, value, at, order=order)
    if label == FULFILLMENT_ORDER:
        fulfillment = parse_fulfillment(info, prefix="info", status=value)
        when = fulfillment.status_at or at
        return PayoutEventContent(label, value, when, fulfillment=fulfillment)
    if label == FULFILLMENT_TXN:
        txn = parse_payout_transaction(info, prefix="info", webhook=True)
        return PayoutEventContent(label, value, at, transaction=_with_status(txn, value))
    return content


def _with_status(txn: PayoutTransaction, status: str) -> PayoutTransaction:
    """The event's `value` is the transaction's new status (SPEC §7)."""
    return txn if txn.status == status else replace(txn, status=status)
