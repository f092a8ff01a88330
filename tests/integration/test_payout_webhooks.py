"""Juspay's payout webhook samples, every label, posted verbatim to the running receiver over
HTTP, on the order they describe tracked from the sandbox; and what they leave. On SQLite and
PostgreSQL.

The samples (tests/payout_samples.py, `juspay/juspay-sdk-integration-demo@juspay-payout:
webhooks/*`) describe order `6lQuvBOixfADPpmD`, fulfillment `95eb968ccdd4f2d9ef31c3e972ca40-f1`
(ACCOUNT_IFSC on DUMMY_IMPS) on 2020-05-29 from 07:24 UTC: the sandbox holds that order as it
stood at 07:25, its first transaction failed, and billing tracks it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select

from billing.services.payouts.service import Registration, describe
from billing.store.models import PayoutOrder
from tests.integration import test_payouts as payouts_tests
from tests.integration import test_webhook_receiver as hooks
from tests.integration.sandbox_fixtures import card_fulfillment, payout_order
from tests.integration.test_payouts import PayoutHarness
from tests.payout_samples import sample

receiver_factory = hooks.receiver_factory  # the fixtures
payout_harness_factory = payouts_tests.payout_harness_factory

ORDER_ID, FULFILLMENT_ID = "6lQuvBOixfADPpmD", "95eb968ccdd4f2d9ef31c3e972ca40-f1"
BEFORE = datetime(2020, 5, 29, 7, 25, tzinfo=UTC)


def test_every_payout_label_is_stored_and_applied_like_a_status_read(
    payout_harness_factory: Callable[..., PayoutHarness],
    receiver_factory: hooks.ReceiverFactory,
) -> None:
    h = payout_harness_factory()
    h.at(BEFORE)
    h.sandbox.state.seed_payout(
        payout_order(
            ORDER_ID,
            "shubham",
            card_fulfillment("10", kind="ACCOUNT_IFSC", rail="DUMMY_IMPS", fid=FULFILLMENT_ID),
        )
    )
    h.payouts().track(Registration(ORDER_ID, "shubham"))
    tracked = h.fulfillment(FULFILLMENT_ID)
    assert (tracked.status, tracked.beneficiary_type, tracked.rail) == (
        "FAILURE",
        "ACCOUNT_IFSC",
        "DUMMY_IMPS",
    )
    receiver = receiver_factory()
    # The three VALIDATION_V2 samples share one id; the 2nd and 3rd get their own here.
    validations = [sample(name) for name in ("WEBHOOK_VALIDATION_VALID",
                                             "WEBHOOK_VALIDATION_INVALID",
                                             "WEBHOOK_VALIDATION_ERROR")]  # fmt: skip
    validations[1]["id"], validations[2]["id"] = "validation-invalid", "validation-error"
    posted = [
        (sample("WEBHOOK_READY_FOR_FULFILLMENT"), "stale: order 6lQuvBOixfADPpmD"),
        (sample("WEBHOOK_FULFILLMENTS_SCHEDULED"), "stale: order 6lQuvBOixfADPpmD"),
        (sample("WEBHOOK_PENDING"), f"applied: {FULFILLMENT_ID} INITIATED/IDLE"),
        (sample("WEBHOOK_ATTEMPTED"), f"applied: {FULFILLMENT_ID} transaction 3ec3d5491604"),
        (sample("WEBHOOK_TXN_SUCCESS"), f"applied: {FULFILLMENT_ID} transaction 3ec3d5491604"),
        (sample("WEBHOOK_FULFILLMENT_SUCCESS"), f"applied: {FULFILLMENT_ID} SUCCESS/DONE"),
        (sample("WEBHOOK_ORDER_SUCCESS"), "applied: order 6lQuvBOixfADPpmD FULFILLMENTS_SUCC"),
        *((body, "ignored: beneficiary validation") for body in validations),
    ]
    for body, outcome in posted:
        answer = receiver.post(body, path="/webhooks/juspay/payouts")
        assert answer.status_code == 200, answer.text
        event = receiver.event(body["id"])
        assert (event.kind, event.event_name) == ("payout", body["label"])
        assert (event.outcome or "").startswith(outcome), (body["label"], event.outcome)
        assert event.state == ("IGNORED" if outcome.startswith("ignored") else "PROCESSED")
    assert receiver.errors == []

    done = h.fulfillment(FULFILLMENT_ID)
    assert (done.status, done.attempt_state) == ("SUCCESS", "DONE")
    with h.app.sessions() as session:
        order = session.scalars(select(PayoutOrder)).one()
        assert (order.status, order.next_check_at) == ("FULFILLMENTS_SUCCESSFUL", None)
    (shown,) = describe(h.app.sessions, ORDER_ID)[0]["fulfillments"]
    assert [(t["status"], t["rail"]) for t in shown["transactions"]] == [
        ("FAILURE", "DUMMY_IMPS"),  # the sandbox's, before the samples
        ("SUCCESS", "DUMMY_IMPS"),  # 3ec3d...: INITIATED (attempted.json), then SUCCESS
    ]

    # delivered again, newest first: each answered 200 and nothing changes
    for body, _ in reversed(posted):
        again = receiver.post(body, path="/webhooks/juspay/payouts")
        assert again.json()["status"] == "duplicate"
    assert h.fulfillment(FULFILLMENT_ID).status == "SUCCESS"
