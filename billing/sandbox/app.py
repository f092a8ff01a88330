"""The sandbox's Starlette app: Juspay's routes, its checks, faults, and the control API mount.

Every Juspay call: Basic auth with the configured API key and a matching `x-merchantid`
(401 `{"status":"error","error_code":"access_denied"}`; payout routes 401 `E02`), the content
type Juspay expects (form for EC POSTs, JSON for payout POSTs), then faults, then the operation
under the state lock. The request log keeps method, path, query, status and headers other than
Authorization (no bodies) for tests to check what reached the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.sandbox import ec, mandates, payouts
from billing.sandbox.control import control_routes
from billing.sandbox.faults import FaultPlan
from billing.sandbox.models import Answer, Refusal, ec_error, payout_error
from billing.sandbox.shapes import iso
from billing.sandbox.state import SandboxState

_DROP = "sandbox.drop"
_FORM = "application/x-www-form-urlencoded"
_EC_DENIED = Answer(
    401,
    {"status": "error", "error_code": "access_denied", "error_message": "Invalid Authentication"},
)
_PAYOUT_DENIED = payout_error(
    "E02", "Invalid API key passed in request.", "Invalid API Key", status=401
)


class SandboxMiddleware:
    """Logs Juspay requests (without bodies or Authorization) and drops connections on demand.

    A handler asks for a drop by setting `scope["sandbox.drop"]`; the response is then never
    sent and the TCP connection is aborted, so the client sees the server vanish mid-request.
    """

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sandbox"):
            await self.app(scope, receive, send)
            return
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k.lower() != b"authorization"
            },
            "at": iso(self.state.clock.now()),
            "status": None,
        }
        self.state.requests.append(entry)

        async def guarded_send(message: Message) -> None:
            if scope.get(_DROP):
                if message["type"] == "http.response.start":
                    entry["status"] = "dropped"
                    await _abort(send)
                return
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, guarded_send)


async def _abort(send: Send) -> None:
    """Close the client's connection without a response (uvicorn: abort its transport)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: connection dropped")
    transport.abort()
    for _ in range(3):  # let the server see the connection lost before the app returns
        await asyncio.sleep(0)


def _render(answer: Answer) -> Response:
    if answer.text:
        return PlainTextResponse(str(answer.body), status_code=answer.status)
    return JSONResponse(answer.body, status_code=answer.status)


