"""The receiver's pure parser and redaction: samples, loose types, refusals naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.webhooks.parse import MAX_DEPTH, Refusal, decode, parse_ec, parse_payout
from billing.webhooks.redact import REDACTED, looks_like_card_number, redact
from tests.payout_samples import sample as payout_sample
from tests.seed_samples import SAMPLES, sample


def attempt(body: bytes | dict[str, Any], *, payout: bool = False) -> Refusal | None:
    """The parser's refusal of a body, or None when it is accepted."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        (parse_payout if payout else parse_ec)(decode(raw))
    except Refusal as refused:
        return refused
    return None


def refusal(body: bytes | dict[str, Any], *, payout: bool = False) -> Refusal:
    refused = attempt(body, payout=payout)
    assert refused is not None, "accepted"
    return refused


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_parses_with_its_content_typed(name: str) -> None:
    event = parse_ec(decode(SAMPLES[name]))
    assert event.event_name == name
    assert event.id.startswith("evt_V2_")
    assert event.date_created.tzinfo is UTC
    content = event.content
    if name.startswith("MANDATE_"):
        assert content.mandate is not None
        assert content.mandate.mandate_id == "eBWQNiQgeG7fdrXPPXtVbL"
        assert content.mandate.customer_id == "cst_9uiehncjizlfcnps"
        assert content.mandate.payment_method_type == "UPI"
    elif name.startswith("ORDER_"):
        assert content.order is not None
        assert content.order.txn_object_type == "EMANDATE_REGISTER"
        assert content.order.mandate is not None
    else:
        assert content.notification is not None
        assert content.notification.object_reference_id == "2QNPw8KSbpHL122bNPgAK07"
        assert content.notification.amount == Decimal("1.00")


def test_loose_types_are_read_as_juspay_sends_them() -> None:
    failed = parse_ec(decode(SAMPLES["ORDER_FAILED"])).content.order
    succeeded = parse_ec(decode(SAMPLES["ORDER_SUCCEEDED"])).content.order
    assert failed is not None
    assert succeeded is not None
    assert (failed.status_id, succeeded.status_id) == (26, 21)  # "26" and 21
    assert (failed.amount, succeeded.amount) == (Decimal("1.00"), Decimal("1.00"))  # "1" and 1
    assert failed.status == "AUTHENTICATION_FAILED"  # order.status, not txn_detail's CHARGED
    body = sample("ORDER_SUCCEEDED")
    body["content"]["order"]["status_id"] = "21"
    body["content"]["order"]["mandate"]["revokable_by_customer"] = "true"
    order = parse_ec(body).content.order
    assert order is not None
    assert order.status_id == 21


def test_an_unknown_event_needs_only_a_well_formed_envelope() -> None:
    event = parse_ec(
        {"id": "evt_1", "event_name": "REFUND_SUCCEEDED", "date_created": 1700000000, "content": {}}
    )
    assert event.content.order is None
    assert event.content.mandate is None
    assert event.date_created == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b"\xff\xfe{}", 400, None),
        (b"", 400, None),
        (b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5), 400, None),
        (b"[" * 100_000, 400, None),
    ],
)
def test_unreadable_bodies_are_400(body: bytes, status: int, field: str | None) -> None:
    refused = refusal(body)
    assert (refused.status, refused.field) == (status, field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("id"), "id"),
        (lambda b: b.update(id=""), "id"),
        (lambda b: b.update(id={"a": 1}), "id"),
        (lambda b: b.update(id="x" * 129), "id"),
        (lambda b: b.update(id="evt\x00"), "id"),
        (lambda b: b.pop("event_name"), "event_name"),
        (lambda b: b.update(event_name=True), "event_name"),
        (lambda b: b.pop("date_created"), "date_created"),
        (lambda b: b.update(date_created="yesterday"), "date_created"),
        (lambda b: b.update(date_created="0001-01-01T00:00:00+05:00"), "date_created"),
        (lambda b: b.update(date_created=10**30), "date_created"),
        (lambda b: b.pop("content"), "content"),
        (lambda b: b.update(content=[1]), "content"),
        (lambda b: b["content"].pop("order"), "content.order"),
        (lambda b: b["content"]["order"].pop("amount"), "content.order.amount"),
        (lambda b: b["content"]["order"].update(amount="1e999"), "content.order"),
        (lambda b: b["content"]["order"].update(amount="1.234"), "content.order.amount"),
        (lambda b: b["content"]["order"].update(status_id="twenty"), "content.order.status_id"),
        (lambda b: b["content"]["order"]["mandate"].update(max_amount=[]), "content.order.mandate"),
        (lambda b: b["content"]["order"].update(txn_detail=7), "content.order.txn_detail"),
    ],
)
def test_a_missing_or_malformed_field_is_422_naming_it(change: Any, field: str) -> None:
    body = sample("ORDER_FAILED")
    change(body)
    refused = refusal(body)
    assert refused.status == 422
    assert refused.field is not None
    assert refused.field.startswith(field)
    assert refused.body() == {"error": refused.error, "field": refused.field}


def test_mandate_and_notification_content_errors_name_the_field() -> None:
    mandate = sample("MANDATE_CREATED")
    del mandate["content"]["mandate"]["mandate_id"]
    assert refusal(mandate).field == "content.mandate.mandate_id"
    notification = sample("NOTIFICATION_FAILED")
    notification["content"]["notification"]["status"] = None
    assert refusal(notification).field == "content.notification.status"


