"""Every Juspay sample from the seeds, posted over HTTP, and the registry / debit / notification
state it leaves. Samples are posted verbatim unless a test says what it changes and why."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.services.mandates import registry
from billing.store.models import Debit, MandateChange, Notification, Order
from tests.conftest import FakeClock
from tests.integration import test_webhook_receiver as hooks
from tests.integration.test_webhook_receiver import (
    Receiver,
    mandate_event,
    seed_debit,
    seed_mandate,
    seed_pdn,
)
from tests.seed_samples import SAMPLES, sample

receiver_factory, receiver = hooks.receiver_factory, hooks.receiver  # the fixtures

SAMPLE_MANDATE = "eBWQNiQgeG7fdrXPPXtVbL"
PDN_MANDATE, PDN_REFERENCE = "4rKxSj3bNXs7RQcdtajAkb", "2QNPw8KSbpHL122bNPgAK07"


def debit_state(receiver: Receiver, debit_id: int) -> str:
    with receiver.container.sessions() as session:
        return session.get_one(Debit, debit_id).state


# -- MANDATE_* -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("MANDATE_CREATED", "CREATED"),
        ("MANDATE_ACTIVATED", "ACTIVE"),
        ("MANDATE_PAUSED", "PAUSED"),
        ("MANDATE_REVOKED", "REVOKED"),
        ("MANDATE_EXPIRED", "EXPIRED"),
        ("MANDATE_FAILED", "FAILURE"),
    ],
)
def test_each_mandate_sample_registers_the_mandate_with_its_status_and_terms(
    receiver: Receiver, name: str, status: str
) -> None:
    assert receiver.post(SAMPLES[name]).status_code == 200
    mandate = receiver.mandate(SAMPLE_MANDATE)
    assert mandate is not None
    assert (mandate.status, mandate.customer_id) == (status, "cst_9uiehncjizlfcnps")
    assert (mandate.frequency, mandate.amount_rule, mandate.payment_method_type) == (
        "MONTHLY",
        "VARIABLE",
        "UPI",
    )
    # No rule in the sample: ON the start date's day (default_rule); epoch dates in Kolkata.
    assert (mandate.rule_type, mandate.rule_value) == ("ON", 18)
    assert (mandate.start_date, mandate.end_date) == (date(2021, 12, 18), date(2068, 1, 10))
    assert mandate.max_amount == Decimal("399.00")
    # VARIABLE without a plan amount: registered, never scheduled (SPEC §2).
    assert mandate.plan_amount is None
    assert mandate.next_cycle_at is None
    assert registry.is_unscheduled(mandate) is (status in ("CREATED", "ACTIVE", "PAUSED"))
    assert mandate.status_at == datetime(2021, 12, 18, 10, 15, 35, tzinfo=UTC)
    assert receiver.event("evt_V2_a2f864be94fb4fde88cd1056cbf88beb").state == "PROCESSED"


def test_the_mandate_samples_in_their_lifecycle_order_move_one_mandate(
    receiver: Receiver,
) -> None:
    # The six samples share one id (and one date): as Juspay sends them, the second would be
    # a duplicate. Each gets its own id here; the date stays the sample's.
    seen = []
    names = ("MANDATE_CREATED", "MANDATE_ACTIVATED", "MANDATE_PAUSED", "MANDATE_ACTIVATED",
             "MANDATE_REVOKED", "MANDATE_EXPIRED")  # fmt: skip
    for index, name in enumerate(names):
        body = mandate_event(name, f"evt_{index}", sample(name)["date_created"])
        assert receiver.post(body).json() == {"status": "stored", "id": f"evt_{index}"}
        mandate = receiver.mandate(SAMPLE_MANDATE)
        assert mandate is not None
        seen.append(mandate.status)
    assert seen == ["CREATED", "ACTIVE", "PAUSED", "ACTIVE", "REVOKED", "REVOKED"]
    with receiver.container.sessions() as session:
        changes = session.scalars(select(MandateChange).order_by(MandateChange.id)).all()
    assert [c.source for c in changes] == ["webhook"] * 4
    assert receiver.errors == []


def test_a_mandate_already_in_the_registry_keeps_its_terms_and_moves_status(
    receiver: Receiver,
) -> None:
    seed_mandate(receiver.container, SAMPLE_MANDATE, amount_rule="FIXED", max_amount="250",
                 amount="250", frequency="MONTHLY", rule_type="ON", rule_value=5,
                 start_date="2027-01-01", status="ACTIVE")  # fmt: skip
    receiver.post(SAMPLES["MANDATE_PAUSED"])
    mandate = receiver.mandate(SAMPLE_MANDATE)
    assert mandate is not None
    assert (mandate.status, mandate.max_amount, mandate.rule_value) == (
        "PAUSED",
        Decimal("250.00"),
        5,
    )


# -- ORDER_* of registrations --------------------------------------------------------------------


def test_order_succeeded_for_a_known_mandate_activates_it(receiver: Receiver) -> None:
    seed_mandate(receiver.container, "3XMEcS******Ybzj", status="PENDING")
    assert receiver.post(SAMPLES["ORDER_SUCCEEDED"]).status_code == 200
    mandate = receiver.mandate("3XMEcS******Ybzj")
    assert mandate is not None
    assert mandate.status == "ACTIVE"


def test_order_succeeded_verbatim_for_a_new_mandate_is_poisoned_naming_the_masked_end_date(
    receiver: Receiver,
) -> None:
    # Juspay's sample masks end_date as "160***10": no terms can be read from it.
    assert receiver.post(SAMPLES["ORDER_SUCCEEDED"]).status_code == 200
    event = receiver.event("evt_V2_4b83ba211443b53fc020d4c")
    assert event.state == "POISONED"
    assert event.attempts == 1
    assert event.last_error is not None
    assert event.last_error.startswith("content.order.mandate.end_date: ")
    assert receiver.mandate("3XMEcS******Ybzj") is None


def test_order_succeeded_registers_a_new_mandate_from_the_order(receiver: Receiver) -> None:
    body = sample("ORDER_SUCCEEDED")
    body["content"]["order"]["mandate"]["end_date"] = "1630000000"  # unmasked: 2021-08-26
    receiver.post(body)
    mandate = receiver.mandate("3XMEcS******Ybzj")
    assert mandate is not None
    assert (mandate.status, mandate.customer_id, mandate.payment_method_type) == (
        "ACTIVE",
        "cst_lz*****okv",  # from the order: the mandate block has none
        "UPI",
    )
    assert (mandate.frequency, mandate.rule_type, mandate.rule_value) == ("MONTHLY", "AFTER", 30)
    assert (mandate.max_amount, mandate.amount_rule) == (Decimal("1000.00"), "VARIABLE")


def test_order_failed_verbatim_registers_the_mandate_as_failed(receiver: Receiver) -> None:
    receiver.post(SAMPLES["ORDER_FAILED"])
    mandate = receiver.mandate("2K6Nap******5KWPjK15")
    assert mandate is not None
    assert (mandate.status, mandate.customer_id, mandate.frequency) == (
        "FAILURE",
        "FILTERED",
        "ASPRESENTED",
    )
    assert (mandate.payment_method_type, mandate.max_amount) == ("CARD", Decimal("10.00"))


def test_a_late_registration_failure_does_not_end_an_active_mandate(receiver: Receiver) -> None:
    seed_mandate(receiver.container, "2K6Nap******5KWPjK15", status="ACTIVE")
    receiver.post(SAMPLES["ORDER_FAILED"])
    mandate = receiver.mandate("2K6Nap******5KWPjK15")
    assert mandate is not None
    assert mandate.status == "ACTIVE"
    assert receiver.event("evt_V2_6e76c650ff214edc87763234b958fabd").outcome == (
        "mandate 2K6Nap******5KWPjK15 stays ACTIVE (FAILURE not applied)"
    )


# -- ORDER_* of debits ---------------------------------------------------------------------------


def debit_order_event(order_id: str, amount: str, *, succeeded: bool = True) -> dict[str, object]:
    """A sample ORDER_* rewritten as the event of one of our debit orders."""
    body = sample("ORDER_SUCCEEDED" if succeeded else "ORDER_FAILED")
    body["id"] = f"evt_{order_id}_{succeeded}"
    order = body["content"]["order"]
    order.update(order_id=order_id, amount=amount)
    order["txn_detail"].update(order_id=order_id, txn_object_type="EMANDATE_PAYMENT")
    return body


@pytest.mark.parametrize(
    ("amount", "succeeded", "state"),
    [
        ("399.00", True, "CHARGED"),
        ("399", True, "CHARGED"),
        ("1.00", True, "MANUAL_REVIEW"),  # not the amount we sent: believed by nobody
        ("399.00", False, "RETRY_SCHEDULED"),  # AUTHENTICATION_FAILED: a soft failure
    ],
)
def test_an_order_event_of_a_debit_settles_it_by_the_state_machine(
    receiver: Receiver, clock: FakeClock, amount: str, succeeded: bool, state: str
) -> None:
    seed_mandate(receiver.container, "card1", payment_method_type="CARD")
    debit_id = seed_debit(receiver.container, "card1", state="PENDING", flow="juspay",
                          amount="399", planned_at=clock() + timedelta(hours=1),
                          order_id="card1c0t1")  # fmt: skip
    receiver.post(debit_order_event("card1c0t1", amount, succeeded=succeeded))
    assert debit_state(receiver, debit_id) == state
    with receiver.container.sessions() as session:
        order = session.scalars(select(Order).where(Order.order_id == "card1c0t1")).one()
    if state == "CHARGED":
        assert (order.state, order.next_check_at) == ("SETTLED", None)  # polling stops
    assert receiver.errors == []


def test_an_order_event_for_an_unknown_debit_order_is_ignored(receiver: Receiver) -> None:
    receiver.post(debit_order_event("nobody1", "5.00"))
    event = receiver.event("evt_nobody1_True")
    assert (event.state, event.outcome) == (
        "IGNORED",
        "order nobody1 is not one of our debit orders",
    )


# -- NOTIFICATION_* ------------------------------------------------------------------------------


@pytest.fixture
def merchant_pdn(receiver: Receiver, clock: FakeClock) -> int:
    """Our merchant-flow PDN with the samples' object_reference_id, its debit NOTIFYING."""
    clock.set(datetime(2020, 7, 24, 10, 0, tzinfo=UTC))  # the samples' date_created is 10:42
    seed_mandate(receiver.container, PDN_MANDATE)
    planned = datetime(2020, 7, 26, 4, 30, tzinfo=UTC)
    debit_id = seed_debit(receiver.container, PDN_MANDATE, state="NOTIFYING", flow="merchant",
                          amount="1", planned_at=planned)  # fmt: skip
    seed_pdn(receiver.container, PDN_REFERENCE, debit_id, txn_date=planned)
    return debit_id


