"""Registry truth (issue 17): a change of a mandate's terms or status never charges a cycle twice,
skips one, or debits under old terms. Each scenario against the sandbox over HTTP, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from billing.services.mandates import actions, registry
from billing.services.webhook_events import MAX_ATTEMPTS, WebhookEvents
from billing.store.models import Mandate, MandateChange, Notification, WebhookEvent
from billing.webhooks.app import ReceiverConfig, create_app
from tests.integration.billing_harness import Harness
from tests.integration.sandbox_fixtures import WEBHOOK_PASSWORD, WEBHOOK_USERNAME, wait_until
from tests.integration.test_cli_foundation import run
from tests.integration.test_debit_path import hook  # noqa: F401 - a fixture
from tests.integration.test_webhook_receiver import ThreadServer
from tests.integration.test_webhook_sandbox import Hooked

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
LEAD = timedelta(hours=26)
MAY = datetime(2027, 5, 1, 0, 0, tzinfo=UTC)


def run_until(harness: Harness, end: datetime) -> None:
    """Tick at each instant something is due, and at least daily (planning looks > 4 days
    ahead, so every debit is planned before it is due): months in a few hundred ticks."""
    while harness.clock() < end:
        due = harness.next_due()
        step = harness.clock() + timedelta(days=1)
        harness.tick(min(end, step if due is None else min(due, step)))


def juspays_copy(harness: Harness, mandate_id: str, **terms: object) -> None:
    """Juspay's copy of a mandate, as its control API seeds it (dates: start of the local day)."""
    fields: dict[str, object] = {
        "mandate_id": mandate_id, "customer_id": f"cst_{mandate_id}", "status": "ACTIVE",
        "max_amount": "399", "amount_rule": "FIXED", "payment_method_type": "CARD",
        "frequency": "MONTHLY", "rule_type": "ON", "rule_value": 5,
    }  # fmt: skip
    fields.update(terms)
    start = datetime.fromisoformat(str(fields.pop("start_date", "2027-01-01")))
    fields["start_date"] = int(start.replace(tzinfo=harness.app.calendar.tz).timestamp())
    harness.control("mandates", **fields)


def reimport(harness: Harness, mandate_id: str, *, now: datetime | None = None,
             **changes: object) -> registry.ImportReport:  # fmt: skip
    """The merchant's corrected file: the row as first imported, with `changes`, no status."""
    fields: dict[str, object] = {
        "customer_id": f"cst_{mandate_id}", "mandate_id": mandate_id, "frequency": "MONTHLY",
        "rule_type": "ON", "rule_value": 5, "amount_rule": "FIXED", "max_amount": "399",
        "start_date": "2027-01-01", "payment_method_type": "CARD",
    }  # fmt: skip
    fields.update(changes)
    return registry.import_mandates(
        harness.app.sessions, [(2, fields)], now=now or harness.clock(),
        calendar=harness.app.calendar,
    )  # fmt: skip


def charges_by_day(harness: Harness, mandate_id: str) -> list[tuple[str, str]]:
    """(local day the order was for, amount) of every charge in the sandbox's ledger."""
    tz = harness.app.calendar.tz
    charged = {c["order_id"]: c["amount"] for c in harness.ledger(mandate_id)}
    result = []
    for debit in harness.debits(mandate_id):
        for order in harness.orders(debit.id):
            if order.order_id in charged:
                day = debit.planned_at.astimezone(tz).date().isoformat()
                result.append((day, charged[order.order_id]))
    assert len(result) == len(charged), "a charge of an order billing does not know"
    return sorted(result)


def terms_changes(harness: Harness, mandate_id: str) -> list[dict[str, Any]]:
    with harness.app.sessions() as session:
        mandate = registry.require(session, mandate_id)
        return [
            json.loads(c.detail)
            for c in session.scalars(
                select(MandateChange).where(
                    MandateChange.mandate_pk == mandate.id, MandateChange.kind == "terms"
                )
            )
        ]


# -- 1. a new start_date re-numbers the cycles ---------------------------------------------------


