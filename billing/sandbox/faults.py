"""Faults the sandbox can inject, per endpoint kind (the next N calls) or per id.

A fault matches a call when its `endpoint` is unset or equal to the call's kind, and its `key`
is unset or equal to one of the ids the call names (order id, mandate id, notification
reference, customer id, fulfillment id). Each match uses one of its `times`.

kinds (and their parameters):
  http_error     answer `status` (default 500) without processing; `after: true` processes first
  drop_before    close the connection without answering, before processing
  drop_after     process (the charge happens), then close the connection without answering
  timeout_after  process, hold the answer `seconds` (past the client's read timeout), then close
  latency        wait `seconds`, then carry on; `after: true` processes first, then waits
                 (the webhooks the call emits are on their way while the caller still waits)
  pending        the created object stays pending for `polls` polls (and not a second less:
                 no settling by time meanwhile; a merchant PDN with a large `polls` is stuck)
  fail           the created object ends failed: `order_status` (default AUTHORIZATION_FAILED),
                 `error_code`, `error_message`; a notification ends FAILURE, a fulfillment FAILURE
  silent_retry   the order first fails with Juspay retrying (additional_info.mandate_retry_info
                 with Juspay's keys, `retries_done_count` < `allowed_retry` = `allowed`, default
                 4), one more retry per poll, then after `polls` polls ends `then` (default
                 CHARGED; a failure ends with every allowed retry done)
  misreport      the execution answer names another order: `answer_order_id` (default the
                 order id with an X appended); the order itself is created as asked
  queued         (attempt) ACK at once, but Juspay takes the attempt up only `seconds` later
                 (sandbox clock): until then the fulfillment shows its old FAILURE
endpoints: txns, order_status, mandates, notification_status, customer_mandates, payout_status,
attempt, and pdn (the notification Juspay sends itself for an order executed in advance).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

KINDS = frozenset(
    {
        "http_error",
        "drop_before",
        "drop_after",
        "timeout_after",
        "latency",
        "pending",
        "fail",
        "silent_retry",
        "misreport",
        "queued",
    }
)
ENDPOINTS = frozenset(
    {
        "txns",
        "order_status",
        "mandates",
        "notification_status",
        "customer_mandates",
        "payout_status",
        "attempt",
        "pdn",
    }
)


@dataclass
class Fault:
    kind: str
    endpoint: str | None = None
    key: str | None = None
    times: int = 1
    status: int = 500
    after: bool = False
    seconds: float = 1.0
    polls: int = 2
    order_status: str = "AUTHORIZATION_FAILED"
    error_code: str | None = None
    error_message: str | None = None
    then: str = "CHARGED"
    allowed: int = 4
    answer_order_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def from_spec(cls, spec: Mapping[str, object]) -> Fault:
        """Build from the control API's JSON; `ValueError` names the bad field."""
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {sorted(KINDS)}")
        endpoint = spec.get("endpoint")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint: expected one of {sorted(ENDPOINTS)}")
        key = spec.get("key", spec.get("order_id"))
        fault = cls(kind=kind, endpoint=None if endpoint is None else str(endpoint))
        fault.key = None if key is None else str(key)
        for name, kind_of in (("times", int), ("status", int), ("polls", int), ("allowed", int)):
            if name in spec:
                setattr(fault, name, _number(spec[name], name, kind_of))
        if "seconds" in spec:
            fault.seconds = float(_number(spec["seconds"], "seconds", float))
        fault.after = bool(spec.get("after", False))
        for name in ("order_status", "then"):
            if name in spec:
                setattr(fault, name, str(spec[name]))
        for name in ("error_code", "error_message", "answer_order_id"):
            if spec.get(name) is not None:
                setattr(fault, name, str(spec[name]))
        if fault.times < 1:
            raise ValueError("times: must be at least 1")
        if fault.allowed < 1:
            raise ValueError("allowed: must be at least 1")
        return fault

    def matches(self, endpoint: str, ids: Iterable[str | None]) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.key is None or self.key in set(ids)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def label(self) -> str:
        """How the sandbox counts it: `timeout_after`, `http_error_503`, `http_error_500_after`."""
        status = f"_{self.status}" if self.kind == "http_error" else ""
        after = "_after" if self.after and self.kind in ("http_error", "latency") else ""
        return f"{self.kind}{status}{after}"


