"""Use cases, one module per merchant noun. They take sessions, a clock and ports as arguments
and never import Celery: the entry points (CLI, tasks, webhooks) wire them in `bootstrap`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]


class ServiceError(Exception):
    """A use case could not do what was asked, for a reason the caller can show as one line."""


class NotFoundError(ServiceError):
    """The thing asked for (a mandate, a debit, a payout) is not in the registry."""
