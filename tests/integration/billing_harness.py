"""A test harness: the real composition root on a real database, talking over HTTP to the
bundled sandbox, with one clock driving both sides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from billing.bootstrap import Container
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from billing.services.mandates import registry
from billing.services.tick import TickReport, run_tick
from billing.store.models import Debit, DebitHistory, Mandate, Notification, Order
from tests.conftest import FakeClock
from tests.integration.sandbox_fixtures import API_KEY, MERCHANT_ID


@dataclass
class Harness:
    app: Container
    sandbox: SandboxServer
    clock: FakeClock

    def at(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.sandbox.state.clock.set(moment)

    def tick(self, moment: datetime | None = None) -> TickReport:
        if moment is not None:
            self.at(moment)
        return run_tick(
            self.app.sessions,
            debits=self.app.debits(),
            orders=self.app.orders(),
            notifications=self.app.notifications(),
            now=self.clock(),
        )

    def run_until(self, end: datetime, *, step: timedelta | None = None) -> None:
        """Tick at every instant something is due (or every `step`) until `end`."""
        while self.clock() < end:
            due = self.next_due()
            nxt = min(end, due) if step is None and due is not None else None
            if nxt is None or nxt <= self.clock():
                nxt = min(end, self.clock() + (step or timedelta(hours=1)))
            self.tick(nxt)

    def next_due(self) -> datetime | None:
        """The earliest future instant at which something waits (a debit, a check)."""
        now = self.clock()
        with self.app.sessions() as session:
            candidates = [
                session.scalar(
                    select(column)
                    .where(column.is_not(None), column > now)
                    .order_by(column)
                    .limit(1)
                )
                for column in (Debit.due_at, Order.next_check_at, Notification.next_check_at)
            ]
        found = [c for c in candidates if c is not None]
        return min(found) if found else None

    def add_mandate(self, mandate_id: str, **terms: object) -> None:
        fields: dict[str, object] = {
            "customer_id": f"cst_{mandate_id}",
            "mandate_id": mandate_id,
            "frequency": "MONTHLY",
            "rule_type": "ON",
            "rule_value": 5,
            "amount_rule": "FIXED",
            "max_amount": "399",
            "start_date": "2027-01-01",
            "payment_method_type": "CARD",
        }
        fields.update(terms)
        report = registry.import_mandates(
            self.app.sessions, [(1, fields)], now=self.clock(), calendar=self.app.calendar
        )
        assert report.bad == 0, report.errors
        # Juspay's copy carries the same terms, dates as epoch seconds (start of the local day).
        local = self.app.calendar.tz
        start = datetime.fromisoformat(str(fields["start_date"])).replace(tzinfo=local)
        self.sandbox.state.seed_mandate(
            mandate_id=mandate_id,
            customer_id=fields["customer_id"],
            status=str(fields.get("status", "ACTIVE")),
            max_amount=str(fields["max_amount"]),
            amount_rule=str(fields["amount_rule"]),
            payment_method_type=str(fields["payment_method_type"]),
            frequency=str(fields["frequency"]),
            rule_type=fields.get("rule_type") or None,
            rule_value=fields.get("rule_value") or None,
            start_date=int(start.timestamp()),
        )

    def fault(self, **spec: Any) -> None:
        self.sandbox.state.faults.add(Fault.from_spec(spec))

    def control(self, path: str, **body: Any) -> dict[str, Any]:
        """Call the sandbox's control API over HTTP (`/sandbox/<path>`), as a test script would."""
        response = httpx.post(f"{self.sandbox.url}/sandbox/{path}", json=body, timeout=5)
        assert response.is_success, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def txns_calls(self) -> int:
        """Mandate executions that reached the sandbox (POST /txns)."""
        return len([r for r in self.sandbox.state.requests if r["path"] == "/txns"])

    def debits(self, mandate_id: str) -> list[Debit]:
        with self.app.sessions() as session:
            return list(
                session.scalars(
                    select(Debit)
                    .join(Mandate, Mandate.id == Debit.mandate_pk)
                    .where(Mandate.mandate_id == mandate_id)
                    .order_by(Debit.cycle)
                )
            )

    def debit(self, mandate_id: str, cycle: int | None = None) -> Debit:
        found = [d for d in self.debits(mandate_id) if cycle is None or d.cycle == cycle]
        assert found, f"no debit for {mandate_id}"
        return found[0]

    def orders(self, debit_id: int) -> list[Order]:
        with self.app.sessions() as session:
            return list(
                session.scalars(
                    select(Order).where(Order.debit_id == debit_id).order_by(Order.try_number)
                )
            )

    def history(self, debit_id: int) -> list[tuple[str | None, str, str]]:
        with self.app.sessions() as session:
            return [
                (h.from_state, h.to_state, h.cause)
                for h in session.scalars(
                    select(DebitHistory)
                    .where(DebitHistory.debit_id == debit_id)
                    .order_by(DebitHistory.id)
                )
            ]

    def ledger(self, mandate_id: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in self.sandbox.state.charges()
            if mandate_id is None or c["mandate_id"] == mandate_id
        ]

    def charged_total(self, mandate_id: str) -> Decimal:
        return sum((Decimal(str(c["amount"])) for c in self.ledger(mandate_id)), Decimal(0))


@pytest.fixture
def harness_factory(
    db_url: str,
    make_container: Callable[..., Container],
    sandbox: SandboxServer,
    clock: FakeClock,
) -> Iterator[Callable[..., Harness]]:
    def make(**settings: object) -> Harness:
        options: dict[str, object] = {
            "juspay_base_url": sandbox.url,
            "juspay_api_key": API_KEY,
            "juspay_merchant_id": MERCHANT_ID,
            "juspay_read_timeout": timedelta(seconds=0.5),
            "juspay_connect_timeout": timedelta(seconds=0.5),
        }
        app = make_container(db_url, **{**options, **settings})
        harness = Harness(app, sandbox, clock)
        harness.at(clock())
        return harness

    yield make
    sandbox.state.clock.real()


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
