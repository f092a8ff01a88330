"""Webhook emission: a queue and one background thread posting events with HTTP Basic auth.

EC events (`{id, event_name, date_created, content{order|mandate|notification}}`) go to `url`;
payout events go to `payout_url` (default: `url` + "/payouts"). Payout event shape
*(interpretation, Juspay's is not in our documents)*: `{id, category, label, value, info}` with
category `FULFILLMENT_ORDER` (value: the fulfillment, plus orderId and customerId; label
FULFILLMENT_<status>) or `ORDER` (value: the payout order; label: its status), and info
`{merchantId, createdAt}`.

Switches: `enabled`, `duplicate` (every event posted twice), `hold` (events wait until
`release()`, which delivers them in reverse order by default: out of order on purpose).
Failed deliveries are logged (event id and reason only) and kept in `failures`.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

_log = logging.getLogger("billing.sandbox.webhooks")


@dataclass
class WebhookConfig:
    url: str | None = None
    payout_url: str | None = None
    username: str | None = None
    password: str | None = None
    enabled: bool = True
    duplicate: bool = False
    hold: bool = False

    def public(self) -> dict[str, object]:
        return {
            "url": self.url,
            "payout_url": self.target(payout=True),
            "username": self.username,
            "password_set": self.password is not None,
            "enabled": self.enabled,
            "duplicate": self.duplicate,
            "hold": self.hold,
        }

    def target(self, *, payout: bool) -> str | None:
        if not payout:
            return self.url
        if self.payout_url:
            return self.payout_url
        return None if self.url is None else self.url.rstrip("/") + "/payouts"


class WebhookDispatcher:
    def __init__(self, config: WebhookConfig | None = None) -> None:
        self._initial = config or WebhookConfig()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[int, str, dict[str, Any]] | None] = queue.Queue()
        self._generation = 0  # bumped by reset(): deliveries queued before it are dropped
        self._thread: threading.Thread | None = None
        self.config = WebhookConfig(**vars(self._initial))
        self.emitted: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self._held: list[tuple[str, dict[str, Any]]] = []

    def configure(self, **changes: object) -> None:
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self.config, name):
                    raise ValueError(f"{name}: not a webhook setting")
                setattr(self.config, name, value)

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self.config = WebhookConfig(**vars(self._initial))
            self.emitted.clear()
            self.delivered.clear()
            self.failures.clear()
            self._held.clear()

    def emit(self, event: dict[str, Any], *, payout: bool = False) -> None:
        """Record the event and queue its delivery; never blocks (called under the state lock)."""
        with self._lock:
            self.emitted.append(event)
            url = self.config.target(payout=payout)
            if not self.config.enabled or url is None:
                return
            if self.config.hold:
                self._held.append((url, event))
                return
            copies = 2 if self.config.duplicate else 1
            generation = self._generation
        for _ in range(copies):
            self._queue.put((generation, url, event))

    def release(self, *, reverse: bool = True) -> int:
        """Deliver the held events, newest first unless `reverse` is false."""
        with self._lock:
            held, self._held = self._held, []
            generation = self._generation
        for url, event in reversed(held) if reverse else held:
            self._queue.put((generation, url, event))
        return len(held)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "config": self.config.public(),
                "emitted": list(self.emitted),
                "delivered": list(self.delivered),
                "failures": list(self.failures),
                "held": len(self._held),
            }

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as http:
            while (item := self._queue.get()) is not None:
                self._deliver(http, *item)

    def _deliver(
        self, http: httpx.Client, generation: int, url: str, event: dict[str, Any]
    ) -> None:
        with self._lock:
            if generation != self._generation:
                return
            username, password = self.config.username, self.config.password
        reason: str
        try:
            if username is None:
                response = http.post(url, json=event)
            else:
                response = http.post(
                    url, json=event, auth=httpx.BasicAuth(username, password or "")
                )
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        else:
            if response.is_success:
                with self._lock:
                    if generation == self._generation:
                        self.delivered.append({"id": event.get("id"), "url": url})
                return
            reason = f"HTTP {response.status_code}"
        _log.warning("webhook %s to %s not delivered: %s", event.get("id"), url, reason)
        with self._lock:
            if generation != self._generation:
                return
            self.failures.append(
                {
                    "id": event.get("id"),
                    "url": url,
                    "reason": reason,
                    "at": datetime.now(UTC).isoformat(),
                }
            )
