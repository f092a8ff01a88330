"""No log record, from any logger at any level, carries a secret during gateway traffic."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from decimal import Decimal

import pytest

from billing.gateway import (
    AuthenticationFailed,
    CardNumber,
    CardToken,
    GatewayError,
    JuspayClient,
    OutcomeUnknown,
)
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from tests.integration.sandbox_fixtures import (
    API_KEY,
    WEBHOOK_PASSWORD,
    WEBHOOK_USERNAME,
    WebhookReceiver,
    card_fulfillment,
    payout_order,
    wait_until,
)

CUSTOMER = "cst_5566"
PAN = "4000056655665556"
CVV = "7319"
TOKEN = "tok_9Zx8Yw7Vu6"


def _secrets() -> dict[str, re.Pattern[str]]:
    basic = base64.b64encode(f"{API_KEY}:".encode()).decode()
    hook_basic = base64.b64encode(f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}".encode()).decode()
    literal = {
        "api key": API_KEY,
        "basic value": basic,
        "webhook password": WEBHOOK_PASSWORD,
        "webhook basic value": hook_basic,
        "card number": PAN,
        "card token": TOKEN,
        "jwe plaintext": "cardInfo",
    }
    patterns = {name: re.compile(re.escape(value)) for name, value in literal.items()}
    # a CVV is short: match it only as a number of its own, not inside ids, ports or timings
    patterns["cvv"] = re.compile(rf"(?<![0-9A-Za-z.]){CVV}(?![0-9A-Za-z.])")
    return patterns


def test_no_log_record_carries_a_key_a_card_a_cvv_or_the_webhook_password(
    caplog: pytest.LogCaptureFixture,
    sandbox: SandboxServer,
    webhook_receiver: WebhookReceiver,
    make_juspay_client: Callable[..., JuspayClient],
) -> None:
    state = sandbox.state
    state.seed_mandate(mandate_id="card1", customer_id=CUSTOMER, payment_method_type="CARD")
    state.seed_payout(
        payout_order(
            "po1", CUSTOMER, card_fulfillment("10", fid="f1"), card_fulfillment("10", fid="f2")
        )
    )
    client = make_juspay_client()
    card = CardNumber(PAN, "12", "2030", name="Log Test", security_code=CVV)
    caplog.set_level(logging.DEBUG)  # the root: every logger, httpx and httpcore included
    for quieted in ("httpx", "httpcore"):  # billing's log set-up quiets them (one line per call)
        caplog.set_level(logging.DEBUG, logger=quieted)

    client.execute_mandate(
        order_id="ord1", amount=Decimal(10), customer_id=CUSTOMER, mandate_id="card1"
    )
    client.order_status("ord1", customer_id=CUSTOMER)
    client.attempt_payout("po1", customer_id=CUSTOMER, fulfillment_id="f1", card=card)
    client.attempt_payout("po1", customer_id=CUSTOMER, fulfillment_id="f2", card=CardToken(TOKEN))
    with pytest.raises(GatewayError):  # E01: f1 is no longer retriable
        client.attempt_payout("po1", customer_id=CUSTOMER, fulfillment_id="f1", card=card)
    with pytest.raises(AuthenticationFailed):
        make_juspay_client(api_key="wrong").attempt_payout(
            "po1", customer_id=CUSTOMER, fulfillment_id="f1", card=card
        )
    state.faults.add(Fault(kind="timeout_after", endpoint="txns", seconds=0.8))
    with pytest.raises(OutcomeUnknown):
        client.execute_mandate(
            order_id="ord2", amount=Decimal(10), customer_id=CUSTOMER, mandate_id="card1"
        )
    state.faults.add(Fault(kind="drop_before", endpoint="order_status"))
    with pytest.raises(OutcomeUnknown):
        client.order_status("ord2", customer_id=CUSTOMER)
    wait_until(lambda: len(webhook_receiver.events()) >= 2, what="webhook deliveries")
    assert webhook_receiver.received[0]["credentials"] == f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}"

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = list(caplog.records)
    assert {r.name for r in records} >= {"billing.gateway", "httpx"}
    assert any(r.name.startswith("httpcore") for r in records)
    for record in records:
        text = formatter.format(record) + repr(record.args)
        for name, pattern in _secrets().items():
            assert not pattern.search(text), f"{name} leaked by {record.name}: {text[:200]}"
