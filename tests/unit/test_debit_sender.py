"""The concurrent sender of recorded orders: what each answer means, and Juspay's 429."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from billing.domain.outcomes import Outcome
from billing.gateway import ExecutionResult, Rejected, Unavailable
from billing.services.debits import sender
from billing.services.debits.sender import OrderToSend, RateLimit, Sender


class Gateway:
    """Answers each order id from a script: a list of errors to raise first, then CHARGED."""

    def __init__(self, script: Callable[[str, int], Exception | None]) -> None:
        self.script = script
        self.calls: list[str] = []

    def execute_mandate(self, *, order_id: str, **_: object) -> ExecutionResult:
        self.calls.append(order_id)
        error = self.script(order_id, self.calls.count(order_id))
        if error is not None:
            raise error
        return ExecutionResult(order_id=order_id, txn_id="t", txn_uuid="u", status="CHARGED")

    def __getattr__(self, name: str) -> object:  # the rest of the port is not used here
        raise AttributeError(name)


def order(order_id: str) -> OrderToSend:
    return OrderToSend(order_id, Decimal("10.00"), "INR", "c", "m", None, None)


def too_many(request: int = 0) -> Unavailable:
    return Unavailable("rate limited", http_status=429, request_id=str(request))


class Sleeps:
    def __init__(self) -> None:
        self.waited: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def test_a_429_pauses_then_sends_the_same_order_again_and_it_is_charged() -> None:
    gateway = Gateway(lambda _o, n: too_many() if n <= 2 else None)
    sleeps = Sleeps()
    news = Sender(gateway, rate_limit=RateLimit(sleep=sleeps)).send_all([order("A")])  # type: ignore[arg-type]
    assert [n.outcome for n in news] == [Outcome.CHARGED]
    assert gateway.calls == ["A", "A", "A"]
    assert len(sleeps.waited) == 2
    assert 0 < sleeps.waited[0] <= sender.FIRST_PAUSE < sleeps.waited[1]


def test_an_order_refused_429_every_time_is_left_to_reconciliation_never_failed() -> None:
    gateway = Gateway(lambda _o, _n: too_many())
    news = Sender(gateway, rate_limit=RateLimit(sleep=Sleeps())).send_one(order("A"))  # type: ignore[arg-type]
    assert news.outcome is Outcome.UNKNOWN
    assert news.order_state is None  # not REJECTED: Juspay never took it
    assert gateway.calls == ["A"] * sender.MAX_RATE_LIMITED


def test_each_order_of_a_batch_gets_its_own_answer_in_order() -> None:
    def script(order_id: str, _n: int) -> Exception | None:
        if order_id == "B":
            return Rejected("Insufficient funds", code="51", http_status=400)
        if order_id == "C":
            return Rejected("order id already used", code="DUPLICATE_ORDER_ID", http_status=400)
        return None

    gateway = Gateway(script)
    with ThreadPoolExecutor(4) as pool:
        news = Sender(gateway, pool).send_all([order(x) for x in "ABCD"])  # type: ignore[arg-type]
    assert [n.order_id for n in news] == list("ABCD")
    assert news[0].outcome is Outcome.CHARGED
    assert news[3].outcome is Outcome.CHARGED
    assert news[1].order_state == "REJECTED"
    assert news[1].error_code == "51"
    assert news[2].outcome is Outcome.UNKNOWN  # sent before: reconcile, never a failure
    assert sorted(gateway.calls) == list("ABCD")


def test_an_answer_about_another_order_is_not_believed() -> None:
    answer = ExecutionResult(order_id="OTHER", txn_id=None, txn_uuid=None, status="CHARGED")
    assert sender.answer_news("MINE", answer).outcome is Outcome.UNKNOWN


def test_the_pause_doubles_up_to_its_bound_and_a_success_resets_it() -> None:
    limit = RateLimit(sleep=Sleeps())
    for _ in range(20):
        limit.refused()
    assert limit._pause == sender.MAX_PAUSE
    limit.passed()
    assert limit._pause == sender.FIRST_PAUSE


def test_an_unexpected_error_in_one_send_leaves_that_order_unknown_and_the_rest_answered() -> None:
    # A bug or a library error while sending one order must not cost the whole batch a
    # reconciliation round: the others keep their answers, and that order (which may have
    # reached Juspay) is reconciled by a status read like a timeout, never sent blindly again.
    def script(order_id: str, _n: int) -> Exception | None:
        return RuntimeError("boom") if order_id == "B" else None

    gateway = Gateway(script)
    with ThreadPoolExecutor(4) as pool:
        news = Sender(gateway, pool).send_all([order(x) for x in "ABC"])  # type: ignore[arg-type]
    assert [n.outcome for n in news] == [Outcome.CHARGED, Outcome.UNKNOWN, Outcome.CHARGED]
    assert "RuntimeError" in news[1].cause
    assert gateway.calls.count("B") == 1