def test_a_new_start_date_from_a_sync_neither_charges_a_cycle_twice_nor_skips_the_next(
    harness: Harness,
) -> None:
    harness.add_mandate("m1")  # MONTHLY ON 5 from 2027-01-01: March is cycle 2
    harness.tick(T0)
    [march] = harness.debits("m1")
    assert (march.cycle, march.state) == (2, "PLANNED")
    # Juspay registered it on 2027-02-01: a sync stores that date, and March becomes cycle 1.
    juspays_copy(harness, "m1", start_date="2027-02-01")
    app = harness.app
    report = actions.sync(
        app.sessions, app.gateway, mandate_id="m1", now=harness.clock(), calendar=app.calendar
    )
    assert (report.updated, report.bad) == (1, 0)

    run_until(harness, MAY)
    assert charges_by_day(harness, "m1") == [("2027-03-05", "399.00"), ("2027-04-05", "399.00")]
    [change] = terms_changes(harness, "m1")
    assert change["start_date"] == ["2027-01-01", "2027-02-01"]
    [seen] = change["open_debits"]
    assert (seen["debit"], seen["outcome"]) == (march.id, "kept: fits the new terms")
    debits = harness.debits("m1")
    assert [(d.period_first_day.isoformat(), d.state) for d in debits] == [
        ("2027-03-01", "CHARGED"),
        ("2027-04-01", "CHARGED"),
    ]
    # April's calendar number under the new terms (2) is March's: April got a number of its own.
    assert len({d.cycle for d in debits}) == 2


def test_a_corrected_start_date_in_a_re_import_neither_charges_twice_nor_skips(
    harness: Harness,
) -> None:
    harness.add_mandate("m2")
    harness.tick(T0)
    report = reimport(harness, "m2", start_date="2027-02-01")
    assert report.updated == 1
    run_until(harness, MAY)
    assert charges_by_day(harness, "m2") == [("2027-03-05", "399.00"), ("2027-04-05", "399.00")]


# -- 2. a planned debit under old terms ------------------------------------------------------------


def test_a_debit_planned_under_old_terms_is_re_planned_under_the_new_ones_not_sent(
    harness: Harness, db_url: str, tmp_path: Path
) -> None:
    harness.add_mandate("var", amount_rule="VARIABLE", max_amount="1000", amount="900")
    harness.add_mandate("day", rule_type="ON", rule_value=5)
    harness.tick(T0)
    [old_var] = harness.debits("var")
    [old_day] = harness.debits("day")
    # The merchant lowers max to 500 and the plan to 400; the rule day of "day" moves to the 20th.
    juspays_copy(harness, "var", amount_rule="VARIABLE", max_amount="500")
    juspays_copy(harness, "day", rule_value=20)
    assert reimport(harness, "var", amount_rule="VARIABLE", max_amount="500", amount="400").bad == 0
    assert reimport(harness, "day", rule_value=20).bad == 0
    run_until(harness, MAY)
    assert charges_by_day(harness, "var") == [("2027-03-05", "400.00"), ("2027-04-05", "400.00")]
    assert charges_by_day(harness, "day") == [("2027-03-20", "399.00"), ("2027-04-20", "399.00")]

    [change] = terms_changes(harness, "var")
    [seen] = change["open_debits"]
    assert seen["debit"] == old_var.id
    assert seen["outcome"].startswith("CANCELLED: amount 900.00 no longer fits the terms")
    [change] = terms_changes(harness, "day")
    assert change["open_debits"][0]["outcome"].startswith(
        "CANCELLED: window now 2027-03-20, was 2027-03-05"
    )
    for mandate_id, old in (("var", old_var), ("day", old_day)):
        assert harness.orders(old.id) == []  # never sent
        [ended] = [d for d in harness.debits(mandate_id) if d.id == old.id]
        assert ended.state == "CANCELLED"
        assert ended.superseded_at is not None

    # `billing mandates show` lists the change and what became of the open debit.
    shown = run("mandates", "show", "var", cwd=tmp_path, env={"BILLING_DATABASE_URL": db_url})
    assert shown.returncode == 0, shown.stderr
    section = shown.stdout.split("terms changes")[1].split("\nchanges:")[0]
    assert "max_amount 1000.00 -> 500.00" in section
    assert f"{old_var.id} (cycle 2)" in section
    assert "CANCELLED: amount 900.00 no longer fits the terms" in section


