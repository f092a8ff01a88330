"""What `billing status` asks of the broker and the workers, for the configured transport.

- Broker: a real kombu connection with a short timeout, then a passive declare of each queue
  (its depth; on the SQL transport this is a query on its database).
- Workers: Celery's remote control (`active_queues`, a broadcast ping that says which queues
  each worker consumes) on transports that broadcast (Redis, RabbitMQ). The SQL transport
  cannot broadcast (kombu has no fanout for it: a ping would reach no worker), so there
  `billing.health.ping` is sent to each queue and the worker that takes it answers through the
  database (heartbeat `worker:QUEUE`); the message expires if nobody takes it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from amqp.exceptions import ChannelError
from celery import Task
from kombu import Connection
from sqlalchemy.orm import Session, sessionmaker

from billing.services.health import last_heartbeat, record_heartbeat
from billing.tasks.worker import app, container

PING = "billing.health.ping"


@app.task(name=PING, bind=True, acks_late=False, ignore_result=True, time_limit=30)
def ping(self: Task[Any, Any], queue: str, token: str) -> None:
    c = container()
    record_heartbeat(
        c.sessions, f"worker:{queue}", at=c.clock(), detail=f"{token} {self.request.hostname}"
    )


def queue_depths(url: str, queues: Sequence[str], timeout: float) -> dict[str, int | None]:
    """Messages waiting per queue (None: the broker has never seen the queue); raises when the
    broker cannot be reached within `timeout` seconds."""
    depths: dict[str, int | None] = {}
    with Connection(url, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=max(1, int(timeout)))
        for queue in queues:
            depths[queue] = waiting_in(connection, queue)
    return depths


def waiting_in(connection: Connection, queue: str) -> int | None:
    """Messages waiting in `queue` (None: the broker has never seen it). A passive declare: an
    active one with other arguments than the worker's is refused by RabbitMQ (PRECONDITION)."""
    try:
        with connection.channel() as channel:
            declared = channel.queue_declare(queue, passive=True)  # type: ignore[attr-defined]
            return int(declared.message_count)
    except ChannelError:  # NOT_FOUND: no worker has declared it yet
        return None


def broadcasts(url: str) -> bool:
    """Whether the transport can broadcast (Celery's remote control reaches every worker)."""
    return "fanout" in Connection(url).transport.implements.exchange_type


def workers_by_queue(
    queues: Sequence[str],
    timeout: float,
    sessions: sessionmaker[Session],
    *,
    broker_url: str,
    broadcast: bool | None = None,
) -> dict[str, list[str]]:
    """The workers (hostnames) that answer within `timeout` seconds, per queue; `broadcast`
    False asks through ping tasks even where the transport could broadcast (tests)."""
    answered: dict[str, list[str]] = {queue: [] for queue in queues}
    with Connection(broker_url, connect_timeout=timeout) as connection:
        if broadcasts(broker_url) if broadcast is None else broadcast:
            inspect = app.control.inspect(timeout=timeout, connection=connection)
            for hostname, consumed in (inspect.active_queues() or {}).items():
                for info in consumed:
                    name = str(info.get("name"))
                    if name in answered:
                        answered[name].append(hostname)
            return answered
        token = uuid.uuid4().hex
        for queue in queues:
            app.send_task(
                PING, args=[queue, token], queue=queue, expires=timeout, connection=connection
            )
    deadline = time.monotonic() + timeout
    waiting = set(queues)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.2)
        for queue in sorted(waiting):
            try:
                _, detail = last_heartbeat(sessions, f"worker:{queue}")
            except LookupError:
                continue
            sent, _, hostname = (detail or "").partition(" ")
            if sent == token:
                answered[queue].append(hostname)
                waiting.discard(queue)
    return answered