def _number(value: object, name: str, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name}: expected a number")  # noqa: TRY004 (a 400 to the caller)
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name}: expected a number") from None


@dataclass
class FaultPlan:
    """What the faults matching one call ask for."""

    latency: float = 0.0
    latency_after: float = 0.0
    http_error: Fault | None = None
    drop_before: bool = False
    drop_after: bool = False
    timeout_after: float | None = None
    pending_polls: int | None = None
    fail: Fault | None = None
    silent_retry: Fault | None = None
    misreport: Fault | None = None
    queued: float | None = None


class FaultBook:
    """The active faults; those keyed by an id are indexed by it, so thousands of per-order
    faults (the chaos suites') cost a lookup per call, not a scan."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}  # by id, in insertion order
        self._keyed: dict[str, dict[str, Fault]] = {}  # key -> id -> fault
        self._unkeyed: dict[str, Fault] = {}
        self._order: dict[str, int] = {}
        self._added = 0
        self._used: Counter[str] = Counter()  # by label and endpoint: what was injected

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults[fault.id] = fault
            self._order[fault.id] = self._added
            self._added += 1
            if fault.key is None:
                self._unkeyed[fault.id] = fault
            else:
                self._keyed.setdefault(fault.key, {})[fault.id] = fault
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._keyed.clear()
            self._unkeyed.clear()
            self._order.clear()
            self._used.clear()

    def used(self) -> dict[str, int]:
        """How many times each kind of fault was injected, as `label@endpoint`."""
        with self._lock:
            return dict(self._used)

    def active(self) -> list[dict[str, object]]:
        with self._lock:
            return [f.as_dict() for f in self._faults.values()]

    def take(self, endpoint: str, ids: Iterable[str | None]) -> FaultPlan:
        """Consume one use of every fault that matches this call and say what they ask for
        (in the order they were added)."""
        wanted = [i for i in dict.fromkeys(ids) if i is not None]
        plan = FaultPlan()
        with self._lock:
            candidates = list(self._unkeyed.values())
            for key in wanted:
                candidates += self._keyed.get(key, {}).values()
            candidates.sort(key=lambda f: self._order[f.id])
            for fault in candidates:
                if not fault.matches(endpoint, wanted):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._remove(fault)
                self._used[f"{fault.label}@{endpoint}"] += 1
                _apply(plan, fault)
        return plan

    def _remove(self, fault: Fault) -> None:
        del self._faults[fault.id], self._order[fault.id]
        if fault.key is None:
            del self._unkeyed[fault.id]
        else:
            keyed = self._keyed[fault.key]
            del keyed[fault.id]
            if not keyed:
                del self._keyed[fault.key]


def _apply(plan: FaultPlan, fault: Fault) -> None:
    if fault.kind == "latency" and fault.after:
        plan.latency_after += fault.seconds
    elif fault.kind == "latency":
        plan.latency += fault.seconds
    elif fault.kind == "http_error":
        plan.http_error = fault
    elif fault.kind == "drop_before":
        plan.drop_before = True
    elif fault.kind == "drop_after":
        plan.drop_after = True
    elif fault.kind == "timeout_after":
        plan.timeout_after = fault.seconds
    elif fault.kind == "pending":
        plan.pending_polls = fault.polls
    elif fault.kind == "fail":
        plan.fail = fault
    elif fault.kind == "silent_retry":
        plan.silent_retry = fault
    elif fault.kind == "misreport":
        plan.misreport = fault
    elif fault.kind == "queued":
        plan.queued = fault.seconds
