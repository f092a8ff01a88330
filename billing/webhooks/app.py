"""The webhook receiver (SPEC §7): a Starlette app, served by `billing webhooks serve` or
mounted in the merchant's own ASGI app (`Mount("/billing", app=create_app(...))`).

    POST /webhooks/juspay           EC events        {id, event_name, date_created, content}
    POST /webhooks/juspay/payouts   payout events    {id, category, label, value, info}
    GET  /healthz                   200 when the database answers, else 503
    GET  /metrics                   Prometheus: this process's counters (or, with
                                    PROMETHEUS_MULTIPROC_DIR, every process's writing there)
                                    and the database's gauges (store/gauges.py)

Each POST: Basic auth, compared in constant time (401, nothing read further) -> body bounded
(413) -> parsed by the pure parser (400 / 422 naming the field) -> card data redacted -> stored
once per (kind, id) and committed -> `enqueue(pk)` after the commit -> 200 (`billing webhooks
serve` passes a BatchedEnqueue: the pk goes to its sender thread, sent within ~20 ms). A
repeated id is answered 200 and changes nothing; it is not enqueued again (a lost enqueue is
the sweeper's job). An enqueue that fails is logged and still answered 200: the event is
stored, the sweeper enqueues it later. Storage down is 503, so Juspay delivers again.
Nothing logs the Authorization header or a body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import anyio
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.bootstrap import Container
from billing.config import Settings
from billing.services.webhook_events import EC, PAYOUT, store_event
from billing.store import gauges
from billing.telemetry import metrics
from billing.webhooks.parse import Refusal, decode, parse_ec, parse_payout
from billing.webhooks.redact import redact

log = logging.getLogger("billing.webhooks")

Enqueue = Callable[[int], None]
REALM = 'Basic realm="billing webhooks", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    username: str
    password: str = field(repr=False)
    max_body_bytes: int = 1_000_000
    # Events stored at once: as many as the engine's pooled connections (app_for sizes the
    # pool), so a burst waits in the event loop, not on the pool or on overflow connections
    # opened and closed per request; enough in flight for PostgreSQL to group the commits.
    concurrent_stores: int = 5

    def __post_init__(self) -> None:
        if not self.username or not self.password:
            raise ValueError("the webhook receiver needs a username and a password")

    @classmethod
    def from_settings(cls, settings: Settings, concurrent_stores: int = 5) -> ReceiverConfig:
        """BILLING_WEBHOOK_USERNAME / _PASSWORD are required (SettingsError names them)."""
        settings.require("webhook_username", "webhook_password")
        assert settings.webhook_username is not None  # checked by require()
        assert settings.webhook_password is not None
        return cls(
            settings.webhook_username,
            settings.webhook_password.get_secret_value(),
            settings.webhook_max_body_bytes,
            concurrent_stores,
        )


@dataclass(frozen=True, slots=True)
class _Accepted:
    kind: str
    event_id: str
    event_name: str
    event_at: datetime | None
    body: str  # what is stored: the raw text, or the redacted re-serialisation


def create_app(
    *,
    sessions: sessionmaker[Session],
    config: ReceiverConfig,
    enqueue: Enqueue,
    clock: Callable[[], datetime],
    enqueue_returns_at_once: bool = False,
) -> Starlette:
    """The receiver on a session factory; `enqueue(pk)` starts processing of a stored event
    (called on the event loop when it returns at once, as BatchedEnqueue does; else in a thread)."""
    username, password = config.username.encode(), config.password.encode()
    storing = anyio.CapacityLimiter(config.concurrent_stores)

    def authorized(header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, colon, secret = decoded.partition(b":")
        # Both compared, always: no early exit tells a prober which half was wrong.
        same_user = hmac.compare_digest(user, username)
        same_secret = hmac.compare_digest(secret, password)
        return bool(colon) and same_user and same_secret

    async def receive(request: Request, kind: str) -> JSONResponse:
        if not authorized(request.headers.get("authorization")):
            client = request.client.host if request.client else "?"
            log.warning("webhook refused: missing or wrong credentials (from %s)", client)
            metrics.webhook_request(kind, "401")
            return JSONResponse(
                {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": REALM}
            )
        try:
            accepted = _accept(kind, await _read(request, config.max_body_bytes))
        except Refusal as refusal:
            log.info("webhook refused (%s): %s", refusal.status, refusal.error)
            metrics.webhook_request(kind, str(refusal.status))
            return JSONResponse(refusal.body(), status_code=refusal.status)
        try:
            stored = await anyio.to_thread.run_sync(
                partial(
                    store_event,
                    sessions,
                    kind=accepted.kind,
                    event_id=accepted.event_id,
                    event_name=accepted.event_name,
                    event_at=accepted.event_at,
                    body=accepted.body,
                    now=clock(),
                ),
                limiter=storing,
            )
        except SQLAlchemyError:
            log.exception("webhook %s %s not stored", kind, accepted.event_id)
            metrics.webhook_request(kind, "503")
            return JSONResponse({"error": "storage unavailable, retry later"}, status_code=503)
        if stored.duplicate:
            log.info("webhook %s %s repeated: already %s", kind, accepted.event_id, stored.state)
            metrics.webhook_request(kind, "duplicate")
            return JSONResponse({"status": "duplicate", "id": accepted.event_id})
        try:
            if enqueue_returns_at_once:
                enqueue(stored.pk)
            else:
                await run_in_threadpool(enqueue, stored.pk)
        except Exception:  # the event is stored: the sweeper enqueues it later
            log.warning("webhook %s %s stored; enqueue failed", kind, accepted.event_id,
                        exc_info=True)  # fmt: skip
        metrics.webhook_request(kind, "stored")
        return JSONResponse({"status": "stored", "id": accepted.event_id})

    async def ec(request: Request) -> JSONResponse:
        return await receive(request, EC)

    async def payouts(request: Request) -> JSONResponse:
        return await receive(request, PAYOUT)

    async def healthz(_: Request) -> JSONResponse:
        def ping() -> None:
            with sessions() as session:
                session.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except SQLAlchemyError:
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/webhooks/juspay", ec, methods=["POST"]),
            Route("/webhooks/juspay/payouts", payouts, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            _metrics_route(sessions, clock),
        ]
    )


def _metrics_route(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> Route:
    """GET /metrics: the counters, and the gauges read from the database at scrape time."""

    def read_gauges() -> list[gauges.Row]:
        with sessions() as session:
            return list(gauges.read(session, clock()))

    exposed = metrics.registry(metrics.GaugeCollector(read_gauges))

    async def page(_: Request) -> Response:
        try:
            body, content_type = await run_in_threadpool(metrics.exposition, exposed)
        except SQLAlchemyError:
            log.warning("metrics: database unavailable", exc_info=True)
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return Response(body, media_type=content_type)

    return Route("/metrics", page, methods=["GET"])


def app_for(
    container: Container, enqueue: Enqueue, *, enqueue_returns_at_once: bool = False
) -> Starlette:
    """The receiver on a container's database and clock, configured from its settings; it
    stores as many events at once as the container's engine pools connections."""
    pooled = container.engine.pool.size() if hasattr(container.engine.pool, "size") else 5
    return create_app(
        sessions=container.sessions,
        config=ReceiverConfig.from_settings(container.settings, pooled),
        enqueue=enqueue,
        clock=container.clock,
        enqueue_returns_at_once=enqueue_returns_at_once,
    )


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        digits = declared.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise Refusal(400, "invalid Content-Length")
        if len(digits) > 15 or int(digits) > limit:
            raise Refusal(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _accept(kind: str, raw: bytes) -> _Accepted:
    """Parse (pure), then redact card data from what will be stored."""
    payload = decode(raw)
    redacted, changed = redact(payload)
    assert isinstance(redacted, dict)  # redact keeps the shape
    at: datetime | None
    if kind == EC:
        ec = parse_ec(redacted)
        name, event_id, at = ec.event_name, ec.id, ec.date_created
    else:
        payout = parse_payout(redacted)
        name, event_id, at = payout.label, payout.id, payout.at
    # Escaped (ensure_ascii): a lone surrogate in a string stays "\\ud800", storable anywhere.
    body = json.dumps(redacted) if changed else raw.decode("utf-8")
    if changed:
        log.warning("webhook %s %s: card data redacted before storing", kind, event_id)
    return _Accepted(kind, event_id, name, at, body)
