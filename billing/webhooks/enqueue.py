"""Enqueueing stored events from the receiver, batched: one broker message per burst, not per event.

A Celery `send_task` costs ~1 ms of CPU and a broker round trip; one per webhook capped one
receiver process near 500 events/s. `BatchedEnqueue(send)` is the receiver's `enqueue(pk)`:
it returns at once, and one sender thread sends the pks that arrive within `linger` seconds of
the first as one message of up to `batch` pks. The HTTP answer never waits for it. The event
is committed before its pk is handed over, as before; an enqueue lost with the process (or
refused by the broker) is what the sweeper already re-sends, as for any failed enqueue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("billing.webhooks")

# Pks per message: a burst rides few messages; a poisonous event is claimed, recorded and
# skipped by processing, so it holds up at most its own message's others for one task run.
BATCH = 50
LINGER = 0.02  # seconds a message waits for company: invisible beside processing's own work


class BatchedEnqueue:
    def __init__(
        self, send: Callable[[list[int]], None], *, batch: int = BATCH, linger: float = LINGER
    ) -> None:
        self._send = send
        self._batch = batch
        self._linger = linger
        self._pending: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="webhook-enqueue", daemon=True)
        self._thread.start()

    def __call__(self, pk: int) -> None:
        self._pending.put(pk)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is pending, then stop the sender (after the server stopped taking events)."""
        self._pending.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        closing = False
        while not closing:
            first = self._pending.get()
            pks = [] if first is None else [first]
            closing = first is None
            until = time.monotonic() + self._linger
            while not closing and len(pks) < self._batch:
                try:
                    more = self._pending.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                else:
                    pks.append(more)
            if pks:
                try:
                    self._send(pks)
                except Exception:  # the events are stored: the sweeper enqueues them later
                    log.warning("webhook events %s stored; enqueue failed", pks, exc_info=True)
