"""Debit planning: mandate calendar -> PLANNED debits, the forecast, and presented debits.

Planning is idempotent and safe to run from two beats or two workers at once: mandates are
selected through the (status, next_cycle_at) index (with SKIP LOCKED on PostgreSQL) and each
(mandate, cycle) debit is inserted with ON CONFLICT DO NOTHING, so the unique constraint, not
timing, decides who creates it.

A debit's identity is the period it collects, not its cycle number: the number counts periods
from start_date, and a change of start_date, frequency or rule re-numbers them. So a period
that a debit already holds (any debit but one a change of terms superseded) is never planned
again, and a cycle number a debit of another period has is never reused (its order ids would
be that debit's): the period is planned under the next unused number, and said so.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.errors import InvalidField
from billing.domain.mandate import Frequency, MandateStatus, Terms, validate_plan_amount
from billing.domain.schedule import Cycle, DebitCalendar, cycle, first_open_cycle, next_cycle
from billing.domain.schedule import presented_cycle as presented
from billing.domain.timing import Flow, execution_due_at, pdn_due_at, pdn_txn_date
from billing.services import ServiceError
from billing.services.mandates.registry import require, terms_of
from billing.store import debits as debit_store
from billing.store import mandates as mandate_store
from billing.store.db import is_postgres
from billing.store.models import Debit, Mandate

log = logging.getLogger("billing.planning")

FINAL_DEBIT_STATES = ("CHARGED", "FAILED", "SKIPPED", "CANCELLED", "MANUAL_REVIEW")
# Not yet sent: a debit in one of these past its planned instant is overdue (catch-up after an
# import or an outage, a retry): beat sends it as soon as it is due.
NOT_YET_SENT = ("PLANNED", "NOTIFYING", "NOTIFIED", "RETRY_SCHEDULED")


@dataclass(frozen=True, slots=True)
class PlanningPolicy:
    """What planning needs from settings: calendar, lead, horizon and the flow per method."""

    calendar: DebitCalendar
    execution_lead: timedelta
    horizon: timedelta
    flows: Mapping[str, str]

    def flow_for(self, payment_method_type: str) -> Flow:
        return Flow(self.flows.get(payment_method_type, "none"))

    def due_at(self, flow: Flow, planned_at: datetime) -> datetime:
        """When the debit's first step is due: the PDN (merchant flow) or the execution call."""
        if flow is Flow.MERCHANT:
            return pdn_due_at(planned_at, self.execution_lead)
        return execution_due_at(flow, planned_at, self.execution_lead)

    def first_debit_at(self, flow: Flow, planned_at: datetime, now: datetime) -> datetime:
        """When Juspay would debit a debit planned at `planned_at`, its first step taken when due
        (or now, if that has passed): the PDN's day (merchant), the lead (juspay), or at once."""
        due = max(now, self.due_at(flow, planned_at))
        if flow is Flow.MERCHANT:
            return pdn_txn_date(planned_at, due)
        if flow is Flow.JUSPAY:
            return max(planned_at, due + self.execution_lead)
        return max(planned_at, due)

    def cutoff(self, now: datetime) -> datetime:
        """Plan every debit whose planned instant falls before now + lead + horizon."""
        return now + self.execution_lead + self.horizon


@dataclass
class PlanningReport:
    mandates_examined: int = 0
    debits_created: int = 0
    # Periods not planned because a debit already holds them (a resume, a change of terms).
    periods_already_held: int = 0
    # Periods planned under another cycle number: theirs belongs to a debit of another period.
    cycles_renumbered: int = 0
    # Inserts that found their (mandate, cycle) taken (a concurrent planner): logged, counted.
    cycles_taken: int = 0


def _new_debit(
    mandate: Mandate, found: Cycle, policy: PlanningPolicy, number: int
) -> debit_store.NewDebit:
    flow = policy.flow_for(mandate.payment_method_type)
    assert mandate.plan_amount is not None  # selected mandates are schedulable
    return debit_store.NewDebit(
        mandate_pk=mandate.id,
        cycle=number,
        period_first_day=found.period.first_day,
        period_last_day=found.period.last_day,
        flow=flow.value,
        amount=mandate.plan_amount,
        currency=mandate.currency,
        window_first_day=found.window.first_day,
        window_last_day=found.window.last_day,
        planned_at=found.planned_at,
        window_closes_at=found.window_closes_at,
        due_at=policy.due_at(flow, found.planned_at),
    )


