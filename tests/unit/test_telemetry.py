"""Structured logs (scopes, JSON, redaction of every field), task summaries, endpoint names."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from billing.gateway.wire import endpoint
from billing.tasks.summary import outcome
from billing.telemetry import logs

PAN = "4111 1111 1111 1111"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through our JSON formatter and scope filter into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ScopeFilter())
    logger = logging.getLogger("billing.test_telemetry")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_in_a_scope_carries_the_debits_ids_and_what_was_bound_later(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    with logs.bound(task_id="t-1"), logs.bound(debit_id=7):
        logs.bind(mandate_id="m1", order_id="ORD1", try_number=2, request_id="r-9")
        log.info("debit %s: %s", 7, "CHARGED")
    log.info("outside")
    inside, outside = lines(stream)
    assert inside["message"] == "debit 7: CHARGED"
    assert {k: inside[k] for k in ("debit_id", "mandate_id", "order_id", "try", "task_id")} == {
        "debit_id": 7,
        "mandate_id": "m1",
        "order_id": "ORD1",
        "try": 2,
        "task_id": "t-1",
    }
    assert inside["request_id"] == "r-9"
    assert "debit_id" not in outside
    assert "task_id" not in outside


def test_bind_outside_a_scope_changes_nothing_and_an_inner_scope_does_not_leak() -> None:
    logs.bind(debit_id=1)
    assert logs.current() == {}
    with logs.bound(task_id="t"):
        with logs.bound(debit_id=1):
            logs.bind(order_id="A")
        assert logs.current() == {"task_id": "t"}


def test_card_numbers_cvvs_keys_and_passwords_are_redacted_in_every_field(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    logs.register_secret("sk_live_very_secret_key")
    with logs.bound(
        debit_id=1, card=PAN, cvv="123", password="hunter22", note="pan 4111111111111111"
    ):
        log.warning("echo %s cvv=987 key=%s", PAN, "sk_live_very_secret_key")
    (line,) = lines(stream)
    text = json.dumps(line)
    assert "4111 1111 1111 1111" not in text
    assert "4111111111111111" not in text
    assert "1111" in str(line["card"])  # last four kept
    assert line["cvv"] == "[REDACTED]"
    assert line["password"] == "[REDACTED]"
    assert "987" not in str(line["message"])
    assert "sk_live_very_secret_key" not in text
    assert line["debit_id"] == 1


def test_a_level_that_is_off_formats_nothing(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured

    class Exploding:
        def __str__(self) -> str:
            raise AssertionError("formatted although the level is off")

    with logs.bound(debit_id=1):
        log.debug("never %s", Exploding())
    assert stream.getvalue() == ""


def test_the_text_format_puts_the_fields_after_the_message() -> None:
    record = logging.LogRecord("billing.x", logging.INFO, __file__, 1, "debit %s", (5,), None)
    with logs.bound(debit_id=5, order_id="O1"):
        logs.ScopeFilter().filter(record)
    text = logs.TextFormatter().format(record)
    assert text.endswith("billing.x: debit 5  debit_id=5 order_id=O1")


def test_the_format_is_chosen_by_the_variable_or_by_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("BILLING_LOG_FORMAT", raising=False)
    assert logs.resolve_format(stream=Tty()) == "text"
    assert logs.resolve_format(stream=io.StringIO()) == "json"
    monkeypatch.setenv("BILLING_LOG_FORMAT", "json")
    assert logs.resolve_format(stream=Tty()) == "json"
    monkeypatch.setenv("BILLING_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="BILLING_LOG_FORMAT"):
        logs.resolve_format()


@pytest.mark.parametrize(
    ("result", "label"),
    [
        ("CHARGED", "CHARGED"),
        ("skipped: window passed", "skipped"),
        ("not executable (CHARGED)", "not executable"),
        ("earlier order 4FQ2ZL7XKQ3M5N6P7R8S: FAILED", "earlier order"),
        ("check failed; will retry", "check failed"),
        ("mandate m1 ACTIVE", "mandate ACTIVE"),
    ],
)
def test_a_task_summarises_results_by_a_short_label_without_ids(result: str, label: str) -> None:
    assert outcome(result) == label


def test_gateway_calls_are_named_by_their_path_template() -> None:
    assert endpoint("GET", "/orders/ABC123") == "GET /orders/{id}"
    assert endpoint("POST", "/txns") == "POST /txns"
    assert endpoint("GET", "/customers/c1/mandates") == "GET /customers/{id}/mandates"
    assert (
        endpoint("POST", "/payout/merchant/v1/orders/po1/attempt")
        == "POST /payout/merchant/v1/orders/{id}/attempt"
    )


def test_a_long_decimal_is_not_taken_for_a_card_number() -> None:
    assert (
        logs.redact_text("succeeded in 0.4111111111111111s") == "succeeded in 0.4111111111111111s"
    )
    assert logs.redact_text(f"pan {PAN}.") == "pan XXXXXXXXXXXX1111."
