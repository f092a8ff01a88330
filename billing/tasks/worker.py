"""The Celery app: `celery -A billing.tasks.worker worker` (or `billing worker`) runs it.

Configured from settings at import (nothing connects then). Every task is claim-first, so the
delivery guarantees can be the strong ones: acks_late with reject_on_worker_lost (a task whose
worker dies is redelivered), prefetch 1 (a dead worker strands one message, not a hundred).
The container (engine, HTTP client) is built per process after fork, never shared.

Logging is ours (telemetry/logs.py, `setup_logging`): each task runs in a log scope holding its
`task_id`, so every line it writes can be traced to it. With BILLING_METRICS_PORT the worker's
main process serves /metrics: the sum over its prefork children (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import contextvars
import os
from datetime import timedelta
from typing import Any

from celery import Celery, signals
from kombu import Queue

from billing.bootstrap import Container, build
from billing.config import Settings, load_settings
from billing.telemetry import logs, metrics

GATEWAY_QUEUE = "gateway"  # calls to Juspay: executions, status checks, PDNs, attempts
WEBHOOK_QUEUE = "webhooks"  # processing of stored webhook events
HOUSEKEEPING_QUEUE = "housekeeping"  # beat's selections, planning, expiry, sweeps
QUEUES = (GATEWAY_QUEUE, WEBHOOK_QUEUE, HOUSEKEEPING_QUEUE)

ROUTES = {
    "billing.debits.execute": GATEWAY_QUEUE,
    "billing.orders.check": GATEWAY_QUEUE,
    "billing.notifications.*": GATEWAY_QUEUE,
    "billing.payouts.attempt": GATEWAY_QUEUE,
    "billing.payouts.refresh": GATEWAY_QUEUE,
    "billing.webhooks.process": WEBHOOK_QUEUE,
    "billing.beat.*": HOUSEKEEPING_QUEUE,
    # billing.health.ping is sent to each queue explicitly (tasks/health.py)
}

# Beat runs in UTC; every entry only selects due ids and fans them out (tasks/beat.py).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "plan-debits": {"task": "billing.beat.plan", "schedule": timedelta(minutes=5)},
    "dispatch-due-work": {"task": "billing.beat.dispatch", "schedule": timedelta(seconds=15)},
    "reclaim-stale-claims": {"task": "billing.beat.reclaim", "schedule": timedelta(minutes=1)},
    "expire-mandates": {"task": "billing.beat.expire", "schedule": timedelta(hours=1)},
    "sweep-webhook-events": {"task": "billing.beat.webhooks", "schedule": timedelta(minutes=1)},
    # the embedded broker's delivered messages (tasks/embedded_broker.py; a no-op elsewhere)
    "clean-embedded-broker": {"task": "billing.beat.broker", "schedule": timedelta(minutes=10)},
    # due payout attempts and payout status reads (tasks/payouts.py)
    "dispatch-payouts": {"task": "billing.beat.payouts", "schedule": timedelta(seconds=30)},
}


def _beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule = {name: dict(entry) for name, entry in BEAT_SCHEDULE.items()}
    schedule["plan-debits"]["schedule"] = settings.beat_plan_every
    schedule["dispatch-due-work"]["schedule"] = settings.beat_dispatch_every
    schedule["reclaim-stale-claims"]["schedule"] = settings.beat_reclaim_every
    schedule["dispatch-payouts"]["schedule"] = settings.beat_payouts_every
    return schedule


def broker_transport(url: str) -> str:
    """The kombu transport a broker URL names: `redis`, `amqp`, `sqla`, ..."""
    scheme = url.partition("://")[0].lower()
    transport = scheme.partition("+")[0]
    return {"sqlalchemy": "sqla", "pyamqp": "amqp", "rediss": "redis"}.get(transport, transport)


def transport_options(settings: Settings) -> dict[str, Any]:
    """Options for the configured transport only: each transport reads its own, and kombu's
    SQLAlchemy transport hands every option it does not know to `create_engine` (a Redis
    `visibility_timeout` there stops the worker at start)."""
    transport = broker_transport(settings.broker_url)
    if transport == "redis":
        # Redis redelivers an unacked task after this; every task claims first, so it is safe.
        return {"visibility_timeout": int(settings.broker_visibility_timeout.total_seconds())}
    if transport == "amqp":
        # RabbitMQ confirms each publish: an enqueue after commit is not reported sent unless
        # the broker has it (beat's lease re-sends what was lost either way).
        return {"confirm_publish": True}
    if transport == "sqla" and broker_database_url(settings.broker_url).startswith("sqlite"):
        # Worker, beat and receiver write the same SQLite file; wait for its lock (pysqlite's
        # default is 5 s) rather than fail a publish under a burst.
        return {"connect_args": {"timeout": 30}}
    return {}


def broker_database_url(url: str) -> str:
    """The SQLAlchemy URL inside an embedded broker's `sqla+...` URL."""
    return url.partition("+")[2] if broker_transport(url) == "sqla" else url


