"""The HTTP side of the client: one httpx.Client, the headers every call carries, logging, and
the hand-over of every failure to `errors.failure`.

Logging (`billing.gateway`): one line per call (httpx's own line is silenced, telemetry/logs.py)
with method, path, status and duration; the request id is bound to the log scope, so the
caller's later lines about the same debit carry it too. Never the API key, the Authorization
header, a body, card data or a JWE plaintext. Metrics: every call is counted by endpoint (the
path with its ids as `{id}`) and status, with its latency.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import httpx

from billing.domain.errors import InvalidField
from billing.gateway.errors import failure
from billing.telemetry import logs, metrics

_log = logging.getLogger("billing.gateway")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_T = TypeVar("_T")
_P = TypeVar("_P")
# The segment after these is an id: `/orders/ABC` is counted as `/orders/{id}`.
_ID_AFTER = frozenset({"orders", "mandates", "notifications", "customers", "txns"})


def endpoint(method: str, path: str) -> str:
    """`GET /orders/{id}`: a path template, so metrics have one series per endpoint."""
    parts = path.split("?", 1)[0].split("/")
    for index in range(1, len(parts)):
        if parts[index - 1] in _ID_AFTER and parts[index]:
            parts[index] = "{id}"
    return f"{method} {'/'.join(parts)}"


@dataclass(frozen=True, slots=True)
class Reply:
    response: httpx.Response
    request_id: str
    order_lookup: bool


class Wire:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        merchant_id: str,
        api_version: str,
        connect_timeout: float,
        read_timeout: float,
        transport: httpx.BaseTransport | None,
        max_connections: int,
    ) -> None:
        basic = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30,
        )
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            # retries=0: httpx must never resend a request on its own.
            transport=transport or httpx.HTTPTransport(limits=limits, retries=0),
            headers={
                "Authorization": f"Basic {basic}",
                "x-merchantid": merchant_id,
                "version": api_version,
                "Accept": JSON,
            },
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        customer_id: str,
        form: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
        ec: bool = False,
        order_lookup: bool = False,
    ) -> Reply:
        """Send once; a 2xx comes back as a `Reply`, anything else raises a `GatewayError`.

        `ec` marks EC calls (form content type even without a body); `order_lookup` marks
        order-status calls, where 404 means the order does not exist.
        """
        request_id = uuid.uuid4().hex
        logs.bind(request_id=request_id)
        headers = {
            "x-routing-id": customer_id,
            "x-request-id": request_id,
            "Content-Type": FORM if (form is not None or ec) else JSON,
        }
        started = time.perf_counter()
        try:
            response = self._http.request(
                method, path, data=form, json=body, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            seconds = time.perf_counter() - started
            elapsed = seconds * 1000
            metrics.gateway_call(endpoint(method, path), type(exc).__name__, seconds)
            _log.warning(
                "juspay %s %s failed: %s after %.1f ms request_id=%s",
                method,
                path,
                type(exc).__name__,
                elapsed,
                request_id,
            )
            raise failure(exc, request_id=request_id, order_lookup=order_lookup) from exc
        seconds = time.perf_counter() - started
        elapsed = seconds * 1000
        metrics.gateway_call(endpoint(method, path), str(response.status_code), seconds)
        _log.info(
            "juspay %s %s -> %s in %.1f ms request_id=%s",
            method,
            path,
            response.status_code,
            elapsed,
            request_id,
        )
        if not response.is_success:
            raise failure(response, request_id=request_id, order_lookup=order_lookup)
        return Reply(response, request_id, order_lookup)


def json_object(reply: Reply) -> Mapping[str, object]:
    """The 2xx body as a JSON object, or `MalformedResponse`."""
    try:
        payload = reply.response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise failure(reply.response, request_id=reply.request_id, detail="expected a JSON object")
    return payload


def json_any(reply: Reply) -> object:
    try:
        payload: object = reply.response.json()
    except ValueError:
        raise failure(reply.response, request_id=reply.request_id, detail="not JSON") from None
    return payload


def parsed(parser: Callable[[_P], _T], payload: _P, reply: Reply) -> _T:
    """Run a result parser; a field it cannot read makes the answer a `MalformedResponse`."""
    try:
        return parser(payload)
    except InvalidField as exc:
        raise failure(
            reply.response,
            request_id=reply.request_id,
            order_lookup=reply.order_lookup,
            detail=f"unexpected response: {exc}",
        ) from None
