"""A progress line for long commands: on a terminal only, redrawn at most a few times a second.

On a terminal the line's last state stays on screen when the work ends (rows, rate, bad rows);
off a terminal (a pipe, a log file, cron) it writes nothing, so the output is the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

_CLEAR = "\r\x1b[K"  # back to the start of the line, erase it


class ImportProgress:
    """`12,000 rows  4,100 rows/s  3 bad`, rewritten in place on `stream` (a terminal)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool | None = None,
        every: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.every = every
        self.clock = clock
        self.rows = 0
        self.bad = 0
        self._started = clock()
        self._drawn_at: float | None = None

    def count(self, rows: Iterable[T]) -> Iterator[T]:
        """The rows, passed through; each one read counts."""
        for row in rows:
            self.rows += 1
            self._maybe_draw()
            yield row

    def bad_row(self, message: str | None) -> None:
        """A bad row: counted, and its message (if shown) printed above the progress line."""
        self.bad += 1
        if message is not None:
            self.stream.write((_CLEAR if self._drawn_at is not None else "") + message + "\n")
            if self._drawn_at is not None:
                self._draw()

    def close(self) -> None:
        """On a terminal, the final figures as a line of their own."""
        if self.enabled:
            self.stream.write(_CLEAR + self.line() + "\n")
            self.stream.flush()
            self._drawn_at = None

    def line(self) -> str:
        elapsed = max(self.clock() - self._started, 1e-6)
        return f"{self.rows:,} rows  {self.rows / elapsed:,.0f} rows/s  {self.bad:,} bad"

    def _maybe_draw(self) -> None:
        if not self.enabled:
            return
        now = self.clock()
        last = self._drawn_at if self._drawn_at is not None else self._started
        if now - last >= self.every:
            self._draw()

    def _draw(self) -> None:
        self.stream.write(_CLEAR + self.line())
        self.stream.flush()
        self._drawn_at = self.clock()