def prefetch_multiplier(url: str) -> int:
    """1 (a dead worker strands one message), except on the embedded broker: kombu's virtual
    transport sleeps its 1 s polling interval whenever the prefetch is full, so 1 would cap a
    worker near 2 tasks/s; and there a dead worker's messages are never redelivered anyway
    (beat's lease re-sends the due work)."""
    return 8 if broker_transport(url) == "sqla" else 1


def configure(app: Celery, settings: Settings) -> None:
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings),
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=prefetch_multiplier(settings.broker_url),
        task_time_limit=300,
        task_soft_time_limit=240,
        task_send_sent_event=True,  # Flower shows every task from the moment it is sent
        worker_send_task_events=True,
        task_default_queue=HOUSEKEEPING_QUEUE,
        task_queues=[Queue(name) for name in QUEUES],
        task_routes=ROUTES,
        timezone="UTC",
        enable_utc=True,
        beat_schedule=_beat_schedule(settings),
        worker_hijack_root_logger=False,
    )


app = Celery(
    "billing",
    include=[
        "billing.tasks.debits",
        "billing.tasks.beat",
        "billing.tasks.webhooks",
        "billing.tasks.payouts",
        "billing.tasks.health",
    ],
)
configure(app, load_settings())

_container: Container | None = None
_container_pid: int | None = None


def container() -> Container:
    """This process's container; rebuilt in a forked child so nothing crosses a fork."""
    global _container, _container_pid  # noqa: PLW0603 - one composition root per process
    if _container is None or _container_pid != os.getpid():
        _container = build()
        _container_pid = os.getpid()
    return _container


@signals.worker_process_init.connect
def _build_after_fork(**_: object) -> None:
    global _container, _container_pid
    _container, _container_pid = None, None
    _forget_embedded_broker_engines()
    container()


def _forget_embedded_broker_engines() -> None:
    """kombu's SQLAlchemy transport caches its engines on a class, so a forked pool process
    would reuse the parent's pooled SQLite connections (never safe across a fork): drop them
    without closing the parent's (SQLAlchemy's `dispose(close=False)` after fork)."""
    if broker_transport(app.conf.broker_url or "") != "sqla":
        return
    from kombu.transport.sqlalchemy import Channel  # noqa: PLC0415 - only for this transport

    for engine, _sessions in Channel._engines.values():  # kombu keeps them on the class
        engine.dispose(close=False)
    Channel._engines.clear()


@signals.beat_init.connect
def _plan_at_start(**_: object) -> None:
    """Plan once as beat starts, so imported mandates do not wait a whole planning interval
    (planning is idempotent: a doubled beat plans nothing twice)."""
    app.send_task("billing.beat.plan")


@signals.worker_process_shutdown.connect
def _close(**_: object) -> None:
    if _container is not None:
        _container.close()


_task_scopes: dict[str, contextvars.Token[dict[str, object] | None]] = {}


@signals.setup_logging.connect
def _setup_logging(loglevel: object = None, **_: object) -> None:
    """Celery leaves logging to us when this is connected: one handler, our format."""
    logs.configure(level=loglevel if isinstance(loglevel, int | str) else "INFO")


@signals.task_prerun.connect
def _open_task_scope(task_id: str | None = None, task: Any = None, **_: object) -> None:
    if task_id is not None:
        _task_scopes[task_id] = logs.open_scope(task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def _close_task_scope(task_id: str | None = None, **_: object) -> None:
    if task_id is not None:
        logs.close_scope(_task_scopes.pop(task_id, None))


@signals.worker_init.connect
def _serve_metrics(**_: object) -> None:
    """BILLING_METRICS_PORT: /metrics from the worker's main process (before the pool forks)."""
    port = load_settings().metrics_port
    if port:
        metrics.use_multiprocess_dir()
        metrics.serve(port)
