"""Prometheus metrics (prometheus-client): counters moved by the code, gauges read at scrape.

Counted where it happens (cheap: a dict lookup and a lock per increment):
    billing_debits_total{state}                     debits that moved into a state (committed)
    billing_gateway_requests_total{endpoint,status} calls to Juspay, by path template and HTTP
                                                    status (or the transport error's name)
    billing_gateway_request_seconds{endpoint}       their latency
    billing_webhook_requests_total{kind,result}     webhooks received (stored, duplicate, 4xx)
    billing_tasks_total{task,outcome}               items handled by the Celery tasks

Read from the database when scraped (`database_collector`, on the webhook receiver's /metrics):
    billing_due_debits, billing_oldest_due_debit_age_seconds, billing_webhook_events{state},
    billing_payout_attempts{state}, billing_debit_states{state}

The prometheus_client import is deferred to the first use, after `billing worker` has chosen
PROMETHEUS_MULTIPROC_DIR (prefork children write their values to files there and the worker's
main process serves their sum on BILLING_METRICS_PORT).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Juspay answers within tens of ms to a few s; the read timeout is 30 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram  # noqa: PLC0415 - see the docstring

        self.debits: Counter = Counter(
            "billing_debits", "Debits that moved into a state (committed moves)", ["state"]
        )
        self.gateway: Counter = Counter(
            "billing_gateway_requests",
            "Calls to Juspay by endpoint and HTTP status (or transport error)",
            ["endpoint", "status"],
        )
        self.gateway_latency: Histogram = Histogram(
            "billing_gateway_request_seconds",
            "Latency of calls to Juspay",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
        )
        self.webhooks: Counter = Counter(
            "billing_webhook_requests", "Webhook requests received", ["kind", "result"]
        )
        self.tasks: Counter = Counter(
            "billing_tasks", "Items handled by Celery tasks, by outcome", ["task", "outcome"]
        )


_lock = threading.Lock()
_metrics: _Metrics | None = None


def _get() -> _Metrics:
    global _metrics  # noqa: PLW0603 - one set of metrics per process, made on first use
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


def debit_moved(state: str, count: int = 1) -> None:
    _get().debits.labels(state).inc(count)


def gateway_call(endpoint: str, status: str, seconds: float) -> None:
    m = _get()
    m.gateway.labels(endpoint, status).inc()
    m.gateway_latency.labels(endpoint).observe(seconds)


def webhook_request(kind: str, result: str) -> None:
    _get().webhooks.labels(kind, result).inc()


def task_outcomes(task: str, summary: dict[str, int]) -> None:
    counter = _get().tasks
    for outcome, count in summary.items():
        counter.labels(task, outcome).inc(count)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def use_multiprocess_dir() -> None:
    """Before a prefork pool starts: PROMETHEUS_MULTIPROC_DIR as given, else a fresh temporary
    directory (the children inherit it). Too late once prometheus_client is imported here."""
    if multiprocess():
        return
    if "prometheus_client" in sys.modules:
        raise RuntimeError(f"set {MULTIPROC_ENV} before the worker starts")
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="billing-metrics-")


def registry(*extra: Any) -> CollectorRegistry:
    """What to expose: this process's metrics, or (PROMETHEUS_MULTIPROC_DIR set) the sum over
    every process writing to that directory; plus `extra` collectors."""
    from prometheus_client import REGISTRY, CollectorRegistry  # noqa: PLC0415
    from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

    _get()
    if not multiprocess() and not extra:
        return REGISTRY
    chosen = CollectorRegistry()
    if multiprocess():
        MultiProcessCollector(chosen)  # type: ignore[no-untyped-call]
    else:
        chosen.register(_Forward(REGISTRY))
    for collector in extra:
        chosen.register(collector)
    return chosen


def exposition(reg: CollectorRegistry) -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

    return generate_latest(reg), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """Serve /metrics on `port` in a daemon thread (the worker's main process)."""
    from prometheus_client import start_http_server  # noqa: PLC0415

    start_http_server(port, addr=addr, registry=registry())


class _Forward:
    """Another registry's metrics, so one registry can add collectors to the default one."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Any]:
        return self.source.collect()


Gauges = Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]


class GaugeCollector:
    """Gauges computed at scrape time by `read()`: (name, help, labels, value) rows."""

    def __init__(self, read: Gauges) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        families: dict[str, Any] = {}
        for name, help_text, labels, value in self.read():
            family = families.get(name)
            if family is None:
                family = GaugeMetricFamily(name, help_text, labels=sorted(labels))
                families[name] = family
            family.add_metric([labels[k] for k in sorted(labels)], value)
        yield from families.values()

    def describe(self) -> list[Any]:
        return []  # nothing read at registration: the database is asked only when scraped
