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
}

# Beat runs in UTC; every entry only selects due ids and fans them out (tasks/beat.py).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "plan-debits": {"task": "billing.beat.plan", "schedule": timedelta(minutes=5)},
    "dispatch-due-work": {"task": "billing.beat.dispatch", "schedule": timedelta(seconds=15)},
    "reclaim-stale-claims": {"task": "billing.beat.reclaim", "schedule": timedelta(minutes=1)},
    "expire-mandates": {"task": "billing.beat.expire", "schedule": timedelta(hours=1)},
    "sweep-webhook-events": {"task": "billing.beat.webhooks", "schedule": timedelta(minutes=1)},
    # due payout attempts and payout status reads (tasks/payouts.py)
    "dispatch-payouts": {"task": "billing.beat.payouts", "schedule": timedelta(seconds=30)},
}


def _beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule = {name: dict(entry) for name, entry in BEAT_SCHEDULE.items()}
    schedule["dispatch-due-work"]["schedule"] = settings.beat_dispatch_every
    schedule["reclaim-stale-claims"]["schedule"] = settings.beat_reclaim_every
    schedule["dispatch-payouts"]["schedule"] = settings.beat_payouts_every
    return schedule


def configure(app: Celery, settings: Settings) -> None:
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": int(settings.broker_visibility_timeout.total_seconds())
        },
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
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
    container()


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
