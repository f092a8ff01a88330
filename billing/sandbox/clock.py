"""The sandbox's clock: real time by default, or frozen at / shifted to a time tests choose.

Only the sandbox's own rules read it (settle at a time, the 24 h PDN wait, the 30 min cancel
cut-off, scheduled pause/resume, timestamps in answers and webhooks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SandboxClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta(0)
        # Called after every move, so what fell due settles at once (the state ticks).
        self.on_change: Callable[[], None] | None = None

    def _moved(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set(self, moment: datetime) -> None:
        """Freeze the clock at `moment` (aware); it moves only when advanced."""
        if moment.tzinfo is None:
            raise ValueError("now: needs a time zone")
        with self._lock:
            self._frozen = moment.astimezone(UTC)
        self._moved()

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta
        self._moved()

    def real(self) -> None:
        with self._lock:
            self._frozen = None
            self._offset = timedelta(0)
        self._moved()

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen is not None