def test_payout_envelopes_are_juspays_and_malformed_ones_name_the_field() -> None:
    """Juspay's sample `webhooks/txn-success.json` (tests/payout_samples.py)."""
    body = payout_sample("WEBHOOK_TXN_SUCCESS")
    event = parse_payout(body)
    assert (event.id, event.category, event.label, event.value) == (
        "e0dbf4b217e4530bf202091bb1f653",
        "INFO",
        "FULFILLMENT_TXN",
        "SUCCESS",
    )
    assert event.at == datetime(2020, 5, 29, 7, 28, tzinfo=UTC)
    assert event.content.transaction is not None
    assert event.content.transaction.fulfillment_id == "95eb968ccdd4f2d9ef31c3e972ca40-f1"
    for name in ("id", "category", "label", "value", "info"):
        broken = dict(body)
        del broken[name]
        assert refusal(broken, payout=True).field == name
    old_shape = {**body, "value": {"id": "f1", "status": "FAILURE"}}  # a status, not an object
    assert refusal(old_shape, payout=True).field == "value"
    no_fulfillment = payout_sample("WEBHOOK_TXN_SUCCESS")
    del no_fulfillment["info"]["FulfillmentId"]
    assert refusal(no_fulfillment, payout=True).field == "info.FulfillmentId"
    assert refusal({**body, "info": {**body["info"], "updatedAt": "soon"}}, payout=True).field == (
        "info.updatedAt"
    )


def test_card_numbers_are_masked_and_cvvs_dropped_before_storing() -> None:
    value = {
        "orderId": "4111111111111111",  # an id: kept even though it passes Luhn
        "cardInfo": {"cardNumber": "4111 1111 1111 1111", "cardSecurityCode": "123", "name": "A"},
        "note": "4242424242424242",
        "amount": 100,
        "list": [{"pan": 5555555555554444}, "not a card 1234"],
    }
    redacted, changed = redact(value)
    assert changed
    assert redacted == {
        "orderId": "4111111111111111",
        "cardInfo": {"cardNumber": "XXXXXXXXXXXX1111", "cardSecurityCode": REDACTED, "name": "A"},
        "note": "XXXXXXXXXXXX4242",
        "amount": 100,
        "list": [{"pan": "XXXXXXXXXXXX4444"}, "not a card 1234"],
    }
    for name in SAMPLES:
        assert redact(json.loads(SAMPLES[name])) == (json.loads(SAMPLES[name]), False)


def test_a_card_number_inside_a_text_or_a_list_is_masked_too() -> None:
    # Found by the fuzz suite (tests/e2e/test_chaos.py): a free-text field naming a card was
    # stored in clear, and so was a bare card number as an item of a list.
    value = {
        "note": "paid with 4111 1111 1111 1111 today",
        "items": ["4242424242424242", 7],
        "reference_id": "ref 4111 1111 1111 1111",
        "text": "order 1234567 of 2021",
    }
    redacted, changed = redact(value)
    assert changed
    assert redacted == {
        "note": "paid with XXXXXXXXXXXX1111 today",
        "items": ["XXXXXXXXXXXX4242", 7],
        "reference_id": "ref 4111 1111 1111 1111",  # under an id key: kept
        "text": "order 1234567 of 2021",
    }


def test_a_cvv_inside_a_text_is_dropped_too() -> None:
    # Found by the long fuzz run (4 of 100,000 bodies): a mutation turned an object holding a
    # CVV into its text (a JSON or Python dict inside a string, as payment payloads embed
    # gateway responses), and the CVV's value was stored in clear.
    value = {
        "gateway_response": "{'card_number': 'XXXX', 'cvv': '123', 'note': 'x'}",
        "embedded": json.dumps({"CVV2": "4567", "cvc": 321}),
        "form": "card_cvv=999&amount=100",
        "text": "cvv count: 3 of 10; price: 123; cvvx: 456",
    }
    redacted, changed = redact(value)
    assert changed
    assert redacted == {
        "gateway_response": f"{{'card_number': 'XXXX', 'cvv': '{REDACTED}', 'note': 'x'}}",
        "embedded": json.dumps({"CVV2": REDACTED, "cvc": 321}).replace("321", REDACTED),
        "form": f"card_cvv={REDACTED}&amount=100",
        "text": "cvv count: 3 of 10; price: 123; cvvx: 456",  # no CVV value here
    }


def test_a_card_number_with_a_blank_between_every_digit_is_masked() -> None:
    # The quick "no three digits here" exit of scrub must not skip this spelling.
    spaced = " ".join("4111111111111111")
    assert redact({"note": f"card {spaced} end"}) == ({"note": "card XXXXXXXXXXXX1111 end"}, True)


def test_the_luhn_check() -> None:
    assert looks_like_card_number("4111-1111-1111-1111")
    assert not looks_like_card_number("4111111111111112")
    assert not looks_like_card_number("411111111111")  # 12 digits
    assert not looks_like_card_number(True)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
NAMES = st.sampled_from([*SAMPLES, "ORDER_REFUNDED", "", "MANDATE_X"])


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()))
def test_the_parser_refuses_anything_with_a_refusal_never_a_crash(body: bytes) -> None:
    for payout in (False, True):
        refused = attempt(body, payout=payout)
        assert refused is None or refused.status in (400, 422)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(SAMPLES)), path=st.lists(st.text(max_size=3)), junk=JSON)
def test_mutated_samples_parse_or_are_refused_naming_a_field(
    name: str, path: list[str], junk: object
) -> None:
    body = sample(name)
    node: Any = body
    for step in path:  # walk down to some object, then overwrite or delete one of its keys
        keys = list(node) if isinstance(node, dict) else []
        if not keys:
            break
        key = keys[hash(step) % len(keys)]
        if not isinstance(node[key], dict) or step == "":
            if step.startswith("d"):
                del node[key]
            else:
                node[key] = junk
            break
        node = node[key]
    refused = attempt(body)
    assert refused is None or (refused.status, bool(refused.field)) == (422, True)
