"""What a task returns: its items counted by outcome (`{"CHARGED": 8, "FAILED": 2}`), so Flower
shows outcomes instead of `None`, and `billing_tasks_total{task, outcome}` counts them."""

from __future__ import annotations

import re
from collections import Counter

from billing.telemetry import metrics

_CUT = re.compile(r"[:;]| \(")
_MAX_WORDS = 3


def outcome(result: str) -> str:
    """A service's one-line answer as a short label: `skipped: window passed` -> `skipped`,
    `earlier order 4FQ2…: FAILED` -> `earlier order`. Words with digits (ids, amounts) and
    long words are dropped, so the labels stay few."""
    head = _CUT.split(result, maxsplit=1)[0]
    words = [w for w in head.split() if len(w) <= 16 and not any(c.isdigit() for c in w)]
    return " ".join(words[:_MAX_WORDS]) or "other"


class Summary:
    def __init__(self, task: str) -> None:
        self.task = task
        self.counts: Counter[str] = Counter()

    def add(self, result: str) -> None:
        self.counts[outcome(result)] += 1

    def done(self) -> dict[str, int]:
        summary = dict(self.counts)
        metrics.task_outcomes(self.task, summary)
        return summary