def _cycles_to_plan(
    mandate: Mandate, policy: PlanningPolicy, now: datetime, cutoff: datetime
) -> tuple[list[Cycle], Cycle | None]:
    """The cycles of one mandate due for planning up to `cutoff`, and its next one after them."""
    terms = terms_of(mandate)
    cal = policy.calendar
    upcoming = None
    if mandate.next_cycle is not None:
        upcoming = cycle(terms, mandate.next_cycle, cal) or next_cycle(
            terms, mandate.next_cycle, cal
        )
    if upcoming is None or upcoming.window_closes_at <= now:
        # The cursor fell behind (an outage, a resume): never plan a window that has closed.
        upcoming = first_open_cycle(terms, now, cal)
    found: list[Cycle] = []
    if mandate.plan_amount is None:
        return found, None
    while upcoming is not None and upcoming.planned_at <= cutoff:
        found.append(upcoming)
        upcoming = next_cycle(terms, upcoming.number, cal)
    return found, upcoming


@dataclass
class _Batch:
    """One batch's plan: the cycles found per mandate, filtered by what debits already hold."""

    report: PlanningReport
    debits: list[debit_store.NewDebit] = field(default_factory=list)

    def add(
        self,
        mandate: Mandate,
        found: Sequence[Cycle],
        policy: PlanningPolicy,
        held: list[tuple[date, date]],
        used: set[int],
    ) -> None:
        for candidate in found:
            period = candidate.period
            if any(first <= period.last_day and period.first_day <= last for first, last in held):
                log.info(
                    "mandate %s: period %s..%s already has its debit; not planned again",
                    mandate.mandate_id, period.first_day, period.last_day,
                )  # fmt: skip
                self.report.periods_already_held += 1
                continue
            number = candidate.number
            if number in used:
                number = max(used) + 1
                log.warning(
                    "mandate %s: cycle %s is another debit's (the terms changed since it was "
                    "planned); period %s..%s planned as cycle %s",
                    mandate.mandate_id, candidate.number, period.first_day, period.last_day,
                    number,
                )  # fmt: skip
                self.report.cycles_renumbered += 1
            used.add(number)
            held.append((period.first_day, period.last_day))
            self.debits.append(_new_debit(mandate, candidate, policy, number))


def plan_debits(
    sessions: sessionmaker[Session],
    policy: PlanningPolicy,
    *,
    now: datetime,
    batch_size: int = 500,
) -> PlanningReport:
    """Create the PLANNED debits that fall due within the horizon; return what was done."""
    report = PlanningReport()
    cutoff = policy.cutoff(now)
    while True:
        with sessions() as session, session.begin():
            mandates = mandate_store.due_for_planning(
                session, cutoff, limit=batch_size, skip_locked=is_postgres(session.get_bind())
            )
            batch = _Batch(report)
            cursors: list[tuple[int, int | None, datetime | None]] = []
            found_per_mandate: list[tuple[Mandate, list[Cycle]]] = []
            for mandate in mandates:
                found, upcoming = _cycles_to_plan(mandate, policy, now, cutoff)
                if found:
                    found_per_mandate.append((mandate, found))
                cursors.append(
                    (
                        mandate.id,
                        *((upcoming.number, upcoming.planned_at) if upcoming else (None, None)),
                    )
                )
            pks = [m.id for m, _ in found_per_mandate]
            firsts = [found[0] for _, found in found_per_mandate]
            held = debit_store.periods_held(
                session, pks, since=min((c.period.first_day for c in firsts), default=date.max)
            )
            used = debit_store.cycles_used(
                session, pks, from_number=min((c.number for c in firsts), default=0)
            )
            for mandate, found in found_per_mandate:
                batch.add(
                    mandate, found, policy, held.get(mandate.id, []), used.get(mandate.id, set())
                )
            created = debit_store.insert_planned_rows(session, batch.debits, at=now)
            _say_taken(batch.debits, created, report)
            mandate_store.set_cursors(session, cursors, at=now)
            report.mandates_examined += len(mandates)
            report.debits_created += len(created)
        if len(mandates) < batch_size:
            return report