def test_a_debit_whose_flow_changed_since_it_was_planned_is_checked_before_sending(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(notification_flows="CARD:none")
    harness.add_mandate("flow", rule_type="AFTER")  # a window from the 5th to the month's end
    harness.tick(T0)
    [planned] = harness.debits("flow")
    assert planned.flow == "none"
    # The operator moves CARD to the juspay flow: the debit planned for the none flow (executed
    # on the planned instant, without Juspay's notice) no longer fits; it is not sent as planned
    # but planned again for the juspay flow, in the same period.
    moved = harness_factory(notification_flows="CARD:juspay")
    run_until(moved, MAY)
    assert charges_by_day(moved, "flow") == [("2027-03-05", "399.00"), ("2027-04-05", "399.00")]
    debits = moved.debits("flow")
    first = next(d for d in debits if d.id == planned.id)
    assert first.state == "CANCELLED"
    assert moved.orders(first.id) == []
    assert first.last_error == "flow now juspay, was none"
    march = [d for d in debits if d.period_first_day.month == 3 and d.id != first.id]
    assert [(d.flow, d.state) for d in march] == [("juspay", "CHARGED")]


def test_a_merchant_flow_debit_whose_flow_changed_sends_no_pre_debit_notification(
    harness_factory: Callable[..., Harness],
) -> None:
    # The PDN is a call about the debit too: one planned for the merchant flow, whose payment
    # method has since moved to Juspay's flow, must not announce a debit that will not happen
    # as announced (Juspay sends its own notice for the one planned again).
    harness = harness_factory(notification_flows="CARD:merchant")
    harness.add_mandate("notice", rule_type="AFTER")
    harness.tick(T0)
    [planned] = harness.debits("notice")
    assert planned.flow == "merchant"
    moved = harness_factory(notification_flows="CARD:juspay")
    run_until(moved, MAY)
    with moved.app.sessions() as session:
        ours = session.scalars(
            select(Notification.reference).where(Notification.debit_id == planned.id)
        ).all()
    assert ours == []
    first = next(d for d in moved.debits("notice") if d.id == planned.id)
    assert (first.state, first.last_error) == ("CANCELLED", "flow now juspay, was merchant")
    assert charges_by_day(moved, "notice") == [("2027-03-05", "399.00"), ("2027-04-05", "399.00")]


# -- 3. an import without a status ----------------------------------------------------------------


def test_an_import_without_a_status_keeps_the_pause_juspay_sent_and_the_cycle_survives(
    hook: Callable[..., Hooked],  # noqa: F811 - the fixture imported above
) -> None:
    hooked = hook()
    harness = hooked.harness
    harness.add_mandate("paused", amount_rule="VARIABLE", max_amount="1000", amount="500",
                        rule_type="AFTER", rule_value=5)  # fmt: skip
    harness.tick(T0)
    paused_at = T0 + timedelta(hours=1)
    harness.at(paused_at)
    harness.control("mandates/paused/status", status="PAUSED", webhook=True)
    wait_until(hooked.settled, what="MANDATE_PAUSED processed")
    assert mandate_status(harness, "paused") == "PAUSED"

    # The merchant re-imports the file (no status column) to change the plan amount.
    harness.at(paused_at + timedelta(hours=1))
    report = reimport(harness, "paused", amount_rule="VARIABLE", max_amount="1000",
                      amount="600", rule_type="AFTER", rule_value=5)  # fmt: skip
    assert (report.updated, report.bad) == (1, 0)
    assert mandate_status(harness, "paused") == "PAUSED"
    assert [(k.line, k.mandate_id, k.kept, k.in_file) for k in report.kept] == [
        (2, "paused", "PAUSED", None)
    ]
    # A file claiming ACTIVE, dated before the pause Juspay sent, does not override it either.
    report = reimport(harness, "paused", now=paused_at - timedelta(minutes=5), status="ACTIVE",
                      amount_rule="VARIABLE", max_amount="1000", amount="600",
                      rule_type="AFTER", rule_value=5)  # fmt: skip
    assert [(k.kept, k.in_file) for k in report.kept] == [("PAUSED", "ACTIVE")]
    assert "after this file" in report.kept[0].reason
    assert mandate_status(harness, "paused") == "PAUSED"

    run_until(harness, datetime(2027, 3, 9, tzinfo=UTC))
    assert harness.txns_calls() == 0  # held while paused: never sent to be refused
    harness.control("mandates/paused/status", status="ACTIVE", webhook=True)
    wait_until(hooked.settled, what="MANDATE_ACTIVATED processed")
    run_until(harness, datetime(2027, 3, 14, tzinfo=UTC))
    [march] = harness.debits("paused")
    assert march.state == "CHARGED"
    assert [c["amount"] for c in harness.ledger("paused")] == ["500.00"]


def mandate_status(harness: Harness, mandate_id: str) -> str:
    with harness.app.sessions() as session:
        return registry.require(session, mandate_id).status


# -- 4. a transient storage error while processing a webhook ---------------------------------------


class StorageFault:
    """Makes the first database transaction after each claim of a webhook event fail for real:
    SQLite finds the database locked by another connection (taken as the claim's connection goes
    back to the pool, held until SQLite reports it locked); PostgreSQL has the handler's
    connection terminated by another session (`pg_terminate_backend`)."""

    def __init__(self, harness: Harness, times: int) -> None:
        self.engine = harness.app.engine
        self.remaining = times
        self.armed = False
        self.failures = 0
        self.locker: sqlite3.Connection | None = None
        url = self.engine.url
        self.sqlite_path = url.database if url.get_backend_name() == "sqlite" else None
        self.engine.dispose()  # new connections take the short busy timeout below
        event.listen(self.engine, "connect", self._connect)
        event.listen(self.engine, "after_cursor_execute", self._after)
        event.listen(self.engine, "checkin", self._checkin)
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "handle_error", self._error)

    def _connect(self, dbapi_connection: Any, _record: Any) -> None:
        if self.sqlite_path is not None:
            dbapi_connection.execute("PRAGMA busy_timeout=100")

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE webhook_events SET state") and "attempts" in statement:
            self.armed = self.remaining > 0  # a claim: the next transaction is the handler's

    def _checkin(self, _dbapi_connection: Any, _record: Any) -> None:
        if self.armed and self.sqlite_path is not None:  # the claim is committed
            self.armed = False
            self.remaining -= 1
            self.locker = sqlite3.connect(self.sqlite_path, isolation_level=None)
            self.locker.execute("BEGIN IMMEDIATE")  # another process writing, for longer

    def _begin(self, conn: Any) -> None:
        if self.armed and self.sqlite_path is None:
            self.armed = False
            self.remaining -= 1
            pid = conn.connection.dbapi_connection.info.backend_pid
            dsn = make_url(self.engine.url).set(drivername="postgresql")
            # The driver itself, outside billing's pool: another session kills this one.
            with psycopg.connect(
                dsn.render_as_string(hide_password=False), autocommit=True
            ) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def _error(self, _context: Any) -> None:
        self.failures += 1
        if self.locker is not None:
            self.locker.rollback()
            self.locker.close()
            self.locker = None


