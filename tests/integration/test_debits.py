"""The debit lifecycle against the sandbox over HTTP, driven by `tick` and one clock.

Every scenario ends by checking the sandbox's ledger: money actually moved exactly as often
as `billing` believes it did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.domain.mandate import MandateStatus
from billing.gateway import parse_order
from billing.services.debits.execution import cancel_debit
from billing.services.debits.planning import plan_debits
from billing.services.mandates import registry
from tests.integration.billing_harness import Harness

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
# MONTHLY ON 5 at 10:00 Asia/Kolkata
PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)
LEAD = timedelta(hours=26)


def test_a_card_debit_is_charged_once(harness: Harness) -> None:
    harness.add_mandate("card1")
    harness.tick(T0)
    debit = harness.debit("card1")
    assert (debit.state, debit.due_at) == ("PLANNED", PLANNED - LEAD)
    harness.tick(PLANNED - LEAD)  # the juspay flow calls execution the lead ahead
    debit = harness.debit("card1")
    assert debit.state == "PENDING"  # Juspay is sending its PDN and waits 24 h
    [order] = harness.orders(debit.id)
    assert order.created_at == PLANNED - LEAD
    assert order.execution_date == PLANNED
    harness.run_until(PLANNED + timedelta(hours=2))
    assert harness.debit("card1").state == "CHARGED"
    assert harness.charged_total("card1") == Decimal("399.00")
    assert len(harness.ledger("card1")) == 1


def test_a_soft_card_decline_is_retried_the_next_day_and_charged(harness: Harness) -> None:
    harness.add_mandate("card2", rule_type="AFTER")  # window: 5th to the end of the month
    harness.fault(kind="fail", endpoint="txns", key="card2", error_code="51",
                  error_message="Insufficient funds")  # fmt: skip
    harness.run_until(PLANNED + timedelta(minutes=5))
    debit = harness.debit("card2")
    assert debit.state == "RETRY_SCHEDULED"
    # the failure is seen at the first check after the execution date, the retry a day later
    failed_seen_at = PLANNED + timedelta(minutes=1)
    assert debit.due_at == failed_seen_at + timedelta(days=1)
    harness.run_until(PLANNED + timedelta(days=3))
    debit = harness.debit("card2")
    assert debit.state == "CHARGED"
    orders = harness.orders(debit.id)
    assert [o.try_number for o in orders] == [1, 2]
    assert orders[0].order_id != orders[1].order_id
    assert orders[1].created_at == failed_seen_at + timedelta(days=1)
    assert len(harness.ledger("card2")) == 1


def test_a_hard_decline_is_not_retried(harness: Harness) -> None:
    harness.add_mandate("card3", rule_type="AFTER")
    harness.fault(kind="fail", endpoint="txns", key="card3", error_code="14",
                  error_message="Invalid card number")  # fmt: skip
    harness.run_until(PLANNED + timedelta(days=5))
    debit = harness.debit("card3")
    assert debit.state == "FAILED"
    assert debit.tries == 1
    assert harness.ledger("card3") == []


def test_a_upi_debit_stays_pending_polled_on_the_back_off_then_charged(
    harness: Harness,
) -> None:
    harness.add_mandate("upi1", payment_method_type="UPI", amount_rule="VARIABLE",
                        max_amount="1000", amount="499.50")  # fmt: skip
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)
    debit = harness.debit("upi1")
    [order] = harness.orders(debit.id)
    checks = []
    while harness.debit("upi1").state == "PENDING" and harness.clock() < PLANNED + LEAD:
        [order] = harness.orders(debit.id)
        assert order.next_check_at is not None
        checks.append(order.next_check_at - harness.clock())
        harness.tick(order.next_check_at)
    assert checks[:4] == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                          timedelta(hours=1)]  # fmt: skip
    assert harness.debit("upi1").state == "CHARGED"
    assert harness.charged_total("upi1") == Decimal("499.50")
    assert order.created_at <= PLANNED - LEAD


def test_juspay_notification_failure_gets_a_new_order_inside_the_window(
    harness: Harness,
) -> None:
    harness.add_mandate("upi2", payment_method_type="UPI", rule_type="AFTER")
    harness.fault(kind="fail", endpoint="pdn", key="upi2")
    harness.run_until(PLANNED + timedelta(days=4))
    debit = harness.debit("upi2")
    orders = harness.orders(debit.id)
    assert debit.state == "CHARGED"
    assert len(orders) == 2
    assert orders[0].order_id != orders[1].order_id
    assert orders[1].execution_date is not None
    assert orders[1].execution_date < debit.window_closes_at
    assert len(harness.ledger("upi2")) == 1


@pytest.mark.parametrize("pdn_failed_at_juspay", [True, False])
def test_juspay_notification_failed_reschedules_the_debit_after_reading_its_order(
    harness: Harness, pdn_failed_at_juspay: bool
) -> None:
    harness.add_mandate("upi3", payment_method_type="UPI", rule_type="AFTER")
    if pdn_failed_at_juspay:
        harness.fault(kind="fail", endpoint="pdn", key="upi3")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)
    assert harness.debit("upi3").state == "PENDING"
    result = harness.app.notifications().juspay_notification_failed(
        "upi3", amount=Decimal("399.00"), txn_date=PLANNED
    )
    assert result == "RETRY_SCHEDULED"
    harness.tick(PLANNED - LEAD + timedelta(minutes=1))
    debit = harness.debit("upi3")
    assert debit.state == "PENDING"
    # The order's own status decides before a replacement is sent: failed (JP_851) -> a new
    # order; still held by Juspay (the event was wrong, or Juspay notifies again) -> wait on it.
    assert debit.tries == (2 if pdn_failed_at_juspay else 1)


def test_merchant_flow_sends_the_pdn_then_executes_24_hours_after_its_success(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant")
    harness.add_mandate("upi4", payment_method_type="UPI")
    harness.run_until(PLANNED + timedelta(hours=2))
    debit = harness.debit("upi4")
    assert debit.state == "CHARGED"
    [notification] = harness.sandbox.state.notifications.values()
    [order] = harness.orders(debit.id)
    assert order.notification_id == notification.object_reference_id
    assert notification.succeeded_at is not None
    assert order.created_at >= notification.succeeded_at + timedelta(hours=24)
    states = [to for _, to, _ in harness.history(debit.id)]
    assert states[:4] == ["PLANNED", "NOTIFYING", "NOTIFIED", "EXECUTING"]
    assert len(harness.ledger("upi4")) == 1


def test_an_nb_debit_pending_for_days_is_charged(harness: Harness) -> None:
    harness.add_mandate("nb1", payment_method_type="NB")
    harness.fault(kind="pending", endpoint="txns", key="nb1", polls=40)
    harness.run_until(PLANNED + timedelta(days=4))
    debit = harness.debit("nb1")
    assert debit.state == "CHARGED"
    [order] = harness.orders(debit.id)
    assert order.created_at == PLANNED  # the none flow executes on the planned instant
    assert order.checks >= 40
    assert order.settled_at is not None
    assert order.settled_at - PLANNED > timedelta(days=1)
    assert len(harness.ledger("nb1")) == 1


def test_an_order_pending_past_the_max_age_goes_to_manual_review(harness: Harness) -> None:
    harness.add_mandate("nb2", payment_method_type="NB")
    harness.fault(kind="pending", endpoint="txns", key="nb2", polls=100_000)
    harness.run_until(PLANNED + timedelta(days=8))
    debit = harness.debit("nb2")
    assert debit.state == "MANUAL_REVIEW"
    [order] = harness.orders(debit.id)
    assert order.next_check_at is None
    assert harness.history(debit.id)[-1][2].startswith("still PENDING_VBV after 7 days")


def test_a_timeout_after_the_charge_is_reconciled_not_resent(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card5")
    harness.fault(kind="timeout_after", endpoint="txns", key="card5", seconds=1.5)
    harness.tick(T0)
    harness.tick(PLANNED)
    debit = harness.debit("card5")
    assert debit.state == "UNKNOWN"
    assert len(harness.ledger("card5")) == 1  # the charge happened; the answer never came
    harness.run_until(PLANNED + timedelta(minutes=5))
    debit = harness.debit("card5")
    assert debit.state == "CHARGED"
    [order] = harness.orders(debit.id)
    assert order.gateway_status == "CHARGED"
    assert len(harness.ledger("card5")) == 1
    txns_calls = [r for r in harness.sandbox.state.requests if r["path"] == "/txns"]
    assert len(txns_calls) == 1


def test_a_connection_dropped_before_the_charge_resends_the_same_order_id(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card6")
    harness.fault(kind="drop_before", endpoint="txns", key="card6")
    harness.tick(T0)
    harness.tick(PLANNED)
    assert harness.debit("card6").state == "UNKNOWN"
    assert harness.ledger("card6") == []
    harness.run_until(PLANNED + timedelta(minutes=5))
    debit = harness.debit("card6")
    assert debit.state == "CHARGED"
    [order] = harness.orders(debit.id)  # one order: the same id was sent again
    assert len(harness.ledger("card6")) == 1
    assert harness.ledger("card6")[0]["order_id"] == order.order_id
    assert "resending the same order id" in " ".join(c for *_, c in harness.history(debit.id))


def test_a_5xx_after_processing_is_reconciled(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card7")
    harness.fault(kind="http_error", endpoint="txns", key="card7", status=502, after=True)
    harness.run_until(PLANNED + timedelta(minutes=5))
    assert harness.debit("card7").state == "CHARGED"
    assert len(harness.ledger("card7")) == 1


def test_a_paused_mandate_skips_the_debit_whose_window_passes(harness: Harness) -> None:
    harness.add_mandate("card8")
    harness.tick(T0)
    with harness.app.sessions() as session, session.begin():
        mandate = registry.require(session, "card8")
        registry.apply_status(
            session, mandate, MandateStatus.PAUSED, now=T0, calendar=harness.app.calendar,
            source="test",
        )  # fmt: skip
    harness.run_until(PLANNED + timedelta(days=2))
    debit = harness.debit("card8")
    assert debit.state == "SKIPPED"
    assert harness.ledger("card8") == []


def test_a_revoked_mandate_gets_no_further_debits(harness: Harness) -> None:
    harness.add_mandate("card9", frequency="DAILY", rule_type="", rule_value="", max_amount="10")
    harness.run_until(T0 + timedelta(days=2))
    charged_before = len(harness.ledger("card9"))
    assert charged_before >= 1
    with harness.app.sessions() as session, session.begin():
        mandate = registry.require(session, "card9")
        registry.apply_status(
            session, mandate, MandateStatus.REVOKED, now=harness.clock(),
            calendar=harness.app.calendar, source="test",
        )  # fmt: skip
    harness.run_until(T0 + timedelta(days=6))
    states = {d.state for d in harness.debits("card9")}
    assert states <= {"CHARGED", "SKIPPED", "PENDING"}
    assert (
        plan_debits(harness.app.sessions, harness.app.planning, now=harness.clock()).debits_created
        == 0
    )
    assert len(harness.ledger("card9")) <= charged_before + 1  # at most the one in flight


@pytest.mark.parametrize("field", ["amount", "order_id"])
def test_a_status_whose_amount_or_id_disagrees_goes_to_manual_review(
    harness_factory: Callable[..., Harness], field: str
) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card10")
    harness.fault(kind="timeout_after", endpoint="txns", key="card10", seconds=1.5)
    harness.tick(T0)
    harness.tick(PLANNED)
    debit = harness.debit("card10")
    [order] = harness.orders(debit.id)
    status = {"order_id": order.order_id, "status": "CHARGED", "status_id": 21, "amount": "399.00"}
    status[field] = "1.00" if field == "amount" else "someone_else"
    result = harness.app.debits().settle_from_status(
        order.order_id, parse_order(status), source="test"
    )
    assert result == "MANUAL_REVIEW"


def test_no_retry_of_ours_while_juspay_is_still_retrying_the_order(harness: Harness) -> None:
    harness.add_mandate("upi6", payment_method_type="UPI", rule_type="AFTER")
    # Juspay's first try fails and it keeps retrying silently; after 6 polls it charges.
    harness.fault(kind="silent_retry", endpoint="txns", key="upi6", polls=6, then="CHARGED")
    harness.run_until(PLANNED + timedelta(days=3))
    debit = harness.debit("upi6")
    assert debit.state == "CHARGED"
    assert debit.tries == 1  # we never sent a second order while Juspay was retrying
    assert len([r for r in harness.sandbox.state.requests if r["path"] == "/txns"]) == 1
    [order] = harness.orders(debit.id)
    assert order.checks >= 6  # it was seen failed-but-retrying several times, and waited
    assert len(harness.ledger("upi6")) == 1


def test_a_pdn_whose_answer_was_lost_is_checked_then_sent_again_under_the_same_reference(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant", stale_claim_after="10m")
    harness.add_mandate("upi7", payment_method_type="UPI")
    harness.fault(kind="drop_before", endpoint="mandates", key="upi7")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)
    debit = harness.debit("upi7")
    assert debit.state == "NOTIFYING"
    assert harness.sandbox.state.notifications == {}  # the PDN never reached Juspay
    harness.run_until(PLANNED + timedelta(hours=2))
    debit = harness.debit("upi7")
    assert debit.state == "CHARGED"
    [notification] = harness.sandbox.state.notifications.values()
    [order] = harness.orders(debit.id)
    assert order.notification_id == notification.object_reference_id
    assert len(harness.ledger("upi7")) == 1


def test_an_order_charged_after_its_failure_was_reported_is_not_charged_again(
    harness: Harness,
) -> None:
    harness.add_mandate("card11", rule_type="AFTER")
    harness.fault(kind="fail", endpoint="txns", key="card11", error_code="51")
    harness.run_until(PLANNED + timedelta(minutes=5))
    debit = harness.debit("card11")
    assert debit.state == "RETRY_SCHEDULED"
    [order] = harness.orders(debit.id)
    late = {"order_id": order.order_id, "status": "CHARGED", "status_id": 21, "amount": "399.00"}
    result = harness.app.debits().settle_from_status(
        order.order_id, parse_order(late), source="webhook"
    )
    assert result == "CHARGED"
    harness.run_until(PLANNED + timedelta(days=4))
    debit = harness.debit("card11")
    assert debit.state == "CHARGED"
    assert len(harness.orders(debit.id)) == 1  # the retry was never sent


def test_a_charge_reported_after_a_hard_failure_is_flagged_for_review(harness: Harness) -> None:
    harness.add_mandate("card12")
    harness.fault(kind="fail", endpoint="txns", key="card12", error_code="14")
    harness.run_until(PLANNED + timedelta(minutes=5))
    debit = harness.debit("card12")
    assert debit.state == "FAILED"
    [order] = harness.orders(debit.id)
    late = {"order_id": order.order_id, "status": "CHARGED", "status_id": 21, "amount": "399.00"}
    result = harness.app.debits().settle_from_status(
        order.order_id, parse_order(late), source="webhook"
    )
    assert result == "flagged (FAILED)"
    assert harness.history(debit.id)[-1][2].startswith("needs review: order")


def test_after_an_outage_past_the_notified_day_a_new_pdn_is_sent_before_executing(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant")
    harness.add_mandate("upi8", payment_method_type="UPI", rule_type="AFTER")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)  # the PDN announcing the 5th goes out
    harness.tick(PLANNED - LEAD + timedelta(minutes=5))  # ... and succeeds
    assert harness.debit("upi8").state == "NOTIFIED"
    harness.tick(PLANNED + timedelta(days=2))  # the workers were down on the 5th
    debit = harness.debit("upi8")
    assert debit.state in ("PLANNED", "NOTIFYING")  # not executed on an unannounced day
    assert harness.orders(debit.id) == []
    harness.run_until(PLANNED + timedelta(days=5))
    debit = harness.debit("upi8")
    assert debit.state == "CHARGED"
    notifications = sorted(harness.sandbox.state.notifications.values(), key=lambda n: n.created_at)
    assert len(notifications) == 2
    [order] = harness.orders(debit.id)
    assert order.notification_id == notifications[1].object_reference_id
    assert len(harness.ledger("upi8")) == 1


def test_a_rate_limited_execution_is_sent_again_under_the_same_order_id_and_never_fails(
    harness: Harness,
) -> None:
    harness.add_mandate("card429")
    harness.tick(T0)
    harness.fault(kind="http_error", endpoint="txns", key="card429", status=429, times=2)
    harness.tick(PLANNED - LEAD)
    debit = harness.debit("card429")
    assert debit.state == "PENDING"  # Juspay took the third call; 429 counted as nothing
    assert debit.tries == 1
    [order] = harness.orders(debit.id)
    sent = [r for r in harness.sandbox.state.requests if r["path"] == "/txns"]
    assert len(sent) == 3
    harness.run_until(PLANNED + timedelta(hours=2))
    assert harness.debit("card429").state == "CHARGED"
    assert [c["order_id"] for c in harness.ledger("card429")] == [order.order_id]


def test_a_batch_claims_records_and_settles_each_debit_once_and_leaves_a_moved_one_alone(
    harness: Harness,
) -> None:
    for name in ("batch1", "batch2", "batch3"):
        harness.add_mandate(name)
    harness.tick(T0)
    ids = [harness.debit(name).id for name in ("batch1", "batch2", "batch3")]
    harness.at(PLANNED - LEAD)
    cancel_debit(harness.app.sessions, lambda: harness.app.gateway, ids[2], now=harness.clock())
    debits = harness.app.debits()
    done = debits.execute_many([*ids, ids[0], 999_999])  # a repeated id, a missing one
    assert [done[i] for i in ids] == ["PENDING", "PENDING", "not executable (CANCELLED)"]
    assert done[999_999] == "missing"
    for debit_id in ids[:2]:
        [order] = harness.orders(debit_id)
        assert order.try_number == 1
        assert ("PLANNED", "EXECUTING", "executing try 1") in harness.history(debit_id)
    # The message delivered again (a worker lost before its ack): nothing is sent twice.
    again = debits.execute_many(ids)
    assert all(result.startswith("not executable") for result in again.values())
    assert harness.txns_calls() == 2