def _say_taken(
    wanted: Sequence[debit_store.NewDebit],
    created: Sequence[debit_store.Created],
    report: PlanningReport,
) -> None:
    """A planned debit whose (mandate, cycle) was taken meanwhile is never dropped silently."""
    made = {(c.mandate_pk, c.cycle) for c in created}
    for debit in wanted:
        if (debit.mandate_pk, debit.cycle) not in made:
            log.warning(
                "mandate pk %s: cycle %s (period %s..%s) was taken when it was inserted; "
                "not planned by this pass",
                debit.mandate_pk, debit.cycle, debit.period_first_day, debit.period_last_day,
            )  # fmt: skip
            report.cycles_taken += 1


@dataclass(frozen=True, slots=True)
class ForecastDebit:
    day: date
    planned_at: datetime
    mandate_id: str
    customer_id: str
    amount: Decimal
    flow: str
    state: str  # a planned debit's state, or FORECAST for a cycle not planned yet
    overdue: bool = False  # planned before now, not yet sent, its window still open
    due_at: datetime | None = None


@dataclass
class ForecastDay:
    day: date | None  # None for the overdue bucket
    overdue: bool = False
    count: int = 0
    total: Decimal = Decimal("0.00")
    by_flow: dict[str, list[Decimal | int]] = field(default_factory=dict)
    debits: list[ForecastDebit] = field(default_factory=list)

    def add(self, debit: ForecastDebit, *, keep: bool) -> None:
        self.count += 1
        self.total += debit.amount
        count_total = self.by_flow.setdefault(debit.flow, [0, Decimal("0.00")])
        count_total[0] += 1
        count_total[1] += debit.amount
        if keep:
            self.debits.append(debit)


def _planned_item(
    debit: Debit, mandate_id: str, customer_id: str, cal: DebitCalendar, *, overdue: bool
) -> ForecastDebit:
    return ForecastDebit(
        cal.local_date(debit.planned_at), debit.planned_at, mandate_id, customer_id,
        debit.amount, debit.flow, debit.state, overdue=overdue, due_at=debit.due_at,
    )  # fmt: skip


def forecast(
    session: Session,
    policy: PlanningPolicy,
    *,
    now: datetime,
    days: int,
    detail: bool = True,
) -> list[ForecastDay]:
    """Read-only: the debits expected in the next `days` days, per local day, with totals.

    First, when there are any, the overdue ones: planned before now, not yet sent, window still
    open (catch-up after an import or an outage, a retry), which beat sends as soon as they are
    due, so they are part of what will be charged. Then planned debits not yet final from the
    debits table, and cycles not yet planned, computed from each ACTIVE mandate's cursor
    (through the same index as planning).
    """
    cal = policy.calendar
    end = now + timedelta(days=days)
    result: dict[date, ForecastDay] = defaultdict(lambda: ForecastDay(date.min))
    overdue = ForecastDay(None, overdue=True)

    def add(item: ForecastDebit) -> None:
        bucket = result[item.day]
        bucket.day = item.day
        bucket.add(item, keep=detail)

    overdue_rows = session.execute(
        select(Debit, Mandate.mandate_id, Mandate.customer_id)
        .join(Mandate, Mandate.id == Debit.mandate_pk)
        .where(
            Debit.planned_at < now,
            Debit.window_closes_at > now,
            Debit.state.in_(NOT_YET_SENT),
        )
        .order_by(Debit.planned_at, Debit.id)
    )
    for debit, mandate_id, customer_id in overdue_rows:
        overdue.add(_planned_item(debit, mandate_id, customer_id, cal, overdue=True), keep=detail)
    planned_rows = session.execute(
        select(Debit, Mandate.mandate_id, Mandate.customer_id)
        .join(Mandate, Mandate.id == Debit.mandate_pk)
        .where(
            Debit.planned_at >= now,
            Debit.planned_at < end,
            Debit.state.not_in(FINAL_DEBIT_STATES),
        )
        .order_by(Debit.planned_at)
    )
    for debit, mandate_id, customer_id in planned_rows:
        add(_planned_item(debit, mandate_id, customer_id, cal, overdue=False))
    upcoming_mandates = session.scalars(
        select(Mandate)
        .where(Mandate.status == "ACTIVE", Mandate.next_cycle_at < end)
        .order_by(Mandate.next_cycle_at)
    )
    for mandate in upcoming_mandates:
        if mandate.plan_amount is None or mandate.next_cycle is None:
            continue
        terms = terms_of(mandate)
        upcoming = cycle(terms, mandate.next_cycle, cal) or next_cycle(
            terms, mandate.next_cycle, cal
        )
        flow = policy.flow_for(mandate.payment_method_type).value
        while upcoming is not None and upcoming.planned_at < end:
            if upcoming.planned_at >= now and upcoming.window_closes_at > now:
                add(
                    ForecastDebit(
                        cal.local_date(upcoming.planned_at),
                        upcoming.planned_at,
                        mandate.mandate_id,
                        mandate.customer_id,
                        mandate.plan_amount,
                        flow,
                        "FORECAST",
                    )
                )
            upcoming = next_cycle(terms, upcoming.number, cal)
    days_ahead = [result[d] for d in sorted(result)]
    return [overdue, *days_ahead] if overdue.count else days_ahead


