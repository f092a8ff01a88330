"""The Juspay client: one method per API, typed results, the error tree of `errors`.

Every call sends `Authorization: Basic base64("<api_key>:")`, `x-merchantid`, `x-routing-id`
(the customer id), `version`, `x-request-id` (ours, uuid4 hex, echoed in every error and log
line) and its content type: EC calls are `application/x-www-form-urlencoded` with dotted keys,
payout calls JSON (see `wire`). Nothing here retries: a resend is the caller's decision, taken
from the error's class (`Unavailable` may be resent; `OutcomeUnknown` is reconciled first).

Payout shapes and their readings are in `payouts` (Juspay's sample payloads, `juspay-api.md` §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from billing.domain.money import format_amount, parse_amount
from billing.gateway.cards import CardNumber, CardToken, card_info
from billing.gateway.errors import failure
from billing.gateway.payouts import PayoutOrderResult, parse_payout_order
from billing.gateway.results import (
    ExecutionResult,
    MandateInfo,
    NotificationResult,
    OrderStatusResult,
    parse_execution,
    parse_mandate,
    parse_mandate_list,
    parse_notification,
    parse_order,
)
from billing.gateway.wire import Wire, json_any, json_object, parsed

if TYPE_CHECKING:
    from billing.gateway.jwe import AttemptEncrypter

DEFAULT_ATTEMPT_PATH = "/payout/merchant/v1/orders/{order_id}/attempt"


def _seg(value: str) -> str:
    return quote(value, safe="")


def _epoch(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime cannot be sent to Juspay: give it a time zone")
    return str(int(moment.timestamp()))


def _day_epoch(day: date) -> str:
    """A calendar day as epoch seconds at 00:00 UTC *(interpretation)*.

    Juspay wants pause/resume dates as UTC epochs. Midnight UTC is 05:30 in India, so the
    instant names the same calendar day whether Juspay reads it in UTC or in IST.
    """
    if isinstance(day, datetime):
        return _epoch(day)
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()))


class JuspayClient:
    """One per process (after fork); thread-safe; holds a keep-alive connection pool."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        merchant_id: str,
        api_version: str = "2021-03-25",
        connect_timeout: float = 5,
        read_timeout: float = 30,
        attempt_path: str = DEFAULT_ATTEMPT_PATH,
        attempt_encrypter: AttemptEncrypter | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
    ) -> None:
        self.merchant_id = merchant_id
        self.base_url = base_url.rstrip("/")
        self._attempt_path = attempt_path
        self._encrypter = attempt_encrypter
        self._wire = Wire(
            base_url=self.base_url,
            api_key=api_key,
            merchant_id=merchant_id,
            api_version=api_version,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            transport=transport,
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        return f"JuspayClient(base_url={self.base_url!r}, merchant_id={self.merchant_id!r})"

    def close(self) -> None:
        self._wire.close()

    def __enter__(self) -> JuspayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- mandate execution and orders ------------------------------------------------------

    def execute_mandate(
        self,
        *,
        order_id: str,
        amount: Decimal,
        customer_id: str,
        mandate_id: str,
        currency: str = "INR",
        execution_date: datetime | None = None,
        notification_id: str | None = None,
    ) -> ExecutionResult:
        """Create and charge order `order_id` on the mandate (`POST /txns`).

        Not idempotent by itself: Juspay refuses a reused order_id (DUPLICATE_ORDER_ID) and
        does not charge it twice. On `OutcomeUnknown`, ask `order_status` before anything else.
        """
        form = {
            "order.order_id": order_id,
            "order.amount": format_amount(parse_amount(amount, field="order.amount")),
            "order.currency": currency,
            "order.customer_id": customer_id,
            "merchant_id": self.merchant_id,
            "mandate_id": mandate_id,
            "format": "json",
        }
        if execution_date is not None:
            form["mandate.execution_date"] = _epoch(execution_date)
        if notification_id:
            form["mandate.notification_id"] = notification_id
        reply = self._wire.send("POST", "/txns", customer_id=customer_id, form=form)
        return parsed(parse_execution, json_object(reply), reply)

    def order_status(self, order_id: str, *, customer_id: str) -> OrderStatusResult:
        """`GET /orders/{id}`; `OrderNotFound` when Juspay has no such order."""
        path = f"/orders/{_seg(order_id)}"
        reply = self._wire.send("GET", path, customer_id=customer_id, ec=True, order_lookup=True)
        payload = json_object(reply)
        if payload.get("status") == "NOT_FOUND":
            raise failure(reply.response, request_id=reply.request_id, order_lookup=True)
        return parsed(parse_order, payload, reply)

    # -- pre-debit notifications -----------------------------------------------------------

    def send_pre_debit_notification(
        self,
        *,
        mandate_id: str,
        customer_id: str,
        object_reference_id: str,
        amount: Decimal,
        txn_date: datetime,
        description: str,
    ) -> NotificationResult:
        form = {
            "command": "pre_debit_notify",
            "object_reference_id": object_reference_id,
            "description": description,
            "source_info.amount": format_amount(parse_amount(amount, field="source_info.amount")),
            "source_info.txn_date": _epoch(txn_date),
        }
        reply = self._wire.send(
            "POST", f"/mandates/{_seg(mandate_id)}", customer_id=customer_id, form=form
        )
        return parsed(parse_notification, json_object(reply), reply)

    def notification_status(
        self, object_reference_id: str, *, customer_id: str
    ) -> NotificationResult:
        path = f"/notifications/{_seg(object_reference_id)}"
        reply = self._wire.send("GET", path, customer_id=customer_id, ec=True)
        return parsed(parse_notification, json_object(reply), reply)

    # -- mandates --------------------------------------------------------------------------

    def mandate_status(self, mandate_id: str, *, customer_id: str) -> MandateInfo:
        return self._mandate_command(mandate_id, customer_id, {"command": "check_status"})

    def pause_mandate(
        self,
        mandate_id: str,
        *,
        customer_id: str,
        pause_start_date: date,
        pause_end_date: date | None = None,
    ) -> MandateInfo:
        form = {"command": "pause", "pause_start_date": _day_epoch(pause_start_date)}
        if pause_end_date is not None:
            form["pause_end_date"] = _day_epoch(pause_end_date)
        return self._mandate_command(mandate_id, customer_id, form)

    def resume_mandate(
        self, mandate_id: str, *, customer_id: str, resume_date: date
    ) -> MandateInfo:
        form = {"command": "resume", "resume_date": _day_epoch(resume_date)}
        return self._mandate_command(mandate_id, customer_id, form)

    def revoke_mandate(self, mandate_id: str, *, customer_id: str) -> MandateInfo:
        return self._mandate_command(mandate_id, customer_id, {"command": "revoke"})

    def cancel_recurring_transaction(
        self, mandate_id: str, *, customer_id: str, order_id: str
    ) -> None:
        """Stop a scheduled execution; Juspay refuses it later than 30 min before execution."""
        form = {"command": "cancel_recurring_transaction", "order_id": order_id}
        self._wire.send("POST", f"/mandates/{_seg(mandate_id)}", customer_id=customer_id, form=form)

    def customer_mandates(self, customer_id: str) -> list[MandateInfo]:
        path = f"/customers/{_seg(customer_id)}/mandates"
        reply = self._wire.send("GET", path, customer_id=customer_id, ec=True)
        return parsed(parse_mandate_list, json_any(reply), reply)

    def _mandate_command(
        self, mandate_id: str, customer_id: str, form: dict[str, str]
    ) -> MandateInfo:
        path = f"/mandates/{_seg(mandate_id)}"
        reply = self._wire.send("POST", path, customer_id=customer_id, form=form)
        payload = json_object(reply)
        nested = payload.get("mandate")
        if "mandate_id" not in payload and isinstance(nested, Mapping):
            payload = nested
        return parsed(parse_mandate, payload, reply)

    # -- payouts ---------------------------------------------------------------------------

    def payout_order_status(self, order_id: str, *, customer_id: str) -> PayoutOrderResult:
        path = f"/payout/merchant/v1/orders/{_seg(order_id)}"
        reply = self._wire.send(
            "GET",
            path,
            customer_id=customer_id,
            params={"expand": "fulfillment,payment"},
            order_lookup=True,
        )
        return parsed(parse_payout_order, json_object(reply), reply)

    def attempt_payout(
        self,
        order_id: str,
        *,
        customer_id: str,
        fulfillment_id: str,
        card: CardNumber | CardToken,
        sender_details: Mapping[str, object] | None = None,
    ) -> None:
        """Retry a failed PLAIN_CARD fulfillment through the encrypted Attempt API (`ACK`)."""
        if self._encrypter is None:
            raise RuntimeError("attempt_payout needs an AttemptEncrypter (Juspay public key)")
        plaintext = {"fulfillmentId": fulfillment_id, "cardInfo": card_info(card, sender_details)}
        body = self._encrypter.body(plaintext)
        path = self._attempt_path.format(order_id=_seg(order_id), orderId=_seg(order_id))
        reply = self._wire.send("POST", path, customer_id=customer_id, body=body)
        if reply.response.text.strip().strip('"').upper() != "ACK":
            raise failure(reply.response, request_id=reply.request_id, detail="expected ACK")


__all__ = [
    "DEFAULT_ATTEMPT_PATH",
    "CardNumber",
    "CardToken",
    "ExecutionResult",
    "JuspayClient",
    "MandateInfo",
    "NotificationResult",
    "OrderStatusResult",
    "PayoutOrderResult",
    "parse_mandate",
    "parse_notification",
    "parse_order",
    "parse_payout_order",
]
