"""The schema comes from Alembic and carries the idempotency rules as unique constraints."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.store import migrate
from billing.store.models import (
    Base,
    Debit,
    Fulfillment,
    Mandate,
    Notification,
    Order,
    PayoutAttempt,
    PayoutOrder,
    WebhookEvent,
)
from tests.services import scratch_postgres_database

NOW = datetime(2027, 3, 1, 4, 30, tzinfo=UTC)


def _both_backends(tmp_path: Path, run: Callable[[str], None]) -> None:
    run(f"sqlite:///{tmp_path / 'fresh.db'}")
    with scratch_postgres_database() as url:
        run(url)


def test_upgrade_downgrade_upgrade_works_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    def cycle(url: str) -> None:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        engine = create_engine(url)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        assert migrate.current_revision(engine) == migrate.head_revision(url)
        engine.dispose()

    _both_backends(tmp_path, cycle)


def test_autogenerate_finds_no_difference_between_models_and_migrations(tmp_path: Path) -> None:
    def compare(url: str) -> None:
        migrate.upgrade(url)
        engine = create_engine(url)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        engine.dispose()
        assert diff == [], (
            f"models and migrations differ on {url.split(':', maxsplit=1)[0]}: {diff}"
        )

    _both_backends(tmp_path, compare)


def _mandate(mandate_id: str = "mdt1") -> Mandate:
    return Mandate(
        mandate_id=mandate_id,
        customer_id="cst_1",
        frequency="MONTHLY",
        rule_type="ON",
        rule_value=5,
        amount_rule="FIXED",
        max_amount=Decimal("399.00"),
        currency="INR",
        start_date=date(2027, 1, 1),
        end_date=None,
        payment_method_type="CARD",
        status="ACTIVE",
        created_at=NOW,
        updated_at=NOW,
    )


def _debit(mandate_pk: int, cycle: int = 0) -> Debit:
    return Debit(
        mandate_pk=mandate_pk,
        cycle=cycle,
        state="PLANNED",
        flow="juspay",
        amount=Decimal("399.00"),
        currency="INR",
        window_first_day=date(2027, 3, 5),
        window_last_day=date(2027, 3, 5),
        planned_at=NOW,
        window_closes_at=NOW + timedelta(days=1),
        created_at=NOW,
        updated_at=NOW,
    )


def _order(debit_id: int, order_id: str, try_number: int) -> Order:
    return Order(
        order_id=order_id,
        debit_id=debit_id,
        try_number=try_number,
        amount=Decimal("399.00"),
        currency="INR",
        state="RECORDED",
        created_at=NOW,
    )


def _event(event_id: str, kind: str = "ec") -> WebhookEvent:
    return WebhookEvent(
        kind=kind, event_id=event_id, event_name="X", body="{}", state="RECEIVED", received_at=NOW
    )


def _payout(session: Session) -> Fulfillment:
    payout = PayoutOrder(
        order_id="po1", customer_id="c", status="FAILURE", created_at=NOW, updated_at=NOW
    )
    session.add(payout)
    session.flush()
    fulfillment = Fulfillment(
        fulfillment_id="po1-f1",
        payout_order_pk=payout.id,
        status="FAILURE",
        attempt_state="IDLE",
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(fulfillment)
    session.flush()
    return fulfillment


def _add_twice(url: str, make: Callable[[Session], list[Any]]) -> None:
    """`make` builds rows after committing what they depend on; the last one must be refused."""
    engine = create_engine(url)
    with Session(engine) as session:
        rows = make(session)
        for row in rows[:-1]:
            session.add(row)
        session.commit()
        session.add(rows[-1])
        with pytest.raises(IntegrityError):
            session.commit()
    engine.dispose()


def test_a_mandate_id_is_stored_once(db_url: str) -> None:
    _add_twice(db_url, lambda s: [_mandate("m"), _mandate("m")])


def test_a_cycle_of_a_mandate_has_one_debit(db_url: str) -> None:
    def rows(session: Session) -> list[Any]:
        mandate = _mandate()
        session.add(mandate)
        session.flush()
        return [_debit(mandate.id, 3), _debit(mandate.id, 3)]

    _add_twice(db_url, rows)


def test_an_order_id_is_used_once(db_url: str) -> None:
    def rows(session: Session) -> list[Any]:
        mandate = _mandate()
        session.add(mandate)
        session.flush()
        first, second = _debit(mandate.id, 0), _debit(mandate.id, 1)
        session.add_all([first, second])
        session.flush()
        return [_order(first.id, "ord1", 1), _order(second.id, "ord1", 1)]

    _add_twice(db_url, rows)


def test_a_try_of_a_debit_has_one_order(db_url: str) -> None:
    def rows(session: Session) -> list[Any]:
        mandate = _mandate()
        session.add(mandate)
        session.flush()
        debit = _debit(mandate.id)
        session.add(debit)
        session.flush()
        return [_order(debit.id, "ordA", 1), _order(debit.id, "ordB", 1)]

    _add_twice(db_url, rows)


def test_a_webhook_event_id_is_stored_once_per_kind(db_url: str) -> None:
    _add_twice(db_url, lambda s: [_event("evt_1"), _event("evt_1", "payout"), _event("evt_1")])


def test_a_notification_reference_is_used_once(db_url: str) -> None:
    def rows(session: Session) -> list[Any]:
        mandate = _mandate()
        session.add(mandate)
        session.flush()
        return [
            Notification(
                reference="ref1",
                mandate_pk=mandate.id,
                status="RECORDED",
                amount=Decimal(1),
                txn_date=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
            for _ in range(2)
        ]

    _add_twice(db_url, rows)


def test_an_attempt_number_of_a_fulfillment_is_used_once(db_url: str) -> None:
    def rows(session: Session) -> list[Any]:
        fulfillment = _payout(session)
        return [
            PayoutAttempt(fulfillment_pk=fulfillment.id, number=1, state="SENDING", created_at=NOW)
            for _ in range(2)
        ]

    _add_twice(db_url, rows)


def test_money_and_instants_round_trip_exactly(db_url: str) -> None:
    engine = create_engine(db_url)
    ist = timezone(timedelta(hours=5, minutes=30))
    with Session(engine) as session:
        mandate = _mandate()
        mandate.max_amount = Decimal("9999999999.99")
        mandate.plan_amount = Decimal("0.10")
        mandate.status_at = datetime(2027, 3, 1, 10, 0, tzinfo=ist)
        session.add(mandate)
        session.commit()
    with Session(engine) as session:
        stored = session.scalars(select(Mandate)).one()
        assert stored.max_amount == Decimal("9999999999.99")
        assert str(stored.plan_amount) == "0.10"
        assert stored.status_at == datetime(2027, 3, 1, 4, 30, tzinfo=UTC)
        assert stored.status_at.tzinfo is not None
    engine.dispose()


def test_a_naive_datetime_is_refused(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with Session(engine) as session:
        mandate = _mandate()
        mandate.status_at = datetime(2027, 3, 1, 10, 0)
        session.add(mandate)
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()
    engine.dispose()