@pytest.fixture
def delivered(harness: Harness) -> Iterator[Callable[[], list[WebhookEvent]]]:
    """The sandbox's webhooks stored by the real receiver, not processed (the test does)."""
    app = harness.app
    server = ThreadServer(
        create_app(
            sessions=app.sessions,
            config=ReceiverConfig(WEBHOOK_USERNAME, WEBHOOK_PASSWORD),
            enqueue=lambda _pk: None,
            clock=app.clock,
        )
    )
    url = server.start() + "/webhooks/juspay"
    harness.sandbox.state.webhooks.configure(
        url=url, username=WEBHOOK_USERNAME, password=WEBHOOK_PASSWORD
    )

    def events() -> list[WebhookEvent]:
        with app.sessions() as session:
            return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))

    yield events
    server.stop()


def test_a_transient_storage_error_while_processing_a_webhook_is_retried_and_never_poisons_it(
    harness: Harness, delivered: Callable[[], list[WebhookEvent]]
) -> None:
    harness.add_mandate("rev")
    harness.add_mandate("rev2")
    harness.tick(T0)
    harness.control("mandates/rev/status", status="REVOKED", webhook=True)
    harness.control("mandates/rev2/status", status="REVOKED", webhook=True)
    wait_until(lambda: len(delivered()) == 2, what="both MANDATE_REVOKED stored")
    first, second = delivered()
    app = harness.app

    # Storage fails under the handler once: tried again after a short wait, applied, uncounted.
    fault = StorageFault(harness, times=1)
    result = app.webhook_events().process(first.id)
    assert fault.failures >= 1
    assert result.startswith("PROCESSED: mandate rev REVOKED")
    [stored] = [e for e in delivered() if e.id == first.id]
    assert (stored.state, stored.failures, stored.last_error) == ("PROCESSED", 0, None)

    # Storage fails at every try, more often than the poison limit: never POISONED, never
    # counted; once storage is back the event is applied.
    fault.remaining = MAX_ATTEMPTS + 2
    events = WebhookEvents(
        app.sessions, clock=app.clock, calendar=app.calendar, debits=app.debits,
        notifications=app.notifications, transient_backoff=(),
    )  # fmt: skip
    for _ in range(MAX_ATTEMPTS + 2):
        with pytest.raises(Exception) as raised:
            events.process(second.id)
        assert "OperationalError" in type(raised.value).__name__
        [stored] = [e for e in delivered() if e.id == second.id]
        assert (stored.state, stored.failures) == ("RECEIVED", 0)
        assert (stored.last_error or "").startswith("transient, not counted")
    assert events.process(second.id).startswith("PROCESSED: mandate rev2 REVOKED")
    with app.sessions() as session:
        statuses = dict(session.execute(select(Mandate.mandate_id, Mandate.status)).all())
    assert statuses == {"rev": "REVOKED", "rev2": "REVOKED"}
