"""Merchant actions that go through Juspay: pause, resume, revoke, cancel a scheduled debit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from billing.services import ServiceError
from billing.services.debits.execution import cancel_debit
from billing.services.mandates import actions, registry
from tests.integration.billing_harness import Harness

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)


def status(harness: Harness, mandate_id: str) -> str:
    with harness.app.sessions() as session:
        return registry.require(session, mandate_id).status


def test_pause_resume_and_revoke_record_what_juspay_answers(harness: Harness) -> None:
    harness.add_mandate("m1", payment_method_type="UPI")
    harness.at(T0)
    app = harness.app
    common = {"now": T0, "calendar": app.calendar}
    result = actions.pause(
        app.sessions, app.gateway, "m1", start=date(2027, 3, 2), end=date(2027, 3, 20), **common
    )  # type: ignore[arg-type]
    assert result == status(harness, "m1") == "PAUSED"
    assert harness.sandbox.state.mandates["m1"].status == "PAUSED"
    assert actions.resume(app.sessions, app.gateway, "m1", on=date(2027, 3, 2), **common) == (  # type: ignore[arg-type]
        "ACTIVE"
    )
    assert actions.revoke(app.sessions, app.gateway, "m1", **common) == "REVOKED"  # type: ignore[arg-type]
    assert harness.sandbox.state.mandates["m1"].status == "REVOKED"
    with pytest.raises(ServiceError, match="revoke of mandate m1 failed"):
        actions.revoke(app.sessions, app.gateway, "m1", **common)  # type: ignore[arg-type]


def test_a_debit_scheduled_at_juspay_is_cancelled_there_first(harness: Harness) -> None:
    harness.add_mandate("m2", payment_method_type="UPI")
    harness.tick(T0)
    harness.tick(PLANNED - timedelta(hours=26))
    debit = harness.debit("m2")
    assert debit.state == "PENDING"
    result = cancel_debit(
        harness.app.sessions, lambda: harness.app.gateway, debit.id, now=harness.clock()
    )
    assert result == "CANCELLED"
    harness.run_until(PLANNED + timedelta(hours=2))
    assert harness.debit("m2").state == "CANCELLED"
    assert harness.ledger("m2") == []


def test_a_debit_not_sent_is_cancelled_locally_and_an_in_flight_one_is_refused(
    harness: Harness,
) -> None:
    harness.add_mandate("m3", payment_method_type="UPI")
    harness.tick(T0)
    debit = harness.debit("m3")

    def no_gateway() -> object:
        raise AssertionError("a local cancel must not call Juspay")

    assert cancel_debit(harness.app.sessions, no_gateway, debit.id, now=T0) == "CANCELLED"  # type: ignore[arg-type]
    harness.add_mandate("m4", payment_method_type="UPI")
    harness.tick(T0 + timedelta(minutes=1))
    harness.tick(PLANNED - timedelta(hours=26))
    late = harness.debit("m4")
    with pytest.raises(ServiceError, match="can be cancelled"):
        cancel_debit(
            harness.app.sessions,
            lambda: harness.app.gateway,
            late.id,
            now=PLANNED - timedelta(minutes=10),
        )


def test_sync_registers_a_customers_mandates_and_keeps_the_merchants_plan_amount(
    harness: Harness,
) -> None:
    app = harness.app
    harness.at(T0)
    for mandate_id, rule in (("s1", {"rule_type": "ON", "rule_value": 5}), ("s2", {})):
        harness.sandbox.state.seed_mandate(
            mandate_id=mandate_id,
            customer_id="cst_s",
            status="ACTIVE",
            max_amount="500",
            amount_rule="VARIABLE",
            payment_method_type="UPI",
            frequency="MONTHLY",
            start_date=int(T0.timestamp()),
            **rule,
        )
    report = actions.sync(
        app.sessions, app.gateway, customer_id="cst_s", now=T0, calendar=app.calendar
    )
    assert (report.created, report.bad) == (2, 0)
    with app.sessions() as session:
        s2 = registry.require(session, "s2")
        assert (s2.rule_type, s2.rule_value) == ("ON", 2)  # no rule sent: the start date's day
        assert s2.plan_amount is None  # VARIABLE: unscheduled until the merchant sets one
    registry.set_plan_amount(app.sessions, "s1", "250", now=T0, calendar=app.calendar)
    harness.sandbox.state.mandates["s1"].status = "PAUSED"
    report = actions.sync(app.sessions, app.gateway, mandate_id="s1", now=T0, calendar=app.calendar)
    assert report.updated == 1
    with app.sessions() as session:
        s1 = registry.require(session, "s1")
    assert s1.status == "PAUSED"
    assert str(s1.plan_amount) == "250.00"
