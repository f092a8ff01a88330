"""The receiver's parser, pure: request bytes -> JSON object -> typed envelope, or a `Refusal`.

    400  the body is not UTF-8 JSON, not an object, or nested absurdly deep
    422  a required field is missing or malformed; `field` names it from the envelope down
         (`id`, `event_name`, `date_created`, `content`, `content.order.amount`, ...; payouts:
         `label`, `value` (a status string), `info`, `info.FulfillmentId`, ...)

Types are read loosely, as Juspay sends them (`status_id` 21 or "21", booleans as "true"): the
content of the events billing acts on goes through the gateway's own parsers
(`services.webhook_events.read_content` / `read_payout_content`), the same functions processing
uses later. An event name or payout label billing does not act on needs only a well-formed
envelope: it is stored and acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from billing.domain.errors import InvalidField
from billing.gateway import PayoutEventContent, loose
from billing.services.webhook_events import EventContent, read_content, read_payout_content

ID_MAX = 128  # WebhookEvent.event_id
NAME_MAX = 64  # WebhookEvent.event_name
MAX_DEPTH = 32  # Juspay's events nest about 5 deep; deeper is not an event


class Refusal(Exception):  # noqa: N818 - read as `raise Refusal(422, ...)`
    """A request the receiver answers with a 4xx: nothing is stored."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field

    def body(self) -> dict[str, str]:
        return (
            {"error": self.error}
            if self.field is None
            else {"error": self.error, "field": self.field}
        )

    @classmethod
    def invalid(cls, exc: InvalidField) -> Refusal:
        return cls(422, str(exc), exc.field)


@dataclass(frozen=True, slots=True)
class EcEvent:
    """`POST /webhooks/juspay`: `{id, event_name, date_created, content}`."""

    id: str
    event_name: str
    date_created: datetime
    content: EventContent  # typed for the events billing acts on, empty for the others


@dataclass(frozen=True, slots=True)
class PayoutEvent:
    """`POST /webhooks/juspay/payouts`: `{id, category, label, value, info}` (juspay-api.md
    §6.3): `value` is the new status, `info` the order, fulfillment or transaction."""

    id: str
    category: str  # "INFO" in every sample
    label: str  # ORDER | FULFILLMENT_ORDER | FULFILLMENT_TXN | VALIDATION_V2 | ...
    value: str
    content: PayoutEventContent  # `info` typed for the labels billing acts on

    @property
    def at(self) -> datetime | None:
        return self.content.at


def decode(body: bytes) -> dict[str, object]:
    """The body as a JSON object; `Refusal(400)` otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refusal(400, "body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise Refusal(400, "body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Refusal(400, "body must be a JSON object")
    if _depth(payload) > MAX_DEPTH:
        raise Refusal(400, f"body nests deeper than {MAX_DEPTH} levels")
    return payload


def _depth(value: object) -> int:
    """How deep a decoded JSON value nests, without recursion (it may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if level + 1 > MAX_DEPTH:
                    return level + 1
                stack.append((child, level + 1))
        deepest = max(deepest, level)
    return deepest


def parse_ec(payload: Mapping[str, object]) -> EcEvent:
    """An EC event envelope with its content typed; `Refusal(422)` names the bad field."""
    try:
        event_name = _token(payload, "event_name", NAME_MAX)
        event = EcEvent(
            id=_token(payload, "id", ID_MAX),
            event_name=event_name,
            date_created=_required_instant(payload.get("date_created"), "date_created"),
            content=read_content(event_name, _object(payload, "content")),
        )
    except InvalidField as exc:
        raise Refusal.invalid(exc) from None
    except RecursionError:  # content sent as a JSON string that nests absurdly deep
        raise Refusal(422, "content: nests too deeply", "content") from None
    return event


def parse_payout(payload: Mapping[str, object]) -> PayoutEvent:
    """A payout event envelope with its `info` typed; `Refusal(422)` names the bad field."""
    try:
        label = _token(payload, "label", NAME_MAX)
        value = _token(payload, "value", NAME_MAX)
        event = PayoutEvent(
            id=_token(payload, "id", ID_MAX),
            category=_token(payload, "category", NAME_MAX),
            label=label,
            value=value,
            content=read_payout_content(label, value, _object(payload, "info")),
        )
    except InvalidField as exc:
        raise Refusal.invalid(exc) from None
    except RecursionError:
        raise Refusal(422, "info: nests too deeply", "info") from None
    return event


def _token(payload: Mapping[str, object], name: str, limit: int) -> str:
    """An id or a name: a non-empty printable string (or integer) of at most `limit` chars."""
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int | None):
        raise InvalidField(name, f"expected a string, got {type(value).__name__}")
    text = "" if value is None else str(value).strip()
    if not text:
        raise InvalidField(name, "missing")
    if len(text) > limit:
        raise InvalidField(name, f"longer than {limit} characters")
    if not text.isprintable():  # control characters, lone surrogates: not storable as text
        raise InvalidField(name, "contains unprintable characters")
    return text


def _object(payload: Mapping[str, object], name: str) -> Mapping[str, object]:
    value = loose.mapping(payload.get(name), name)
    if value is None:
        raise InvalidField(name, "missing")
    return value


def _instant(value: object, field: str) -> datetime | None:
    try:
        return loose.instant(value, field)
    except (OverflowError, ValueError) as exc:  # an offset pushing year 1 or 9999 out of range
        if isinstance(exc, InvalidField):
            raise
        raise InvalidField(field, f"out of range: {value!r}") from None


def _required_instant(value: object, field: str) -> datetime:
    instant = _instant(value, field)
    if instant is None:
        raise InvalidField(field, "missing")
    return instant
