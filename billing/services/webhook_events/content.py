"""What a stored event says, read the same way at the edge (the receiver's 422) and when it is
processed: the EC event names and payout labels billing acts on, and their typed content.
Pure: no IO."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from billing.domain.errors import InvalidField
from billing.domain.mandate import MandateStatus
from billing.gateway import PayoutEventContent, loose, parse_payout_event
from billing.gateway.results import (
    MandateInfo,
    NotificationResult,
    OrderStatusResult,
    parse_mandate,
    parse_notification,
    parse_order,
)
from billing.services import ServiceError

EC, PAYOUT = "ec", "payout"  # WebhookEvent.kind

MANDATE_EVENTS: Mapping[str, MandateStatus] = {
    "MANDATE_CREATED": MandateStatus.CREATED,
    "MANDATE_ACTIVATED": MandateStatus.ACTIVE,
    "MANDATE_PAUSED": MandateStatus.PAUSED,
    "MANDATE_REVOKED": MandateStatus.REVOKED,
    "MANDATE_EXPIRED": MandateStatus.EXPIRED,
    "MANDATE_FAILED": MandateStatus.FAILURE,
}
ORDER_EVENTS = frozenset({"ORDER_SUCCEEDED", "ORDER_FAILED"})
NOTIFICATION_EVENTS = frozenset({"NOTIFICATION_SUCCEEDED", "NOTIFICATION_FAILED"})
# Payout webhook labels (juspay-api.md §6.3), each applied by the payouts service like a status
# read; VALIDATION_V2 (a beneficiary validation) is stored and answered there as not ours.
PAYOUT_LABELS = frozenset({"ORDER", "FULFILLMENT_ORDER", "FULFILLMENT_TXN", "VALIDATION_V2"})


class UnusableEventError(ServiceError):
    """The event's content cannot be used (e.g. terms that do not validate): processing the same
    bytes again cannot succeed, so the event is POISONED at once, for a person to look at."""


@dataclass(frozen=True, slots=True)
class EventContent:
    """The typed `content` of a handled EC event (None for the parts it does not carry)."""

    mandate: MandateInfo | None = None  # content.mandate of MANDATE_*
    order: OrderStatusResult | None = None  # content.order of ORDER_*
    notification: NotificationResult | None = None  # content.notification of NOTIFICATION_*


def read_content(event_name: str, content: Mapping[str, object]) -> EventContent:
    """Type an EC event's content with the gateway's parsers; `InvalidField` names the field
    from the envelope down (`content.order.amount`). Other event names need nothing."""
    if event_name in MANDATE_EVENTS:
        read = lambda block: parse_mandate(block, prefix="content.mandate")  # noqa: E731
        return EventContent(mandate=_section(content, "mandate", read))
    if event_name in ORDER_EVENTS:
        return EventContent(order=_section(content, "order", parse_order))
    if event_name in NOTIFICATION_EVENTS:
        return EventContent(notification=_section(content, "notification", parse_notification))
    return EventContent()


def read_payout_content(label: str, value: str, info: Mapping[str, object]) -> PayoutEventContent:
    """Type a payout event's `info` for its label with the gateway's parser; `InvalidField`
    names the field from the envelope down (`info.FulfillmentId`)."""
    try:
        return parse_payout_event(label.upper(), value, info)
    except (ArithmeticError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidField):
            raise
        raise InvalidField("info", "unreadable value") from None


T = TypeVar("T")


def _section(
    content: Mapping[str, object], name: str, parse: Callable[[Mapping[str, object]], T]
) -> T:
    prefix = f"content.{name}"
    block = loose.mapping(content.get(name), prefix)
    if block is None:
        raise InvalidField(prefix, "missing")
    try:
        return parse(block)
    except InvalidField as exc:
        field = exc.field if exc.field.startswith(prefix) else f"{prefix}.{exc.field}"
        raise InvalidField(field, exc.reason) from None
    except (ArithmeticError, TypeError, ValueError):
        # e.g. an amount like 1e999 that Decimal cannot quantize: unreadable, not a crash.
        raise InvalidField(prefix, "unreadable value") from None


def decode_body(body: str) -> Mapping[str, object]:
    """A stored body back to its JSON object (it was one when it was stored)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise UnusableEventError("stored body is not JSON") from None
    if not isinstance(payload, Mapping):
        raise UnusableEventError("stored body is not a JSON object")
    return payload


def content_of(event_name: str, body: str) -> EventContent:
    """The typed content of a stored EC event; `UnusableEventError` if it cannot be read."""
    try:
        content = loose.mapping(decode_body(body).get("content"), "content") or {}
        return read_content(event_name, content)
    except InvalidField as exc:
        raise UnusableEventError(str(exc)) from None
