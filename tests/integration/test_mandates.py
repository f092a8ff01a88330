"""The mandate registry on SQLite and PostgreSQL: safe imports, recorded changes, statuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billing.bootstrap import Container
from billing.domain.mandate import MandateStatus
from billing.services import NotFoundError, ServiceError
from billing.services.debits.planning import plan_debits
from billing.services.mandates import registry as service
from billing.services.mandates.files import read_rows
from billing.store.models import Debit, Mandate, MandateChange
from tests.conftest import FakeClock

HEADER = (
    "customer_id,mandate_id,frequency,rule_type,rule_value,amount_rule,max_amount,amount,"
    "currency,start_date,end_date,payment_method_type,status"
)
GOOD = [
    "cst1,mdt_card,MONTHLY,ON,5,FIXED,399,,INR,2027-01-01,,CARD,",
    "cst2,mdt_upi,MONTHLY,ON,31,VARIABLE,1000,250.50,INR,2027-01-01,2029-01-01,UPI,ACTIVE",
    "cst3,mdt_nb,WEEKLY,AFTER,3,VARIABLE,100,99,,1798761600,,NB,",
    "cst4,mdt_var,MONTHLY,BEFORE,10,VARIABLE,500,,INR,2027-01-01,,UPI,",
    "cst5,mdt_pres,ASPRESENTED,,,VARIABLE,5000,,INR,2027-01-01,,CARD,",
]
BAD = {
    # line number in the file (header is line 1) -> (row, field named in the error)
    3: ("cst9,mdt_b1,WEEKLY,ON,9,VARIABLE,100,,INR,2027-01-01,,UPI,", "rule_value"),
    5: ("cst9,mdt_b2,DAILY,,,FIXED,10,10.001,INR,2027-01-01,,UPI,", "amount"),
    7: ("cst9,mdt_b3,MONTHLY,ON,5,FIXED,399,300,INR,2027-01-01,,CARD,", "amount"),
    8: ("cst9,mdt_b4,MONTHLY,ON,5,VARIABLE,-1,,INR,2027-01-01,,CARD,", "max_amount"),
    9: ("cst9,mdt_b5,MONTHLY,ON,5,VARIABLE,10,,INR,2027-05-01,2027-04-01,CARD,", "end_date"),
    10: (",mdt_b6,MONTHLY,ON,5,VARIABLE,10,,INR,2027-01-01,,CARD,", "customer_id"),
    11: ("cst9,mdt_b7,HOURLY,,,VARIABLE,10,,INR,2027-01-01,,CARD,", "frequency"),
    12: ("cst9,mdt_b8,MONTHLY,ON,5,VARIABLE,10,,INR,2027-01-01,,CHEQUE,", "payment_method_type"),
    13: ("cst9,mdt_b9,MONTHLY,ON,5,VARIABLE,10,,INR,2027-01-01,,CARD,SUSPENDED", "status"),
}


def write_mixed_csv(path: Path) -> Path:
    lines = [HEADER]
    good = iter(GOOD)
    for line_no in range(2, 2 + len(GOOD) + len(BAD)):
        lines.append(BAD[line_no][0] if line_no in BAD else next(good))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_import(app: Container, path: Path, **kwargs: object) -> service.ImportReport:
    return service.import_mandates(
        app.sessions,
        read_rows(path),
        now=app.clock(),
        calendar=app.calendar,
        **kwargs,  # type: ignore[arg-type]
    )


def count(app: Container, model: type[object]) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_mixed_file_stores_the_good_rows_and_reports_each_bad_one(
    app: Container, tmp_path: Path
) -> None:
    report = run_import(app, write_mixed_csv(tmp_path / "m.csv"))
    assert report.created == len(GOOD)
    assert report.bad == len(BAD)
    assert {(e.line, e.field) for e in report.errors} == {(n, f) for n, (_, f) in BAD.items()}
    assert all(str(e).startswith(f"line {e.line}: {e.field}: ") for e in report.errors)
    with app.sessions() as session:
        stored = set(session.scalars(select(Mandate.mandate_id)))
    assert stored == {"mdt_card", "mdt_upi", "mdt_nb", "mdt_var", "mdt_pres"}


def test_values_are_typed_on_the_way_in(app: Container, tmp_path: Path) -> None:
    run_import(app, write_mixed_csv(tmp_path / "m.csv"))
    with app.sessions() as session:
        card = service.require(session, "mdt_card")
        nb = service.require(session, "mdt_nb")
        var = service.require(session, "mdt_var")
    assert card.plan_amount == Decimal("399.00")  # FIXED: the plan amount is max_amount
    assert card.status == "ACTIVE"
    assert card.currency == "INR"
    assert nb.start_date == date(2027, 1, 1)  # epoch 1798761600 = 2027-01-01 05:30 IST
    assert nb.plan_amount == Decimal("99.00")
    assert var.plan_amount is None  # never defaulted to max_amount
    assert var.next_cycle_at is None
    assert service.is_unscheduled(var)


def test_a_dry_run_validates_and_stores_nothing(app: Container, tmp_path: Path) -> None:
    report = run_import(app, write_mixed_csv(tmp_path / "m.csv"), dry_run=True)
    assert (report.created, report.bad) == (len(GOOD), len(BAD))
    assert count(app, Mandate) == 0


def test_reimporting_the_same_file_changes_nothing(app: Container, tmp_path: Path) -> None:
    path = write_mixed_csv(tmp_path / "m.csv")
    run_import(app, path)
    with app.sessions() as session:
        before = [
            (m.mandate_id, m.updated_at, m.next_cycle_at) for m in session.scalars(select(Mandate))
        ]
    app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    again = run_import(app, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(GOOD))
    with app.sessions() as session:
        after = [
            (m.mandate_id, m.updated_at, m.next_cycle_at) for m in session.scalars(select(Mandate))
        ]
    assert after == before
    assert count(app, MandateChange) == 0


def test_a_terms_change_is_recorded_with_old_and_new_values(app: Container, tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    row = {
        "customer_id": "cst1",
        "mandate_id": "mdt1",
        "frequency": "MONTHLY",
        "rule_type": "ON",
        "rule_value": 5,
        "amount_rule": "VARIABLE",
        "max_amount": "1000",
        "amount": "100",
        "start_date": "2027-01-01",
        "payment_method_type": "UPI",
    }
    path.write_text(json.dumps(row) + "\n")
    run_import(app, path)
    path.write_text(json.dumps({**row, "rule_value": 7, "amount": "120.5"}) + "\n")
    report = run_import(app, path)
    assert report.updated == 1
    with app.sessions() as session:
        changes = {c.kind: json.loads(c.detail) for c in session.scalars(select(MandateChange))}
        mandate = service.require(session, "mdt1")
    assert changes["terms"] == {"rule_value": [5, 7]}
    assert changes["plan_amount"] == {"plan_amount": ["100.00", "120.50"]}
    assert mandate.rule_value == 7
    assert mandate.plan_amount == Decimal("120.50")


def test_a_revoked_mandate_cannot_be_revived_by_an_import(app: Container, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "\n" + GOOD[0].rstrip(",") + ",REVOKED\n")
    run_import(app, path)
    path.write_text(HEADER + "\n" + GOOD[0].rstrip(",") + ",ACTIVE\n")
    report = run_import(app, path)
    assert [(e.line, e.field) for e in report.errors] == [(2, "status")]
    path.write_text(HEADER + "\n" + GOOD[0] + "\n")  # no status: the one held is kept
    report = run_import(app, path)
    assert report.errors == []
    assert [(k.line, k.kept, k.in_file) for k in report.kept] == [(2, "REVOKED", None)]
    with app.sessions() as session:
        assert service.require(session, "mdt_card").status == "REVOKED"


def test_unreadable_json_lines_are_reported_by_line(app: Container, tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"mandate_id": "x"\n[1, 2]\n{"mandate_id": "y", "colour": "red"}\n')
    report = run_import(app, path)
    assert [(e.line, e.field) for e in report.errors] == [(1, "line"), (2, "line"), (3, "colour")]


def test_a_csv_with_an_unknown_column_is_refused_whole(app: Container, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("customer_id,mandate_id,max_amt\ncst,m,10\n")
    with pytest.raises(ServiceError, match="unknown column"):
        run_import(app, path)
    assert count(app, Mandate) == 0


def test_set_amount_schedules_a_variable_mandate(app: Container, tmp_path: Path) -> None:
    run_import(app, write_mixed_csv(tmp_path / "m.csv"))
    with pytest.raises(Exception, match="amount"):
        service.set_plan_amount(
            app.sessions, "mdt_var", "501", now=app.clock(), calendar=app.calendar
        )
    service.set_plan_amount(app.sessions, "mdt_var", "450", now=app.clock(), calendar=app.calendar)
    with app.sessions() as session:
        mandate = service.require(session, "mdt_var")
    assert mandate.plan_amount == Decimal("450.00")
    assert mandate.next_cycle_at is not None
    with pytest.raises(NotFoundError):
        service.set_plan_amount(app.sessions, "nope", "1", now=app.clock(), calendar=app.calendar)


def test_a_final_status_skips_open_debits_and_is_never_left(
    app: Container, tmp_path: Path, clock: FakeClock
) -> None:
    run_import(app, write_mixed_csv(tmp_path / "m.csv"))
    clock.set(datetime(2027, 3, 2, 6, 0, tzinfo=UTC))
    plan_debits(app.sessions, app.planning, now=clock())
    with app.sessions() as session, session.begin():
        mandate = service.require(session, "mdt_card")
        assert service.apply_status(
            session,
            mandate,
            MandateStatus.REVOKED,
            now=clock(),
            calendar=app.calendar,
            source="test",
        )
        assert not service.apply_status(
            session,
            mandate,
            MandateStatus.ACTIVE,
            now=clock(),
            calendar=app.calendar,
            source="test",
        )
        states = set(session.scalars(select(Debit.state).where(Debit.mandate_pk == mandate.id)))
    assert states == {"SKIPPED"}


def test_a_stale_status_does_not_move_a_mandate_back(app: Container, tmp_path: Path) -> None:
    run_import(app, write_mixed_csv(tmp_path / "m.csv"))
    newer = datetime(2027, 3, 2, tzinfo=UTC)
    older = datetime(2027, 3, 1, tzinfo=UTC)
    with app.sessions() as session, session.begin():
        mandate = service.require(session, "mdt_upi")
        args = {"now": newer, "calendar": app.calendar, "source": "webhook"}
        assert service.apply_status(session, mandate, MandateStatus.PAUSED, event_at=newer, **args)  # type: ignore[arg-type]
        assert not service.apply_status(
            session,
            mandate,
            MandateStatus.ACTIVE,
            event_at=older,
            **args,  # type: ignore[arg-type]
        )
        assert mandate.status == "PAUSED"
        # A final status is applied even when dated earlier: ending is never a step back.
        assert service.apply_status(
            session,
            mandate,
            MandateStatus.REVOKED,
            event_at=older,
            **args,  # type: ignore[arg-type]
        )


def test_mandates_past_end_date_expire_locally(app: Container, tmp_path: Path) -> None:
    run_import(app, write_mixed_csv(tmp_path / "m.csv"))
    expired = service.expire_ended(
        app.sessions, now=datetime(2029, 1, 3, tzinfo=UTC), calendar=app.calendar
    )
    assert expired == 1
    with app.sessions() as session:
        assert service.require(session, "mdt_upi").status == "EXPIRED"