# Without --on, a presented debit goes on the first day from today its flow's notice allows.
PRESENT_SEARCH_DAYS = 4


def _presented_day(
    terms: Terms, number: int, on: date | None, now: datetime, flow: Flow, policy: PlanningPolicy
) -> Cycle:
    """The presented debit's cycle on `on`, or on the first day its notice allows (no `on`)."""
    cal = policy.calendar
    first = on or cal.local_date(now)
    candidates = [first] if on is not None else [
        first + timedelta(days=n) for n in range(PRESENT_SEARCH_DAYS)
    ]  # fmt: skip
    found = None
    for day in candidates:
        try:
            found = presented(terms, number, day, cal)
        except InvalidField as exc:
            raise ServiceError(str(exc)) from None
        if found.window_closes_at <= now:
            raise ServiceError(f"on: {day} has passed")
        if policy.first_debit_at(flow, found.planned_at, now) < found.window_closes_at:
            break
    assert found is not None  # candidates is never empty
    return found


def present_debit(
    sessions: sessionmaker[Session],
    policy: PlanningPolicy,
    mandate_id: str,
    amount: object,
    *,
    on: date | None,
    now: datetime,
) -> Debit:
    """A merchant-presented debit for an ASPRESENTED or ONETIME mandate, validated by its terms.

    ONETIME mandates take one debit in their life: a second present is refused. The debit
    then follows the same lifecycle as a planned one.
    """
    cal = policy.calendar
    with sessions() as session, session.begin():
        mandate = require(session, mandate_id, for_update=True)
        terms = terms_of(mandate)
        if terms.frequency.is_periodic:
            raise ServiceError(
                f"mandate {mandate_id} is {terms.frequency}: its debits follow the calendar"
            )
        if mandate.status != MandateStatus.ACTIVE:
            raise ServiceError(f"mandate {mandate_id} is {mandate.status}, not ACTIVE")
        value = validate_plan_amount(terms, amount)
        used = session.scalar(select(func.max(Debit.cycle)).where(Debit.mandate_pk == mandate.id))
        number = 0 if used is None else used + 1
        if terms.frequency is Frequency.ONETIME and number > 0:
            raise ServiceError(f"mandate {mandate_id} is ONETIME and was already presented")
        flow = policy.flow_for(mandate.payment_method_type)
        found = _presented_day(terms, number, on, now, flow, policy)
        day = found.window.first_day
        debits_at = policy.first_debit_at(flow, found.planned_at, now)
        if debits_at >= found.window_closes_at:
            # It would be SKIPPED at once: the flow's notice would land it on a later day.
            raise ServiceError(
                f"on: {day} is too soon for a {mandate.payment_method_type} debit ({flow} flow): "
                f"its notice would move it to {cal.local_date(debits_at)}"
            )
        new = debit_store.NewDebit(
            mandate_pk=mandate.id,
            cycle=number,
            flow=flow.value,
            amount=value,
            currency=mandate.currency,
            window_first_day=found.window.first_day,
            window_last_day=found.window.last_day,
            planned_at=found.planned_at,
            window_closes_at=found.window_closes_at,
            due_at=max(now, policy.due_at(flow, found.planned_at)),
        )
        try:
            created = debit_store.insert_planned(
                session, [new], at=now, cause=f"presented by the merchant for {day}"
            )
        except IntegrityError:  # pragma: no cover - the row lock above serialises presents
            created = []
        if not created:
            raise ServiceError(f"mandate {mandate_id}: present raced another; try again")
        debit = session.get_one(Debit, created[0])
        session.expunge(debit)
        return debit
