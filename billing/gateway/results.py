"""Typed results of Juspay calls, parsed at the edge; the webhook receiver reuses the parsers.

Unknown keys are ignored (the `version` header adds fields over time); known keys are read
loosely (see `loose`); a value that cannot mean anything raises `InvalidField` naming the field.
Statuses stay Juspay's exact strings: mapping them to outcomes is the domain's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from billing.domain.errors import InvalidField
from billing.gateway import loose


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    order_id: str
    txn_id: str | None
    txn_uuid: str | None
    status: str


@dataclass(frozen=True, slots=True)
class MandateInfo:
    mandate_id: str
    status: str | None
    customer_id: str | None
    frequency: str | None
    rule_type: str | None
    rule_value: int | None
    amount_rule: str | None
    max_amount: Decimal | None
    currency: str | None
    start_date: str | None  # raw, as sent: epoch seconds or ISO; the registry interprets it
    end_date: str | None
    payment_method_type: str | None
    mandate_type: str | None


@dataclass(frozen=True, slots=True)
class MandateRetryInfo:
    """`additional_info.mandate_retry_info`: Juspay's silent retry of a mandate debit.

    Keys as Juspay sends them (juspay-api.md §3; nammayatri's `Common.hs` types each `Maybe
    Text`), read loosely: "3" and 3, "true" and true. What they mean for a debit is the
    domain's reading (`outcomes.juspay_still_retrying`).
    """

    is_retried_order: bool | None
    retries_done_count: int | None
    allowed_retry: int | None
    is_business_retried: bool | None
    is_technical_retried: bool | None


@dataclass(frozen=True, slots=True)
class OrderStatusResult:
    order_id: str
    status: str
    status_id: int | None
    amount: Decimal
    currency: str | None
    customer_id: str | None
    mandate_id: str | None
    txn_object_type: str | None
    txn_status: str | None
    error_code: str | None
    error_message: str | None
    retry_info: MandateRetryInfo | None
    date_created: datetime | None
    txn_id: str | None = None
    payment_method_type: str | None = None
    mandate: MandateInfo | None = None


@dataclass(frozen=True, slots=True)
class NotificationResult:
    id: str | None
    object_reference_id: str
    status: str
    mandate_id: str | None
    amount: Decimal | None = None
    txn_date: datetime | None = None


def parse_execution(payload: Mapping[str, object]) -> ExecutionResult:
    return ExecutionResult(
        order_id=loose.required_text(payload.get("order_id"), "order_id"),
        txn_id=loose.text(payload.get("txn_id"), "txn_id"),
        txn_uuid=loose.text(payload.get("txn_uuid"), "txn_uuid"),
        status=loose.required_text(payload.get("status"), "status"),
    )


def parse_mandate(payload: Mapping[str, object], *, prefix: str = "mandate") -> MandateInfo:
    """A mandate from `check_status`, the list API, `content.mandate` or `content.order.mandate`.

    The status key is `mandate_status` in API answers and order blocks, `status` in
    `MANDATE_*` webhooks; the payment method type sits in `payment_info` when present.
    """
    payment_info = loose.mapping(payload.get("payment_info"), f"{prefix}.payment_info") or {}
    status = payload.get("mandate_status") or payload.get("status")
    return MandateInfo(
        mandate_id=loose.required_text(payload.get("mandate_id"), f"{prefix}.mandate_id"),
        status=loose.text(status, f"{prefix}.mandate_status"),
        customer_id=loose.text(payload.get("customer_id"), f"{prefix}.customer_id"),
        frequency=loose.text(payload.get("frequency"), f"{prefix}.frequency"),
        rule_type=loose.text(payload.get("rule_type"), f"{prefix}.rule_type"),
        rule_value=loose.integer(payload.get("rule_value"), f"{prefix}.rule_value"),
        amount_rule=loose.text(payload.get("amount_rule"), f"{prefix}.amount_rule"),
        max_amount=loose.amount(payload.get("max_amount"), f"{prefix}.max_amount"),
        currency=loose.text(payload.get("currency"), f"{prefix}.currency"),
        start_date=loose.text(payload.get("start_date"), f"{prefix}.start_date"),
        end_date=loose.text(payload.get("end_date"), f"{prefix}.end_date"),
        payment_method_type=loose.text(
            payment_info.get("payment_method_type") or payload.get("payment_method_type"),
            f"{prefix}.payment_info.payment_method_type",
        ),
        mandate_type=loose.text(payload.get("mandate_type"), f"{prefix}.mandate_type"),
    )


def parse_order(payload: Mapping[str, object]) -> OrderStatusResult:
    """An order from `GET /orders/{id}` or a webhook's `content.order`."""
    detail = loose.mapping(payload.get("txn_detail"), "txn_detail") or {}
    mandate_block = loose.mapping(payload.get("mandate"), "mandate")
    customer_id = loose.text(payload.get("customer_id"), "customer_id")
    method_type = loose.text(payload.get("payment_method_type"), "payment_method_type")
    mandate = None
    if mandate_block is not None and mandate_block.get("mandate_id"):
        mandate = parse_mandate(mandate_block)
        mandate = replace(
            mandate,
            customer_id=mandate.customer_id or customer_id,
            payment_method_type=mandate.payment_method_type or method_type,
        )
    status = loose.required_text(payload.get("status"), "status")
    error_code = loose.text(payload.get("bank_error_code"), "bank_error_code") or loose.text(
        detail.get("error_code"), "txn_detail.error_code"
    )
    error_message = loose.text(
        payload.get("bank_error_message"), "bank_error_message"
    ) or loose.text(detail.get("error_message"), "txn_detail.error_message")
    return OrderStatusResult(
        order_id=loose.required_text(payload.get("order_id"), "order_id"),
        status=status,
        status_id=loose.integer(payload.get("status_id"), "status_id"),
        amount=loose.required_amount(payload.get("amount"), "amount"),
        currency=loose.text(payload.get("currency"), "currency"),
        customer_id=customer_id,
        mandate_id=mandate.mandate_id if mandate else None,
        txn_object_type=loose.text(detail.get("txn_object_type"), "txn_detail.txn_object_type"),
        txn_status=loose.text(detail.get("status"), "txn_detail.status"),
        error_code=error_code,
        error_message=error_message,
        retry_info=parse_retry_info(payload),
        date_created=loose.instant(payload.get("date_created"), "date_created"),
        txn_id=loose.text(payload.get("txn_id") or detail.get("txn_id"), "txn_id"),
        payment_method_type=method_type,
        mandate=mandate,
    )


def parse_retry_info(payload: Mapping[str, object]) -> MandateRetryInfo | None:
    """`additional_info.mandate_retry_info` of an order, or None when Juspay sent none."""
    info = loose.mapping(payload.get("additional_info"), "additional_info") or {}
    field = "additional_info.mandate_retry_info"
    retry = loose.mapping(info.get("mandate_retry_info"), field)
    if retry is None:
        return None

    # Unreadable values read as absent: this block must never make a whole status unreadable.
    def flag(key: str) -> bool | None:
        try:
            return loose.boolean(retry.get(key), f"{field}.{key}")
        except InvalidField:
            return None

    def count(key: str) -> int | None:
        try:
            return loose.integer(retry.get(key), f"{field}.{key}")
        except InvalidField:
            return None

    return MandateRetryInfo(
        is_retried_order=flag("is_retried_order"),
        retries_done_count=count("retries_done_count"),
        allowed_retry=count("allowed_retry"),
        is_business_retried=flag("is_business_retried"),
        is_technical_retried=flag("is_technical_retried"),
    )


def parse_notification(payload: Mapping[str, object]) -> NotificationResult:
    """A pre-debit notification from the notify / status APIs or `content.notification`."""
    mandate = loose.mapping(payload.get("mandate"), "mandate") or {}
    source = loose.mapping(payload.get("source_info"), "source_info") or {}
    mandate_id = mandate.get("mandate_id") or payload.get("source_object_id")
    return NotificationResult(
        id=loose.text(payload.get("id"), "id"),
        object_reference_id=loose.required_text(
            payload.get("object_reference_id"), "object_reference_id"
        ),
        status=loose.required_text(payload.get("status"), "status"),
        mandate_id=loose.text(mandate_id, "mandate.mandate_id"),
        amount=loose.amount(source.get("amount"), "source_info.amount"),
        txn_date=loose.instant(source.get("txn_date"), "source_info.txn_date"),
    )


def parse_mandate_list(payload: object) -> list[MandateInfo]:
    """`GET /customers/{id}/mandates`: `{"object": "list", "list": [...]}` (a bare list too)."""
    items = payload.get("list") if isinstance(payload, Mapping) else payload
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidField("list", "expected a list of mandates")
    result = []
    for index, item in enumerate(items):
        item_map = loose.mapping(item, f"list[{index}]")
        if item_map is not None:
            result.append(parse_mandate(item_map, prefix=f"list[{index}]"))
    return result