def _authorized(request: Request, state: SandboxState) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username = base64.b64decode(token, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return False
    key_ok = hmac.compare_digest(username.encode(), state.config.api_key.encode())
    merchant = request.headers.get("x-merchantid", "")
    return key_ok and hmac.compare_digest(merchant.encode(), state.config.merchant_id.encode())


async def _serve(
    request: Request,
    endpoint: str,
    ids: Iterable[str | None],
    operation: Callable[[FaultPlan], Answer],
    *,
    payout: bool = False,
) -> Response:
    state: SandboxState = request.app.state.sandbox
    if not _authorized(request, state):
        return _render(_PAYOUT_DENIED if payout else _EC_DENIED)
    plan = state.faults.take(endpoint, ids)
    if plan.latency:
        await asyncio.sleep(plan.latency)
    if plan.drop_before:
        return _drop(request)
    error = plan.http_error
    if error is not None and not error.after:
        return _server_error(error.status, payout=payout)
    with state.lock:
        try:
            answer = operation(plan)
        except Refusal as refusal:
            answer = refusal.answer
    if error is not None:
        return _server_error(error.status, payout=payout)
    if plan.latency_after:
        await asyncio.sleep(plan.latency_after)
    if plan.drop_after:
        return _drop(request)
    if plan.timeout_after is not None:
        await asyncio.sleep(plan.timeout_after)
        return _drop(request)
    return _render(answer)


def _drop(request: Request) -> Response:
    request.scope[_DROP] = True
    return Response(status_code=204)


def _server_error(status: int, *, payout: bool) -> Response:
    if payout:
        return _render(
            payout_error("E500", "Internal error", "Something went wrong", status=status)
        )
    return _render(ec_error("INTERNAL_ERROR", "Internal error", status=status, word="error"))


async def _form(request: Request) -> dict[str, str] | Answer:
    if not request.headers.get("content-type", "").startswith(_FORM):
        return ec_error("INVALID_CONTENT_TYPE", f"Content-Type must be {_FORM}")
    # parse_qsl rather than request.form(): no python-multipart needed for urlencoded bodies
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _routing(request: Request) -> str | None:
    return request.headers.get("x-routing-id")


async def txns(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Answer):
        return _render(form)
    state: SandboxState = request.app.state.sandbox
    ids = [form.get("order.order_id"), form.get("mandate_id"), form.get("order.customer_id")]
    return await _serve(
        request, "txns", ids, lambda plan: ec.execute(state, form, _routing(request), plan)
    )


async def order_status(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    order_id = request.path_params["order_id"]
    return await _serve(
        request,
        "order_status",
        [order_id],
        lambda plan: ec.order_status(state, order_id, _routing(request)),
    )


async def mandate_command(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Answer):
        return _render(form)
    state: SandboxState = request.app.state.sandbox
    mandate_id = request.path_params["mandate_id"]
    ids = [mandate_id, form.get("object_reference_id"), form.get("order_id")]
    return await _serve(
        request,
        "mandates",
        ids,
        lambda plan: mandates.mandate_command(state, mandate_id, form, _routing(request), plan),
    )


async def notification_status(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    reference = request.path_params["reference"]
    return await _serve(
        request,
        "notification_status",
        [reference],
        lambda plan: mandates.notification_status(state, reference, _routing(request)),
    )


async def customer_mandates(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    customer_id = request.path_params["customer_id"]
    return await _serve(
        request,
        "customer_mandates",
        [customer_id],
        lambda plan: mandates.customer_mandates(state, customer_id, _routing(request)),
    )


async def payout_status(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    order_id = request.path_params["order_id"]
    return await _serve(
        request,
        "payout_status",
        [order_id],
        lambda plan: payouts.payout_status(state, order_id, _routing(request)),
        payout=True,
    )


async def attempt(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    order_id = request.path_params["order_id"]
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _render(payout_error("E01", "Content-Type must be application/json", "Invalid"))
    try:
        body: object = json.loads(await request.body())
    except ValueError:
        body = None
    fulfillment_id = None  # encrypted: unknown until decrypted, so faults key on the order
    return await _serve(
        request,
        "attempt",
        [order_id, fulfillment_id],
        lambda plan: payouts.attempt(state, order_id, body, _routing(request), plan),
        payout=True,
    )


def create_app(state: SandboxState, *, tick_seconds: float = 1.0) -> ASGIApp:
    """The ASGI app; its lifespan runs the webhook thread and a clock tick every second.

    `SandboxMiddleware` wraps the Starlette app from outside, so that it holds the server's own
    `send` (and through it the connection) when a fault asks to drop the connection.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.webhooks.start()

        async def ticker() -> None:
            while True:
                await asyncio.sleep(tick_seconds)
                state.tick()

        task = asyncio.create_task(ticker())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            state.webhooks.stop()

    routes = [
        Route("/txns", txns, methods=["POST"]),
        Route("/orders/{order_id}", order_status, methods=["GET"]),
        Route("/mandates/{mandate_id}", mandate_command, methods=["POST"]),
        Route("/notifications/{reference}", notification_status, methods=["GET"]),
        Route("/customers/{customer_id}/mandates", customer_mandates, methods=["GET"]),
        Route("/payout/merchant/v1/orders/{order_id}", payout_status, methods=["GET"]),
        Route("/payout/merchant/v1/orders/{order_id}/attempt", attempt, methods=["POST"]),
        Route("/payout/merchant/v1/{order_id}/attempt", attempt, methods=["POST"]),
        Mount("/sandbox", routes=control_routes()),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    return SandboxMiddleware(app, state)
