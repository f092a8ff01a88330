"""Errors of the Juspay gateway, and the one function that decides which one a failure is.

    GatewayError
    ├── Rejected                 a definite answer: 4xx or a business refusal; do not resend as is
    │   ├── OrderNotFound        404 / NOT_FOUND on an order status: the order does not exist,
    │   │                        the one answer that allows re-sending the same order_id
    │   └── AuthenticationFailed 401: wrong API key or merchant id
    ├── Unavailable              never reached Juspay (connect error or timeout, pool timeout,
    │                            429, 408): safe to resend
    └── OutcomeUnknown           sent, then no definite answer (read/write timeout, connection
        │                        dropped, 5xx): reconcile by order status, never resend blindly
        └── MalformedResponse    a 2xx whose body cannot be parsed

Every error carries Juspay's code and message (when there is one) and our request id; never a
request body (it may hold card data) and never the API key. `failure()` is the single mapping
from an httpx exception or an unwelcome response to this tree; a table test pins it.
"""

from __future__ import annotations

import json

import httpx

from billing.domain.cards import scrub

_MAX_MESSAGE = 300
# Juspay's `status` words that say "an error" without saying which; the specific code is then
# in `error_code`. Any other `status` on an error body (DUPLICATE_ORDER_ID, NOT_FOUND) is the code.
_GENERIC_STATUSES = frozenset(
    {"error", "invalid request", "invalid_request_error", "failure", "failed"}
)


class GatewayError(Exception):
    """Base of every error the Juspay client raises."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        # Juspay's message is text we do not control: a card number echoed in it is masked
        # before it can reach a log line or a stored error column.
        self.message = scrub(message, luhn=False)[:_MAX_MESSAGE]
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.insert(0, f"[{self.code}]")
        if self.http_status is not None:
            parts.append(f"(HTTP {self.http_status})")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class Rejected(GatewayError):  # noqa: N818 (the tree's names, no Error suffix)
    """Juspay answered and refused: the request as sent will never succeed."""


class OrderNotFound(Rejected):
    """The order does not exist at Juspay: reconciliation may re-send the same order_id."""


class AuthenticationFailed(Rejected):
    """401: the API key (or the merchant id it belongs to) was refused."""


class Unavailable(GatewayError):  # noqa: N818 (the tree's names, no Error suffix)
    """The request never reached Juspay (or was refused unprocessed): safe to resend."""


class OutcomeUnknown(GatewayError):  # noqa: N818 (the tree's names, no Error suffix)
    """The request may have been processed: reconcile by order status, never resend blindly."""


class MalformedResponse(OutcomeUnknown):
    """A 2xx answer whose body could not be parsed: it happened, but we cannot read what."""


_UNAVAILABLE_EXCEPTIONS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,  # refused, DNS, TLS handshake: nothing was sent
    httpx.ConnectTimeout,
    httpx.PoolTimeout,  # waited for a pooled connection; nothing was sent
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,  # we could not even form the request
)


def failure(
    source: httpx.Response | httpx.HTTPError,
    *,
    request_id: str,
    order_lookup: bool = False,
    detail: str | None = None,
) -> GatewayError:
    """Map a transport exception or a response that is not a usable 2xx to the error tree.

    A 2xx response comes here only when its body could not be used: it is `MalformedResponse`,
    or `OrderNotFound` when an order lookup answered 200 with status NOT_FOUND. `order_lookup`
    marks the order-status calls, where 404 means "this order does not exist".
    """
    if isinstance(source, httpx.HTTPError):
        kind = type(source).__name__
        if isinstance(source, _UNAVAILABLE_EXCEPTIONS):
            return Unavailable(f"Juspay not reached: {kind}", request_id=request_id)
        # ReadTimeout, WriteTimeout, RemoteProtocolError, ReadError, WriteError and anything
        # else raised once the request may have left: the order may exist.
        return OutcomeUnknown(f"no answer from Juspay: {kind}", request_id=request_id)

    status = source.status_code
    code, message = _code_and_message(source)

    def make(kind: type[GatewayError], default: str) -> GatewayError:
        return kind(message or default, code=code, http_status=status, request_id=request_id)

    if 200 <= status < 300:
        if order_lookup and code == "NOT_FOUND":
            return make(OrderNotFound, "order not found")
        return MalformedResponse(
            detail or "unreadable response body",
            code=code,
            http_status=status,
            request_id=request_id,
        )
    if status == 401:
        return make(AuthenticationFailed, "authentication failed")
    if order_lookup and (status == 404 or (code == "NOT_FOUND" and 400 <= status < 500)):
        return make(OrderNotFound, "order not found")
    if status in (408, 429):
        # The server refused before processing (request timeout, rate limit): resend later.
        return make(Unavailable, f"Juspay refused to process now (HTTP {status})")
    if 400 <= status < 500:
        return make(Rejected, f"rejected with HTTP {status}")
    # 5xx, and any 1xx/3xx we never asked for: the request may have been acted on.
    return make(OutcomeUnknown, f"Juspay answered HTTP {status}")


def _code_and_message(response: httpx.Response) -> tuple[str | None, str | None]:
    """Juspay's error code and message from an EC or payout error body, if it has them."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(body, dict):
        return None, None

    def text(key: str) -> str | None:
        value = body.get(key)
        return str(value) if value not in (None, "") and not isinstance(value, dict) else None

    status = text("status")
    specific_status = status if status and status.lower() not in _GENERIC_STATUSES else None
    # Juspay's catalogue code (INVALID_ACTION, RESOURCE_NOT_FOUND, ...) when the body has one:
    # its `error_code` beside it is often a phrase ("Mandate not found"), juspay-api.md §8.
    info = body.get("error_info")
    catalogue = info.get("code") if isinstance(info, dict) else None
    catalogue_code = str(catalogue) if isinstance(catalogue, str) and catalogue else None
    code = text("errorCode") or specific_status or catalogue_code or text("error_code") or status
    message = (
        text("errorMessage") or text("error_message") or text("userMessage") or text("message")
    )
    return code, message
