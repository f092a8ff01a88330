"""The composition root: the one place that turns settings into engines, clients and clocks.

Entry points (CLI, Celery worker, webhook receiver) call `build()`; nothing connects at import
time, and a Celery worker builds its container after fork (`worker_process_init`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing.config import Settings, load_settings
from billing.domain.debit import RetryPolicy
from billing.domain.schedule import DebitCalendar
from billing.gateway import JuspayClient
from billing.services.debits import DebitPolicy, Debits
from billing.services.notifications import Notifications
from billing.services.orders import Orders
from billing.services.planning import PlanningPolicy
from billing.store.db import make_engine, make_session_factory

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = system_clock
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _gateway: JuspayClient | None = field(default=None, repr=False)

    @property
    def gateway(self) -> JuspayClient:
        """The Juspay client, built on first use (one per process, after a worker forks)."""
        if self._gateway is None:
            s = self.settings
            s.require("juspay_api_key", "juspay_merchant_id")
            assert s.juspay_api_key is not None  # checked by require()
            assert s.juspay_merchant_id is not None
            self._gateway = JuspayClient(
                base_url=s.juspay_base_url,
                api_key=s.juspay_api_key.get_secret_value(),
                merchant_id=s.juspay_merchant_id,
                api_version=s.juspay_api_version,
                connect_timeout=s.juspay_connect_timeout.total_seconds(),
                read_timeout=s.juspay_read_timeout.total_seconds(),
                attempt_path=s.attempt_path,
            )
            self._closers.append(self._gateway.close)
        return self._gateway

    @property
    def debit_policy(self) -> DebitPolicy:
        s = self.settings
        return DebitPolicy(
            planning=self.planning,
            retry=RetryPolicy(max_tries=s.max_tries_per_cycle, schedule=s.retry_schedule),
            pending_max_age=s.pending_max_age,
            stale_claim_after=s.stale_claim_after,
        )

    def debits(self) -> Debits:
        return Debits(self.sessions, self.gateway, self.debit_policy, self.clock)

    def orders(self) -> Orders:
        return Orders(self.sessions, self.gateway, self.debit_policy, self.clock, self.debits())

    def notifications(self) -> Notifications:
        return Notifications(self.sessions, self.gateway, self.debit_policy, self.clock)

    @property
    def calendar(self) -> DebitCalendar:
        return DebitCalendar(tz=self.settings.timezone, debit_time=self.settings.debit_time)

    @property
    def planning(self) -> PlanningPolicy:
        return PlanningPolicy(
            calendar=self.calendar,
            execution_lead=self.settings.execution_lead,
            horizon=self.settings.planning_horizon,
            flows=self.settings.notification_flows,
        )

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
        self.engine.dispose()


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> Container:
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    return Container(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or system_clock,
    )
