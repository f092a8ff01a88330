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
from billing.domain.schedule import DebitCalendar
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
