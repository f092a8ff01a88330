"""The debit path's holes found by review (issue 11), each a scenario the sandbox produces through
its fault and control API, over HTTP, on SQLite and PostgreSQL.

Double charge and wrong money: stale order events, Juspay's PDN failing for another debit,
Juspay's silent retry. Executions on the wrong day or the wrong mandate: outside the window, on
a mandate revoked at Juspay without a webhook. Debits that never end: a PDN stuck pending, a
paused mandate. And the smaller ones: 401 on a PDN, cancel reporting what is true, an execution
answer naming another order, the forecast of debits already due.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.domain.ids import order_id_for
from billing.domain.mandate import MandateStatus
from billing.services.debits.execution import cancel_debit
from billing.services.mandates import actions, registry
from billing.store.models import Debit, Mandate, Notification
from tests.integration.billing_harness import Harness
from tests.integration.sandbox_fixtures import API_KEY, MERCHANT_ID, wait_until
from tests.integration.test_cli_foundation import run
from tests.integration.test_webhook_sandbox import Hooked

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)  # MONTHLY ON 5 at 10:00 in Kolkata
LEAD = timedelta(hours=26)
APRIL = datetime(2027, 4, 5, 4, 30, tzinfo=UTC)
APRIL_PLANNED = APRIL - LEAD - timedelta(days=1)  # April's debit is planned by then


def skip_to_april(harness: Harness, end: datetime) -> None:
    """Nothing is due between March and April: one tick plans April, then tick what is due."""
    harness.tick(APRIL_PLANNED)
    harness.run_until(end)


@pytest.fixture
def hook(harness_factory: Callable[..., Harness]) -> Iterator[Callable[..., Hooked]]:
    """Harnesses whose sandbox posts its webhooks to a receiver that processes them at once."""
    made: list[Hooked] = []

    def make(**settings: object) -> Hooked:
        hooked = Hooked(harness_factory(**settings))
        made.append(hooked)
        return hooked

    yield make
    for hooked in made:
        hooked.server.stop()


def causes(harness: Harness, debit_id: int) -> str:
    return " | ".join(cause for *_, cause in harness.history(debit_id))


def mandate_row(harness: Harness, mandate_id: str) -> Mandate:
    with harness.app.sessions() as session:
        return registry.require(session, mandate_id)


def set_status_locally(harness: Harness, mandate_id: str, status: MandateStatus) -> None:
    """A status change reaching billing (a webhook, a sync), applied through the registry."""
    with harness.app.sessions() as session, session.begin():
        mandate = registry.require(session, mandate_id)
        registry.apply_status(
            session, mandate, status, now=harness.clock(), calendar=harness.app.calendar,
            source="test",
        )  # fmt: skip


# -- 1. order safety per order -------------------------------------------------------------------


def test_an_order_failure_dated_before_the_poll_that_saw_the_order_pending_does_not_move_it(
    hook: Callable[..., Hooked],
) -> None:
    hooked = hook(notification_flows="UPI:none")
    harness = hooked.harness
    harness.sandbox.state.webhooks.configure(hold=True)  # events arrive late, when released
    harness.add_mandate("upi1", payment_method_type="UPI", rule_type="AFTER")
    harness.fault(kind="pending", endpoint="txns", key="upi1", polls=100_000)
    harness.tick(T0)
    harness.tick(PLANNED)  # none flow: executed on the planned instant, pending at the bank
    debit = harness.debit("upi1")
    [order] = harness.orders(debit.id)
    harness.at(PLANNED + timedelta(minutes=2))  # the bank fails it: ORDER_FAILED dated now, held
    harness.control(f"orders/{order.order_id}/settle", status="AUTHORIZATION_FAILED",
                    error_code="51", error_message="Insufficient funds")  # fmt: skip
    harness.at(PLANNED + timedelta(minutes=10))  # ... and Juspay takes it up again (no event)
    harness.control(f"orders/{order.order_id}/retry", then="CHARGED", polls=3, seconds=None)
    harness.tick(PLANNED + timedelta(minutes=15))  # our poll sees the order PENDING_VBV
    assert harness.debit("upi1").state == "PENDING"

    assert harness.sandbox.state.webhooks.release(reverse=True) == 1  # the failure, 13 min late
    wait_until(hooked.settled, what="the late ORDER_FAILED processed")
    [event] = [e for e in hooked.events() if e.event_name == "ORDER_FAILED"]
    assert event.state == "PROCESSED"
    assert event.outcome is not None
    assert "stale" in event.outcome
    debit = harness.debit("upi1")
    assert debit.state == "PENDING"  # not RETRY_SCHEDULED: no second order races the first
    [order] = harness.orders(debit.id)
    assert order.next_check_at is not None  # and the first is still polled
    assert order.status_at == PLANNED + timedelta(minutes=15)

    harness.sandbox.state.webhooks.configure(hold=False)
    harness.run_until(PLANNED + timedelta(days=3))
    wait_until(hooked.settled, what="every event processed")
    debit = harness.debit("upi1")
    assert (debit.state, debit.tries) == ("CHARGED", 1)
    assert harness.txns_calls() == 1
    assert [c["order_id"] for c in harness.ledger("upi1")] == [order.order_id]
    assert hooked.errors == []


@pytest.mark.parametrize(
    ("juspay_settles_after", "seen_as"),
    [(timedelta(hours=36), "PENDING_VBV"), (timedelta(hours=2), "CHARGED")],
    ids=["still-pending", "charged"],
)
def test_before_the_next_try_the_previous_order_is_read_and_a_charged_or_pending_one_stops_it(
    harness_factory: Callable[..., Harness], juspay_settles_after: timedelta, seen_as: str
) -> None:
    harness = harness_factory(notification_flows="UPI:none")
    harness.add_mandate("upi2", payment_method_type="UPI", rule_type="AFTER")
    harness.fault(kind="fail", endpoint="txns", key="upi2", error_code="51",
                  error_message="Insufficient funds")  # fmt: skip
    harness.run_until(PLANNED + timedelta(hours=1))
    debit = harness.debit("upi2")
    assert debit.state == "RETRY_SCHEDULED"
    [order] = harness.orders(debit.id)
    # Juspay takes the failed order up again and will charge it; no event reaches billing.
    harness.control(f"orders/{order.order_id}/retry", then="CHARGED", polls=2,
                    seconds=juspay_settles_after.total_seconds())  # fmt: skip
    harness.run_until(PLANNED + timedelta(days=3))
    debit = harness.debit("upi2")
    assert (debit.state, debit.tries) == ("CHARGED", 1)
    assert harness.txns_calls() == 1  # try 2 was never sent
    assert [c["order_id"] for c in harness.ledger("upi2")] == [order.order_id]
    assert f"read before the next try: order {seen_as}" in causes(harness, debit.id)


# -- 2. Juspay's PDN failure matched to its own order ---------------------------------------------


def debit_planned(harness: Harness, mandate_id: str, planned_at: datetime) -> Debit:
    [found] = [d for d in harness.debits(mandate_id) if d.planned_at == planned_at]
    return found


def test_juspays_pdn_failure_for_a_later_debit_fails_that_debit_not_the_earlier_one(
    hook: Callable[..., Hooked],
) -> None:
    hooked = hook()
    harness = hooked.harness
    harness.sandbox.state.webhooks.configure(hold=True)
    harness.add_mandate("upid", frequency="DAILY", rule_type="", rule_value="",
                        payment_method_type="UPI", max_amount="10")  # fmt: skip
    harness.run_until(datetime(2027, 3, 4, 12, 0, tzinfo=UTC))
    fifth_at, sixth_at = PLANNED, PLANNED + timedelta(days=1)
    sixth = debit_planned(harness, "upid", sixth_at)
    harness.fault(kind="fail", endpoint="pdn", key=order_id_for("upid", sixth.cycle, 1))
    # 5 Mar 08:00 in Kolkata: the 6th's order is sent, Juspay's PDN for it fails at once, while
    # the 5th's order is pending on Juspay too.
    harness.run_until(sixth_at - LEAD + timedelta(seconds=30))
    assert debit_planned(harness, "upid", fifth_at).state == "PENDING"
    assert debit_planned(harness, "upid", sixth_at).state == "PENDING"

    harness.sandbox.state.webhooks.release(reverse=False)
    wait_until(hooked.settled, what="the held events processed")
    [failed] = [e for e in hooked.events() if e.event_name == "NOTIFICATION_FAILED"]
    assert failed.state == "PROCESSED"
    fifth = debit_planned(harness, "upid", fifth_at)
    sixth = debit_planned(harness, "upid", sixth_at)
    assert fifth.state == "PENDING"  # the 5th's order is untouched
    assert sixth.state == "RETRY_SCHEDULED"

    harness.sandbox.state.webhooks.configure(hold=False)
    harness.run_until(datetime(2027, 3, 7, 0, 0, tzinfo=UTC))
    wait_until(hooked.settled, what="every event processed")
    fifth = debit_planned(harness, "upid", fifth_at)
    sixth = debit_planned(harness, "upid", sixth_at)
    assert (fifth.state, fifth.tries) == ("CHARGED", 1)
    assert (sixth.state, sixth.tries) == ("CHARGED", 2)
    [sixth_order] = [o for o in harness.orders(sixth.id) if o.try_number == 2]
    assert sixth_order.execution_date is not None
    assert sixth_order.execution_date < sixth.window_closes_at
    charged = [c["order_id"] for c in harness.ledger("upid")]
    assert len(charged) == len(set(charged))
    assert order_id_for("upid", fifth.cycle, 1) in charged
    assert order_id_for("upid", sixth.cycle, 2) in charged
    assert hooked.errors == []


def test_a_late_or_foreign_juspay_pdn_failure_changes_no_debit_and_is_kept_when_unmatched(
    hook: Callable[..., Hooked],
) -> None:
    hooked = hook()
    harness = hooked.harness
    harness.sandbox.state.webhooks.configure(hold=True)  # Juspay's events come a day late
    harness.add_mandate("upim", payment_method_type="UPI", rule_type="AFTER")
    harness.fault(kind="fail", endpoint="pdn", key="upim")
    harness.run_until(PLANNED - LEAD + timedelta(minutes=5))  # the poll finds order 1 failed
    assert harness.debit("upim").state == "RETRY_SCHEDULED"
    harness.run_until(PLANNED - LEAD + timedelta(days=1, minutes=5))  # try 2 sent, for the 6th
    debit = harness.debit("upim")
    assert (debit.state, debit.tries) == ("PENDING", 2)
    first, second = harness.orders(debit.id)

    harness.sandbox.state.webhooks.release(reverse=False)  # the 5th's PDN failure arrives now
    wait_until(hooked.settled, what="the held events processed")
    [late] = [e for e in hooked.events() if e.event_name == "NOTIFICATION_FAILED"]
    assert late.state == "PROCESSED"
    assert late.outcome is not None
    assert f"order {first.order_id} already settled" in late.outcome
    assert (harness.debit("upim").state, harness.debit("upim").tries) == ("PENDING", 2)

    # An order placed on the mandate outside billing (the dashboard, another system), for a
    # day billing has no order on: its PDN failure matches nothing of ours.
    harness.sandbox.state.webhooks.configure(hold=False)
    harness.fault(kind="fail", endpoint="pdn", key="elsewhere1")
    harness.app.gateway.execute_mandate(
        order_id="elsewhere1", amount=Decimal("399.00"), customer_id="cst_upim",
        mandate_id="upim", execution_date=PLANNED + timedelta(days=9),
    )  # fmt: skip
    harness.control("tick")  # Juspay fails the order its PDN failed for: ORDER_FAILED too
    wait_until(hooked.settled, what="the foreign PDN failure processed")
    [foreign] = [
        e for e in hooked.events() if e.event_name == "NOTIFICATION_FAILED" and e.id != late.id
    ]
    assert foreign.state == "UNMATCHED"
    assert foreign.outcome is not None
    assert "for review" in foreign.outcome
    debit = harness.debit("upim")
    assert (debit.state, debit.tries) == ("PENDING", 2)  # try 2 goes on
    assert [o.order_id for o in harness.orders(debit.id)] == [first.order_id, second.order_id]
    assert hooked.errors == []


# -- 3. Juspay's own silent retry, read with Juspay's keys ---------------------------------------


def test_once_juspays_silent_retries_are_exhausted_our_own_retry_runs(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:none")
    harness.add_mandate("upi3", payment_method_type="UPI", rule_type="AFTER")
    # Juspay retries the failed order 3 times (mandate_retry_info), each failing.
    harness.fault(kind="silent_retry", endpoint="txns", key="upi3", polls=3,
                  then="AUTHORIZATION_FAILED", allowed=3)  # fmt: skip
    harness.run_until(PLANNED + timedelta(days=4))
    debit = harness.debit("upi3")
    assert (debit.state, debit.tries) == ("CHARGED", 2)
    first, second = harness.orders(debit.id)
    assert first.gateway_status == "AUTHORIZATION_FAILED"
    assert [c["order_id"] for c in harness.ledger("upi3")] == [second.order_id]
    assert first.checks >= 3  # seen failed while Juspay retried (3 times), and waited
    assert "status check: order AUTHORIZATION_FAILED; soft failure, try 2 of 3 scheduled" in (
        causes(harness, debit.id)
    )


# -- 4. no execution outside the window ----------------------------------------------------------


def test_an_execution_that_would_debit_after_the_window_closes_is_skipped_not_sent(
    harness: Harness,
) -> None:
    harness.add_mandate("upi4", payment_method_type="UPI")  # ON 5: a one-day window
    # The workers were down until 10 h before the debit: Juspay's 26 h would land on the 6th.
    harness.tick(PLANNED - timedelta(hours=10))
    debit = harness.debit("upi4")
    assert debit.state == "SKIPPED"
    assert "window passed" in harness.history(debit.id)[-1][2]
    assert harness.txns_calls() == 0
    harness.run_until(PLANNED + timedelta(days=2))
    assert harness.ledger("upi4") == []


@pytest.mark.parametrize("why", ["window closed", "mandate revoked"])
def test_an_order_juspay_never_received_is_not_resent_outside_its_window_or_mandate(
    harness_factory: Callable[..., Harness], why: str
) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card4")
    harness.fault(kind="drop_before", endpoint="txns", key="card4")
    harness.tick(T0)
    harness.tick(PLANNED)
    debit = harness.debit("card4")
    assert debit.state == "UNKNOWN"
    [order] = harness.orders(debit.id)
    if why == "window closed":  # Juspay's status API fails until the window has closed
        harness.fault(kind="http_error", endpoint="order_status", key=order.order_id,
                      status=503, times=10_000)  # fmt: skip
        harness.run_until(PLANNED + timedelta(days=1))
        harness.sandbox.state.faults.clear()
    else:
        harness.control("mandates/card4/status", status="REVOKED", webhook=False)
        set_status_locally(harness, "card4", MandateStatus.REVOKED)
    harness.run_until(PLANNED + timedelta(days=2))
    debit = harness.debit("card4")
    assert debit.state == "SKIPPED"
    expected = "window passed" if why == "window closed" else "mandate REVOKED"
    assert expected in harness.history(debit.id)[-1][2]
    [order] = harness.orders(debit.id)
    assert (order.state, order.next_check_at) == ("NOT_FOUND", None)
    assert harness.txns_calls() == 1
    assert harness.ledger("card4") == []


# -- 5. a mandate refused by Juspay is read back ---------------------------------------------------


def test_a_mandate_revoked_at_juspay_without_a_webhook_is_read_back_and_not_debited_again(
    harness: Harness,
) -> None:
    harness.add_mandate("upi5", payment_method_type="UPI")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)  # Juspay holds the order until the 5th
    # The customer revokes it in their UPI app; no webhook reaches billing.
    harness.control("mandates/upi5/status", status="REVOKED", webhook=False)
    harness.run_until(PLANNED + timedelta(hours=1))
    debit = harness.debit("upi5")
    assert debit.state == "FAILED"
    [order] = harness.orders(debit.id)
    assert (order.gateway_status, order.error_code) == ("JUSPAY_DECLINED", "JP_852")
    assert mandate_row(harness, "upi5").status == "REVOKED"  # read with check_status
    skip_to_april(harness, APRIL + timedelta(days=1))
    assert harness.txns_calls() == 1  # April is never executed
    assert len(harness.debits("upi5")) == 1
    assert harness.ledger("upi5") == []


def paused_at_juspay_with_its_status_read_failing(harness: Harness, mandate_id: str) -> Debit:
    harness.add_mandate(mandate_id, payment_method_type="UPI")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)
    harness.control(f"mandates/{mandate_id}/status", status="PAUSED", webhook=False)
    harness.fault(kind="http_error", endpoint="mandates", key=mandate_id, status=503,
                  times=100_000)  # fmt: skip
    harness.run_until(PLANNED + timedelta(hours=1))
    debit = harness.debit(mandate_id)
    assert debit.state == "FAILED"
    mandate = mandate_row(harness, mandate_id)
    assert mandate.status == "ACTIVE"  # unknown: the read failed
    assert mandate.hold_reason is not None
    assert "status read failed" in mandate.hold_reason
    return debit


@pytest.mark.parametrize("flow", ["juspay", "merchant"])
def test_when_the_mandate_status_read_fails_its_debits_are_held_until_a_read_succeeds(
    harness_factory: Callable[..., Harness], flow: str
) -> None:
    harness = harness_factory(notification_flows=f"UPI:{flow}")
    paused_at_juspay_with_its_status_read_failing(harness, "upi6")
    # The customer resumes it at Juspay; billing still cannot read it.
    harness.control("mandates/upi6/status", status="ACTIVE", webhook=False)
    skip_to_april(harness, APRIL - LEAD + timedelta(hours=3))  # April's came due 3 h ago
    april = harness.debits("upi6")[-1]
    assert april.state == "PLANNED"  # held: neither its PDN nor its execution is sent
    assert harness.txns_calls() == 1
    assert len(harness.sandbox.state.notifications) == 1  # March's own
    assert "held" in causes(harness, april.id)
    harness.sandbox.state.faults.clear()  # Juspay answers again: the next look reads it
    harness.run_until(APRIL + timedelta(days=1))
    april = harness.debits("upi6")[-1]
    assert april.state == "CHARGED"
    assert mandate_row(harness, "upi6").hold_reason is None
    assert harness.txns_calls() == 2
    assert len(harness.ledger("upi6")) == 1


def test_billing_mandates_sync_releases_a_mandate_held_after_a_failed_status_read(
    harness: Harness,
) -> None:
    paused_at_juspay_with_its_status_read_failing(harness, "upi7")
    harness.sandbox.state.faults.clear()
    app = harness.app
    report = actions.sync(
        app.sessions, app.gateway, mandate_id="upi7", now=harness.clock(), calendar=app.calendar
    )
    assert report.bad == 0
    mandate = mandate_row(harness, "upi7")
    assert (mandate.status, mandate.hold_reason) == ("PAUSED", None)


# -- 6 and 7. merchant flow: debits that never ended ------------------------------------------


def test_a_debit_whose_pdn_stays_pending_is_skipped_once_the_window_cannot_fit_the_24_h_wait(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant")
    harness.add_mandate("upi8", payment_method_type="UPI")  # ON 5
    harness.fault(kind="pending", endpoint="mandates", key="upi8", polls=100_000)
    harness.run_until(PLANNED - LEAD + timedelta(hours=2))
    assert harness.debit("upi8").state == "NOTIFYING"
    harness.run_until(PLANNED + timedelta(days=1))
    debit = harness.debit("upi8")
    assert debit.state == "SKIPPED"
    assert "window passed" in harness.history(debit.id)[-1][2]
    with harness.app.sessions() as session:
        [pdn] = session.scalars(select(Notification)).all()
    assert pdn.next_check_at is None  # no longer polled
    assert harness.txns_calls() == 0


def test_a_notifying_debit_can_be_cancelled_and_ends_with_its_mandate(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant")
    for mandate_id in ("upi9", "upi10"):
        harness.add_mandate(mandate_id, payment_method_type="UPI")
        harness.fault(kind="pending", endpoint="mandates", key=mandate_id, polls=100_000)
    harness.run_until(PLANNED - LEAD + timedelta(minutes=5))
    cancelled, revoked = harness.debit("upi9"), harness.debit("upi10")
    assert (cancelled.state, revoked.state) == ("NOTIFYING", "NOTIFYING")
    app = harness.app
    result = cancel_debit(app.sessions, lambda: app.gateway, cancelled.id, now=harness.clock())
    assert result == "CANCELLED"
    set_status_locally(harness, "upi10", MandateStatus.REVOKED)
    assert harness.debit("upi10").state == "SKIPPED"
    harness.run_until(PLANNED + timedelta(days=1))
    assert (harness.debit("upi9").state, harness.debit("upi10").state) == ("CANCELLED", "SKIPPED")
    assert harness.txns_calls() == 0


def test_a_debit_of_a_paused_mandate_is_skipped_when_its_window_passes_not_redispatched(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant")
    harness.add_mandate("upi11", payment_method_type="UPI")
    harness.tick(T0)
    harness.control("mandates/upi11/status", status="PAUSED", webhook=False)
    set_status_locally(harness, "upi11", MandateStatus.PAUSED)
    harness.tick(PLANNED - LEAD)  # its PDN is due: held, looked at again in an hour
    debit = harness.debit("upi11")
    assert debit.state == "PLANNED"
    assert debit.due_at == PLANNED - LEAD + timedelta(hours=1)
    harness.run_until(PLANNED + timedelta(days=1))
    debit = harness.debit("upi11")
    assert debit.state == "SKIPPED"
    assert "window passed" in harness.history(debit.id)[-1][2]
    harness.control("mandates/upi11/status", status="ACTIVE", webhook=False)
    set_status_locally(harness, "upi11", MandateStatus.ACTIVE)  # resumed after the window
    skip_to_april(harness, APRIL + timedelta(days=1))
    march, april = harness.debits("upi11")
    assert (march.state, april.state) == ("SKIPPED", "CHARGED")
    assert len(harness.ledger("upi11")) == 1


# -- 8. our credentials refused on a PDN -------------------------------------------------------


def test_a_401_on_a_pdn_halts_without_failing_the_customer_or_sending_a_second_pdn(
    harness_factory: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = harness_factory(notification_flows="UPI:merchant")
    harness.add_mandate("upi12", payment_method_type="UPI")
    harness.tick(T0)
    harness.control("config", api_key="rotated-at-juspay")  # our key no longer works
    harness.tick(PLANNED - LEAD)
    harness.tick(PLANNED - LEAD + timedelta(minutes=2))  # its status check: 401 too
    debit = harness.debit("upi12")
    assert debit.state == "NOTIFYING"
    assert any(r.levelname == "CRITICAL" and "401" in r.getMessage() for r in caplog.records)
    harness.control("config", api_key=API_KEY)  # the merchant fixes the key
    harness.run_until(PLANNED + timedelta(hours=2))
    debit = harness.debit("upi12")
    assert debit.state == "CHARGED"
    with harness.app.sessions() as session:
        pdns = session.scalars(select(Notification)).all()
    assert [p.status for p in pdns] == ["SUCCESS"]  # one PDN, never counted as failed
    assert "notification failed" not in causes(harness, debit.id)
    assert len(harness.ledger("upi12")) == 1


# -- 9. cancel reports what is true --------------------------------------------------------------


def test_cancelling_a_debit_that_settled_meanwhile_says_so_and_exits_1(
    hook: Callable[..., Hooked], db_url: str, tmp_path: Path
) -> None:
    hooked = hook()
    harness = hooked.harness
    harness.add_mandate("upi13", payment_method_type="UPI")
    harness.tick(T0)
    harness.tick(PLANNED - LEAD)
    debit = harness.debit("upi13")
    assert debit.state == "PENDING"
    # Juspay cancels at once but answers 2 s later; its ORDER_FAILED arrives meanwhile.
    harness.fault(kind="latency", endpoint="mandates", key="upi13", seconds=2, after=True)
    env = {
        "BILLING_DATABASE_URL": db_url,
        "BILLING_JUSPAY_BASE_URL": harness.sandbox.url,
        "BILLING_JUSPAY_API_KEY": API_KEY,
        "BILLING_JUSPAY_MERCHANT_ID": MERCHANT_ID,
        "BILLING_JUSPAY_READ_TIMEOUT": "10s",
    }
    result = run("debits", "cancel", str(debit.id), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout
    assert f"debit {debit.id} is FAILED" in result.stderr
    assert "CANCELLED" not in result.stdout
    assert harness.debit("upi13").state == "FAILED"
    assert hooked.errors == []


# -- 10. the execution answer's order id -----------------------------------------------------------


def test_an_execution_answer_naming_another_order_is_reconciled_not_settled(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card15")
    harness.fault(kind="misreport", endpoint="txns", key="card15", answer_order_id="someone")
    harness.tick(T0)
    harness.tick(PLANNED)
    debit = harness.debit("card15")
    assert debit.state == "UNKNOWN"  # the answer is about another order: not believed
    assert "someone" in harness.history(debit.id)[-1][2]
    harness.run_until(PLANNED + timedelta(minutes=5))
    assert harness.debit("card15").state == "CHARGED"  # our order's own status settles it
    assert harness.txns_calls() == 1
    assert len(harness.ledger("card15")) == 1


# -- 11. the forecast of debits already due ------------------------------------------------------


def test_the_schedule_shows_debits_already_due_first_marked_overdue_and_in_the_totals(
    harness: Harness, db_url: str, tmp_path: Path
) -> None:
    harness.add_mandate("nb16", payment_method_type="NB", amount_rule="VARIABLE",
                        max_amount="1000", amount="250")  # fmt: skip
    harness.add_mandate("card16", rule_value=7)  # 7 Mar, 399.00
    harness.tick(T0)  # planned; then the workers stop
    now = PLANNED + timedelta(hours=2)  # the NB debit was due at 10:00, beat sends it next
    result = run("schedule", "--days", "7", "--json", "--now", now.isoformat(), cwd=tmp_path,
                 env={"BILLING_DATABASE_URL": db_url})  # fmt: skip
    assert result.returncode == 0, result.stderr
    days = json.loads(result.stdout)
    assert days[0]["overdue"] is True
    assert [(d["mandate_id"], d["overdue"]) for d in days[0]["debits"]] == [("nb16", True)]
    assert days[0]["total"] == "250.00"
    assert [d["overdue"] for d in days[1:]] == [False] * (len(days) - 1)
    assert sum(Decimal(d["total"]) for d in days) == Decimal("649.00")
    text = run("schedule", "--days", "7", "--detail", "--now", now.isoformat(), cwd=tmp_path,
               env={"BILLING_DATABASE_URL": db_url}).stdout  # fmt: skip
    lines = text.splitlines()
    assert lines[0].startswith("overdue")
    assert "nb16" in lines[1]
    assert "OVERDUE" in lines[1]
    assert lines[-1] == "total: 2 debits, 649.00"


# -- 7. an UNKNOWN order whose status Juspay cannot tell is asked again soon ---------------------


def test_an_unknown_orders_unreadable_status_is_read_again_after_doubling_waits(
    harness_factory: Callable[..., Harness],
) -> None:
    """BILLING_RECONCILE_AFTER (1 min), then 1, 2, 4 ... min, never later than the pending
    orders' polling (its 6 min check comes first here): money may have moved, and that
    polling alone (6 min, 36 min, hourly) is too slow for an UNKNOWN order (issue 16)."""
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("card7")
    harness.fault(kind="drop_after", endpoint="txns", key="card7")  # charged, no answer
    harness.tick(T0)
    harness.tick(PLANNED)
    debit = harness.debit("card7")
    [order] = harness.orders(debit.id)
    assert debit.state == "UNKNOWN"
    harness.fault(kind="http_error", endpoint="order_status", key=order.order_id, times=3)
    at = order.next_check_at
    assert at is not None
    waits = []
    for _ in range(3):
        harness.tick(at)
        [order] = harness.orders(debit.id)
        assert harness.debit("card7").state == "UNKNOWN"
        assert order.next_check_at is not None
        waits.append(order.next_check_at - at)
        at = order.next_check_at
    # Sent at PLANNED: checks at +1 (fails), +2 (fails), +4 (fails: 4 min more would pass the
    # polling's +6), +6 (answers).
    assert waits == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=2)]
    harness.tick(at)
    assert harness.debit("card7").state == "CHARGED"
    assert len(harness.ledger("card7")) == 1