def notification_status(receiver: Receiver) -> str:
    with receiver.container.sessions() as session:
        return session.scalars(
            select(Notification.status).where(Notification.reference == PDN_REFERENCE)
        ).one()


def test_notification_succeeded_for_our_pdn_lets_the_debit_execute(
    receiver: Receiver, merchant_pdn: int
) -> None:
    receiver.post(SAMPLES["NOTIFICATION_SUCCEEDED"])
    assert notification_status(receiver) == "SUCCESS"
    assert debit_state(receiver, merchant_pdn) == "NOTIFIED"
    with receiver.container.sessions() as session:
        debit = session.get_one(Debit, merchant_pdn)
    assert debit.due_at == datetime(2020, 7, 26, 4, 30, tzinfo=UTC)  # 24 h after is earlier


def test_notification_failed_for_our_pdn_plans_a_new_one(
    receiver: Receiver, merchant_pdn: int
) -> None:
    receiver.post(SAMPLES["NOTIFICATION_FAILED"])
    assert notification_status(receiver) == "FAILURE"
    assert debit_state(receiver, merchant_pdn) == "PLANNED"


@pytest.fixture
def juspay_flow_debit(receiver: Receiver, clock: FakeClock) -> int:
    """A juspay-flow debit of the PDN samples' mandate, pending on Juspay for 1.00 on the day
    the samples' txn_date (1634057114) announces: 2021-10-12 in Kolkata."""
    clock.set(datetime(2021, 10, 11, 2, 0, tzinfo=UTC))
    seed_mandate(receiver.container, PDN_MANDATE)
    return seed_debit(receiver.container, PDN_MANDATE, state="PENDING", flow="juspay",
                      amount="1", planned_at=datetime(2021, 10, 12, 4, 30, tzinfo=UTC),
                      order_id="pdn1c0t1")  # fmt: skip


