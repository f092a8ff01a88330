"""Planning turns the mandate calendar into PLANNED debits, once each, at a cost that follows
the debits created rather than the size of the registry."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from billing.bootstrap import Container
from billing.services import ServiceError
from billing.services.debits.planning import forecast, plan_debits, present_debit
from billing.services.mandates import registry
from billing.store import mandates as mandate_store
from billing.store.models import Debit, DebitHistory, Mandate
from tests.conftest import FakeClock

NOW = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)


def mandate_fields(mandate_id: str, **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "customer_id": f"cst_{mandate_id}",
        "mandate_id": mandate_id,
        "frequency": "MONTHLY",
        "rule_type": "ON",
        "rule_value": 2,
        "amount_rule": "FIXED",
        "max_amount": "399",
        "start_date": "2027-01-01",
        "payment_method_type": "CARD",
    }
    fields.update(overrides)
    return fields


def add(app: Container, *rows: dict[str, object]) -> None:
    report = registry.import_mandates(
        app.sessions, list(enumerate(rows, 1)), now=app.clock(), calendar=app.calendar
    )
    assert report.bad == 0, report.errors


def debits(app: Container) -> list[tuple[str, int, str, Decimal, datetime]]:
    with app.sessions() as session:
        rows = session.execute(
            select(Mandate.mandate_id, Debit.cycle, Debit.state, Debit.amount, Debit.planned_at)
            .join(Mandate, Mandate.id == Debit.mandate_pk)
            .order_by(Mandate.mandate_id, Debit.cycle)
        )
        return [(m, c, s, a, p) for m, c, s, a, p in rows]


def test_planning_creates_the_debits_due_within_the_horizon(
    app: Container, clock: FakeClock
) -> None:
    clock.set(NOW)
    add(
        app,
        mandate_fields("card"),
        mandate_fields("daily", frequency="DAILY", rule_type="", rule_value="", max_amount="10"),
        mandate_fields("later", rule_value=20),
    )
    report = plan_debits(app.sessions, app.planning, now=NOW)
    # cutoff = now + 26 h lead + 3 d horizon = 2027-03-05 02:00 UTC
    planned = debits(app)
    assert (
        "card",
        2,
        "PLANNED",
        Decimal("399.00"),
        datetime(2027, 3, 2, 4, 30, tzinfo=UTC),
    ) in planned
    assert [c for m, c, *_ in planned if m == "daily"] == [59, 60, 61, 62]  # 1-4 March, 10:00 IST
    assert not [p for p in planned if p[0] == "later"]
    assert report.debits_created == len(planned) == 5
    with app.sessions() as session:
        card_debit = session.scalars(select(Debit).where(Debit.cycle == 2)).one()
        history = session.scalars(select(DebitHistory)).all()
    # juspay flow (CARD default): execution is called the lead (26 h) before the planned instant
    assert card_debit.due_at == card_debit.planned_at - timedelta(hours=26)
    assert card_debit.flow == "juspay"
    assert {h.to_state for h in history} == {"PLANNED"}
    assert len(history) == 5


def test_planning_twice_creates_each_debit_once(app: Container, clock: FakeClock) -> None:
    add(app, *(mandate_fields(f"m{i}") for i in range(30)))
    first = plan_debits(app.sessions, app.planning, now=NOW)
    second = plan_debits(app.sessions, app.planning, now=NOW)
    assert first.debits_created == 30
    assert second.debits_created == 0
    assert len(debits(app)) == 30


def test_planning_from_two_threads_at_once_creates_each_debit_once(app: Container) -> None:
    add(app, *(mandate_fields(f"m{i}", rule_value=1 + i % 4) for i in range(200)))
    barrier = threading.Barrier(2)
    created: list[int] = []
    errors: list[BaseException] = []

    def plan() -> None:
        try:
            barrier.wait()
            created.append(
                plan_debits(app.sessions, app.planning, now=NOW, batch_size=20).debits_created
            )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=plan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(created) == 200
    rows = debits(app)
    assert len(rows) == len({(m, c) for m, c, *_ in rows}) == 200


def test_variable_without_plan_amount_paused_and_presented_mandates_are_not_planned(
    app: Container,
) -> None:
    add(
        app,
        mandate_fields("variable", amount_rule="VARIABLE", max_amount="500"),
        mandate_fields("paused", status="PAUSED"),
        mandate_fields("presented", frequency="ASPRESENTED", rule_type="", rule_value=""),
    )
    assert plan_debits(app.sessions, app.planning, now=NOW).debits_created == 0


def _bulk_registry(app: Container, size: int) -> None:
    """`size` ACTIVE mandates whose next debit is a year away: never due in these tests."""
    far = NOW + timedelta(days=365)
    rows: list[dict[str, Any]] = [
        {
            "mandate_id": f"bulk{i}",
            "customer_id": f"c{i}",
            "frequency": "YEARLY",
            "rule_type": "ON",
            "rule_value": 1,
            "amount_rule": "FIXED",
            "max_amount": Decimal(100),
            "plan_amount": Decimal(100),
            "currency": "INR",
            "start_date": date(2027, 1, 1),
            "end_date": None,
            "payment_method_type": "CARD",
            "status": "ACTIVE",
            "next_cycle": 1,
            "next_cycle_at": far,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(size)
    ]
    with app.sessions() as session, session.begin():
        for start in range(0, size, 5000):
            session.execute(insert(Mandate), rows[start : start + 5000])
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE mandates"))
        else:
            session.execute(text("ANALYZE"))


def test_planning_cost_follows_the_debits_created_not_the_registry_size(
    app: Container,
) -> None:
    add(app, *(mandate_fields(f"due{i}") for i in range(10)))
    touched = []
    for size in (0, 20_000):
        _bulk_registry(app, size) if size else None
        with app.sessions() as session, session.begin():
            session.execute(
                Mandate.__table__.update()  # type: ignore[attr-defined]
                .where(Mandate.mandate_id.like("due%"))
                .values(next_cycle=2, next_cycle_at=datetime(2027, 3, 2, 4, 30, tzinfo=UTC))
            )
            session.execute(DebitHistory.__table__.delete())  # type: ignore[attr-defined]
            session.execute(Debit.__table__.delete())  # type: ignore[attr-defined]
        report = plan_debits(app.sessions, app.planning, now=NOW)
        touched.append(report.mandates_examined)
        assert report.debits_created == 10
    assert touched == [10, 10]  # 20,000 more mandates in the registry: not one more row read


def test_the_planning_query_uses_the_status_next_cycle_index(app: Container) -> None:
    _bulk_registry(app, 20_000)
    with app.sessions() as session:
        statement = mandate_store.due_for_planning_statement(NOW, limit=500)
        compiled = statement.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        if session.get_bind().dialect.name == "postgresql":
            plan = "\n".join(session.scalars(text(f"EXPLAIN {compiled}")))
        else:
            plan = "\n".join(
                str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
    assert "ix_mandates_status_next_cycle_at" in plan, plan


def test_the_forecast_totals_debits_per_day_and_writes_nothing(
    app: Container, clock: FakeClock
) -> None:
    add(
        app,
        mandate_fields("a", rule_value=3),
        mandate_fields("b", rule_value=3, payment_method_type="NB", max_amount="100.50"),
        mandate_fields("c", rule_value=4, amount_rule="VARIABLE", max_amount="50", amount="20"),
        mandate_fields("d", rule_value=4, amount_rule="VARIABLE", max_amount="50"),  # unscheduled
    )
    plan_debits(app.sessions, app.planning, now=NOW)  # a and b planned, c is beyond the cutoff
    before = debits(app)
    with app.sessions() as session:
        days = forecast(session, app.planning, now=NOW, days=40)
    assert debits(app) == before
    by_day = {d.day: d for d in days}
    assert by_day[date(2027, 3, 3)].count == 2
    assert by_day[date(2027, 3, 3)].total == Decimal("499.50")
    assert by_day[date(2027, 3, 3)].by_flow == {
        "juspay": [1, Decimal("399.00")],
        "none": [1, Decimal("100.50")],
    }
    assert by_day[date(2027, 3, 4)].total == Decimal("20.00")
    assert by_day[date(2027, 4, 3)].count == 2  # next month's cycles, not planned yet
    assert {x.state for x in by_day[date(2027, 3, 3)].debits} == {"PLANNED"}
    assert {x.state for x in by_day[date(2027, 4, 3)].debits} == {"FORECAST"}


def test_a_presented_debit_is_validated_by_the_terms(app: Container) -> None:
    add(
        app,
        mandate_fields(
            "once",
            frequency="ONETIME",
            rule_type="",
            rule_value="",
            amount_rule="VARIABLE",
            max_amount="1000",
        ),
        mandate_fields("monthly"),
    )
    debit = present_debit(
        app.sessions, app.planning, "once", "999.99", on=date(2027, 3, 10), now=NOW
    )
    assert (debit.cycle, debit.amount, debit.state) == (0, Decimal("999.99"), "PLANNED")
    with pytest.raises(ServiceError, match="already presented"):
        present_debit(app.sessions, app.planning, "once", "1", on=None, now=NOW)
    with pytest.raises(ServiceError, match="follow the calendar"):
        present_debit(app.sessions, app.planning, "monthly", "399", on=None, now=NOW)
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Debit)) == 1
