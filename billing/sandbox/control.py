"""The control API under /sandbox/ (no Juspay auth): seed, inspect, inject faults, move time.

Routes (JSON in and out unless said):
  GET  /sandbox/health                      {"ok": true}
  POST /sandbox/reset                       forget records, ledgers, faults, clock, switches
  GET|POST /sandbox/config                  settle_polls, settle_seconds, notification_polls,
                                            notification_seconds, fulfillment_polls,
                                            fulfillment_seconds, strict_routing, api_key, ...
  POST /sandbox/mandates                    {mandate_id, customer_id, status, max_amount,
                                            amount_rule, payment_method_type, frequency,
                                            rule_type, rule_value, currency, start_date,
                                            end_date} or a list of them -> 201 {"mandates"}
  GET  /sandbox/mandates[/{id}]
  POST /sandbox/mandates/{id}/status        {"status": "REVOKED", "webhook": true}: a
                                            customer/bank change, emits MANDATE_<...> unless
                                            "webhook" is false (no event reaches the merchant)
  GET  /sandbox/orders[/{id}]               Juspay's order shape plus the sandbox's internals
  POST /sandbox/orders/{id}/settle          {"status": "CHARGED" | ..., "error_code",
                                            "error_message"}
  POST /sandbox/orders/{id}/retry           {"then": "CHARGED" | ..., "polls": 2, "seconds":
                                            settle_seconds (null: by polls only), "error_code",
                                            "error_message"}: Juspay takes a failed order up
                                            again (a new transaction, PENDING_VBV, no event)
  GET  /sandbox/notifications[/{ref}]       POST /sandbox/notifications/{ref}/settle {"status"}
  GET  /sandbox/ledger                      {"entries": [{order_id, mandate_id, customer_id,
                                            amount, currency, at}], "count", "total"}
  GET  /sandbox/payout-ledger               {"entries": [{order_id, fulfillment_id,
                                            transaction_ref, amount, at}]}: one per payout paid
  POST /sandbox/payouts                     the body of Juspay's payout order create, each
                                            fulfillment with an optional `sandbox` {status,
                                            responseCode, responseDescription, id}: see
                                            payout_seed -> 201, the order status answer
  GET  /sandbox/payouts/{orderId}
  GET  /sandbox/attempts                    recorded attempts WITH the decrypted plaintext
  POST|GET|DELETE /sandbox/faults           see faults.py for the fault spec (or a list)
  GET|POST /sandbox/clock                   {"now": ISO} | {"advance_seconds": n} | {"real": true}
  POST /sandbox/tick                        settle what is due now
  GET|DELETE /sandbox/requests              recent Juspay requests, no bodies, no Authorization
  GET  /sandbox/stats                       {"faults": {"timeout_after@txns": n, ...},
                                            "duplicates_refused": n}: since the last reset
  GET|POST /sandbox/webhooks                {url, payout_url, username, password, enabled,
                                            duplicate, hold}; GET adds emitted, delivered,
                                            failures, held
  POST /sandbox/webhooks/release            {"reverse": true} delivers held events
  GET  /sandbox/keys/juspay-public.pem      (and juspay-private.pem: this is a test double)
  POST|DELETE /sandbox/keys/merchant-public.pem   PEM body: require and verify RS256 signatures
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from billing.sandbox import lifecycle
from billing.sandbox.faults import Fault
from billing.sandbox.shapes import iso, mandate_block, notification_shape, order_shape, payout_shape
from billing.sandbox.state import SandboxConfig, SandboxState

_MANDATE_EVENTS = {
    "CREATED": "MANDATE_CREATED",
    "ACTIVE": "MANDATE_ACTIVATED",
    "PAUSED": "MANDATE_PAUSED",
    "REVOKED": "MANDATE_REVOKED",
    "EXPIRED": "MANDATE_EXPIRED",
    "FAILURE": "MANDATE_FAILED",
}


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return await request.json() if raw.strip() else {}


def _order_view(state: SandboxState, order_id: str) -> dict[str, Any] | None:
    order = state.orders.get(order_id)
    if order is None:
        return None
    return {
        "order": order_shape(order, state.mandates[order.mandate_id], state.config.merchant_id),
        "polls": order.polls,
        "settle_polls": order.settle_polls,
        "settle_at": None if order.settle_at is None else iso(order.settle_at),
        "execution_at": None if order.execution_at is None else iso(order.execution_at),
        "notification_id": order.notification_id,
        "pdn_reference": order.pdn_reference,
    }


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"reset": True})


async def config(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        changes = await _body(request)
        names = {f.name for f in fields(SandboxConfig)}
        with state.lock:
            for name, value in changes.items():
                if name not in names:
                    return _bad(f"{name}: not a sandbox setting")
                setattr(state.config, name, value)
    view = asdict(state.config)
    view.pop("api_key")
    return JSONResponse(view)


async def mandates(request: Request) -> Response:
    state = _state(request)
    if request.method == "GET":
        with state.lock:
            items = [mandate_block(m, full=True) for m in state.mandates.values()]
        return JSONResponse({"mandates": items})
    spec = await _body(request)
    try:
        seeded = [state.seed_mandate(s) for s in (spec if isinstance(spec, list) else [spec])]
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return JSONResponse({"mandates": [mandate_block(m, full=True) for m in seeded]}, 201)


async def mandate(request: Request) -> Response:
    state = _state(request)
    spec = await _body(request) if request.method == "POST" else {}
    with state.lock:
        found = state.mandates.get(request.path_params["mandate_id"])
        if found is None:
            return _bad("no such mandate", 404)
        if request.method == "POST":
            status = str(spec.get("status", "")).upper()
            if status not in _MANDATE_EVENTS:
                return _bad(f"status: expected one of {sorted(_MANDATE_EVENTS)}")
            found.status = status
            state.mandates_changed()
            if spec.get("webhook", True) is not False:
                state.emit_mandate(found, _MANDATE_EVENTS[status])
        return JSONResponse(mandate_block(found, full=True))


async def orders(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse({"orders": [_order_view(state, o) for o in state.orders]})


async def order(request: Request) -> Response:
    state = _state(request)
    order_id = request.path_params["order_id"]
    spec = await _body(request) if request.method == "POST" else {}
    with state.lock:
        found = state.orders.get(order_id)
        if found is None:
            return _bad("no such order", 404)
        if request.method == "POST" and request.url.path.endswith("/retry"):
            try:
                seconds = spec.get("seconds", state.config.settle_seconds)
                lifecycle.retry_order(
                    state,
                    found,
                    then=str(spec.get("then", "CHARGED")),
                    polls=int(spec.get("polls", 2)),
                    settle_at=None if seconds is None else state.deadline(float(seconds)),
                    error_code=spec.get("error_code"),
                    error_message=spec.get("error_message"),
                )
            except (TypeError, ValueError) as exc:
                return _bad(str(exc))
        elif request.method == "POST":
            lifecycle.settle(
                state,
                found,
                str(spec.get("status", "CHARGED")),
                spec.get("error_code"),
                spec.get("error_message"),
            )
        return JSONResponse(_order_view(state, order_id))


async def notifications(request: Request) -> Response:
    state = _state(request)
    reference = request.path_params.get("reference")
    spec = await _body(request) if request.method == "POST" else {}
    with state.lock:
        if reference is None:
            items = [notification_shape(n) for n in state.notifications.values()]
            return JSONResponse({"notifications": items})
        found = state.notifications.get(reference)
        if found is None:
            return _bad("no such notification", 404)
        if request.method == "POST":
            found.outcome = str(spec.get("status", "SUCCESS"))
            found.settle_polls = 0
            lifecycle.advance_notification(state, found, polled=False)
        return JSONResponse(notification_shape(found))


def _ledger_view(entries: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum((Decimal(e["amount"]) for e in entries), Decimal("0.00"))
    return {"entries": entries, "count": len(entries), "total": str(total)}


async def ledger(request: Request) -> Response:
    return JSONResponse(_ledger_view(_state(request).charges()))


async def payout_ledger(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse(_ledger_view([dict(e) for e in state.payout_ledger]))


async def payouts(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        try:
            payout = state.seed_payout(await _body(request))
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        with state.lock:
            return JSONResponse(payout_shape(payout), 201)
    with state.lock:
        found = state.payouts.get(request.path_params["order_id"])
        return _bad("no such payout", 404) if found is None else JSONResponse(payout_shape(found))


async def attempts(request: Request) -> Response:
    return JSONResponse({"attempts": _state(request).attempt_views()})


async def faults(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        spec = await _body(request)
        try:
            made = [Fault.from_spec(s) for s in (spec if isinstance(spec, list) else [spec])]
        except (ValueError, TypeError, AttributeError) as exc:
            return _bad(str(exc))
        added = [state.faults.add(fault).as_dict() for fault in made]
        return JSONResponse(added if isinstance(spec, list) else added[0], 201)
    if request.method == "DELETE":
        state.faults.clear()
    return JSONResponse({"faults": state.faults.active()})


async def clock(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        spec = await _body(request)
        try:
            if spec.get("real"):
                state.clock.real()
            if "now" in spec:
                state.clock.set(datetime.fromisoformat(str(spec["now"])))
            if "advance_seconds" in spec:
                state.clock.advance(timedelta(seconds=float(spec["advance_seconds"])))
        except ValueError as exc:
            return _bad(str(exc))
    return JSONResponse({"now": iso(state.clock.now()), "frozen": state.clock.frozen})


async def tick(request: Request) -> Response:
    lifecycle.tick(_state(request))
    return JSONResponse({"now": iso(_state(request).clock.now())})


async def requests(request: Request) -> Response:
    state = _state(request)
    if request.method == "DELETE":
        state.requests.clear()
    return JSONResponse({"requests": list(state.requests)})


async def stats(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        refused = state.duplicates_refused
    return JSONResponse({"faults": state.faults.used(), "duplicates_refused": refused})


async def webhooks(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        try:
            state.webhooks.configure(**(await _body(request)))
        except ValueError as exc:
            return _bad(str(exc))
    return JSONResponse(state.webhooks.snapshot())


async def release(request: Request) -> Response:
    reverse = bool((await _body(request)).get("reverse", True))
    return JSONResponse({"released": _state(request).webhooks.release(reverse=reverse)})


async def keys(request: Request) -> Response:
    state, name = _state(request), request.path_params["name"]
    if name == "juspay-public.pem":
        return PlainTextResponse(
            state.keys.public_pem.decode(), media_type="application/x-pem-file"
        )
    if name == "juspay-private.pem":
        return PlainTextResponse(
            state.keys.private_pem.decode(), media_type="application/x-pem-file"
        )
    if name == "merchant-public.pem" and request.method in ("POST", "DELETE"):
        try:
            pem = None if request.method == "DELETE" else await request.body()
            state.keys.set_merchant_public(pem)
        except (ValueError, TypeError) as exc:
            return _bad(f"not a PEM public key: {type(exc).__name__}")
        return JSONResponse({"merchant_public_key": pem is not None})
    return _bad("no such key", 404)


def control_routes() -> list[BaseRoute]:
    return [
        Route("/health", health),
        Route("/reset", reset, methods=["POST"]),
        Route("/config", config, methods=["GET", "POST"]),
        Route("/mandates", mandates, methods=["GET", "POST"]),
        Route("/mandates/{mandate_id}", mandate, methods=["GET"]),
        Route("/mandates/{mandate_id}/status", mandate, methods=["POST"]),
        Route("/orders", orders),
        Route("/orders/{order_id}", order, methods=["GET"]),
        Route("/orders/{order_id}/settle", order, methods=["POST"]),
        Route("/orders/{order_id}/retry", order, methods=["POST"]),
        Route("/notifications", notifications),
        Route("/notifications/{reference}", notifications, methods=["GET"]),
        Route("/notifications/{reference}/settle", notifications, methods=["POST"]),
        Route("/ledger", ledger),
        Route("/payout-ledger", payout_ledger),
        Route("/payouts", payouts, methods=["POST"]),
        Route("/payouts/{order_id}", payouts, methods=["GET"]),
        Route("/attempts", attempts),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/tick", tick, methods=["POST"]),
        Route("/requests", requests, methods=["GET", "DELETE"]),
        Route("/stats", stats),
        Route("/webhooks", webhooks, methods=["GET", "POST"]),
        Route("/webhooks/release", release, methods=["POST"]),
        Route("/keys/{name}", keys, methods=["GET", "POST", "DELETE"]),
    ]