def test_juspays_own_pdn_failing_gives_the_debit_a_new_order(
    receiver: Receiver, juspay_flow_debit: int
) -> None:
    receiver.post(SAMPLES["NOTIFICATION_FAILED"])
    assert debit_state(receiver, juspay_flow_debit) == "RETRY_SCHEDULED"
    event = receiver.event("evt_V2_bc933a28ee5948be9f2939caac09d9")
    assert event.outcome == (f"Juspay's notification {PDN_REFERENCE} failed: RETRY_SCHEDULED")


def test_juspays_own_pdn_succeeding_changes_nothing(
    receiver: Receiver, juspay_flow_debit: int
) -> None:
    receiver.post(SAMPLES["NOTIFICATION_SUCCEEDED"])
    assert debit_state(receiver, juspay_flow_debit) == "PENDING"
    event = receiver.event("evt_V2_bc933a28ee5948be9f2939caac09d9")
    assert (event.state, event.outcome) == (
        "PROCESSED",
        f"Juspay's notification {PDN_REFERENCE} SUCCESS: nothing to do",
    )


def test_a_pdn_failure_for_another_day_does_not_end_the_order_that_replaced_it(
    receiver: Receiver, juspay_flow_debit: int
) -> None:
    body = sample("NOTIFICATION_FAILED")
    body["content"]["notification"]["source_info"]["txn_date"] = "1633900000"  # 2021-10-11
    receiver.post(body)
    assert debit_state(receiver, juspay_flow_debit) == "PENDING"
    # Kept for review: a PDN failure matching no pending order changes nothing.
    assert receiver.event("evt_V2_bc933a28ee5948be9f2939caac09d9").state == "UNMATCHED"


def test_a_juspay_pdn_failure_without_its_day_changes_nothing_and_is_kept_for_review(
    receiver: Receiver, juspay_flow_debit: int
) -> None:
    body = sample("NOTIFICATION_FAILED")
    del body["content"]["notification"]["source_info"]["txn_date"]
    receiver.post(body)
    assert debit_state(receiver, juspay_flow_debit) == "PENDING"  # not guessed: no day, no match
    event = receiver.event("evt_V2_bc933a28ee5948be9f2939caac09d9")
    assert event.state == "UNMATCHED"
    assert event.outcome is not None
    assert "for review" in event.outcome
