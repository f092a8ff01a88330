"""Named queries on debits: create planned ones, move them with guarded transitions.

Every state change goes through `move`: a conditional UPDATE (`WHERE id = :id AND state =
:expected`) plus an append-only history row in the same transaction. A rowcount of 0 means
another worker got there first, and the caller must do nothing more with that row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CursorResult, Select, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billing.store.models import Debit, DebitHistory, Mandate
from billing.telemetry import metrics

_MOVES = "billing.debit_moves"  # session.info key: states entered, counted once committed


@dataclass(frozen=True, slots=True)
class NewDebit:
    mandate_pk: int
    cycle: int
    flow: str
    amount: Decimal
    currency: str
    window_first_day: date
    window_last_day: date
    planned_at: datetime
    window_closes_at: datetime
    due_at: datetime
    # The billing period it collects; None = its window (a presented debit: one day).
    period_first_day: date | None = None
    period_last_day: date | None = None


@dataclass(frozen=True, slots=True)
class Created:
    id: int
    mandate_pk: int
    cycle: int


def insert_planned(
    session: Session,
    debits: Sequence[NewDebit],
    *,
    at: datetime,
    cause: str = "planned from the mandate calendar",
) -> list[int]:
    """Insert PLANNED debits, skipping any (mandate, cycle) that already has one.

    Returns the ids of the rows actually created, so running planning twice (or from two
    workers at once) creates each debit exactly once; the unique constraint is the arbiter.
    """
    return [row.id for row in insert_planned_rows(session, debits, at=at, cause=cause)]


def insert_planned_rows(
    session: Session,
    debits: Sequence[NewDebit],
    *,
    at: datetime,
    cause: str = "planned from the mandate calendar",
) -> list[Created]:
    """`insert_planned`, naming each created row's (mandate, cycle): the caller can tell which
    of its debits found their cycle taken."""
    if not debits:
        return []
    rows = [
        {
            "mandate_pk": d.mandate_pk,
            "cycle": d.cycle,
            "state": "PLANNED",
            "flow": d.flow,
            "amount": d.amount,
            "currency": d.currency,
            "period_first_day": d.period_first_day or d.window_first_day,
            "period_last_day": d.period_last_day or d.window_last_day,
            "window_first_day": d.window_first_day,
            "window_last_day": d.window_last_day,
            "planned_at": d.planned_at,
            "window_closes_at": d.window_closes_at,
            "due_at": d.due_at,
            "tries": 0,
            "created_at": at,
            "updated_at": at,
        }
        for d in debits
    ]
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = (
        module.insert(Debit)
        .on_conflict_do_nothing(index_elements=["mandate_pk", "cycle"])
        .returning(Debit.id, Debit.mandate_pk, Debit.cycle)
    )
    created = [Created(*row) for row in session.execute(statement, rows)]
    record_history(session, [(c.id, None, "PLANNED", cause, None) for c in created], at=at)
    _count_on_commit(session, "PLANNED", len(created))
    return created


def record_history(
    session: Session,
    entries: Iterable[tuple[int, str | None, str, str, str | None]],
    *,
    at: datetime,
) -> None:
    """Append (debit_id, from_state, to_state, cause, order_id) rows to the debit history."""
    rows = [
        {
            "debit_id": debit_id,
            "at": at,
            "from_state": from_state,
            "to_state": to_state,
            "cause": cause[:255],
            "order_id": order_id,
        }
        for debit_id, from_state, to_state, cause, order_id in entries
    ]
    if rows:
        session.execute(insert(DebitHistory), rows)


def move(
    session: Session,
    debit_id: int,
    *,
    expected: str,
    target: str,
    at: datetime,
    cause: str,
    order_id: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """Guarded transition; True when this caller moved the row, False when someone else had."""
    statement = (
        update(Debit)
        .where(Debit.id == debit_id, Debit.state == expected)
        .values(state=target, updated_at=at, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    if result.rowcount != 1:
        return False
    record_history(session, [(debit_id, expected, target, cause, order_id)], at=at)
    _count_on_commit(session, target)
    return True


def _count_on_commit(session: Session, state: str, count: int = 1) -> None:
    """`billing_debits_total{state}` counts moves that were committed, not rolled back."""
    if count:
        moves: dict[str, int] = session.info.setdefault(_MOVES, {})
        moves[str(state)] = moves.get(str(state), 0) + count


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    moves = session.info.pop(_MOVES, None)
    if moves:
        for state, count in moves.items():
            metrics.debit_moved(state, count)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_MOVES, None)


@dataclass(frozen=True, slots=True)
class Move:
    """One guarded transition to write with others (`move_many`)."""

    debit_id: int
    expected: str
    target: str
    cause: str
    order_id: str | None = None
    values: tuple[tuple[str, Any], ...] = ()


def move_many(session: Session, moves: Sequence[Move], *, at: datetime) -> set[int]:
    """Guarded transitions in bulk: one UPDATE per (expected, target, values) group and one
    history insert; returns the ids moved (a row no longer in its expected state is not)."""
    groups: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[Move]] = {}
    for m in moves:
        groups.setdefault((m.expected, m.target, m.values), []).append(m)
    moved: set[int] = set()
    for (expected, target, values), members in groups.items():
        statement = (
            update(Debit)
            .where(Debit.id.in_([m.debit_id for m in members]), Debit.state == expected)
            .values(state=target, updated_at=at, **dict(values))
            .returning(Debit.id)
            .execution_options(synchronize_session=False)
        )
        done = set(session.scalars(statement))
        _count_on_commit(session, target, len(done))
        moved.update(done)
    record_history(
        session,
        [
            (m.debit_id, m.expected, m.target, m.cause, m.order_id)
            for m in moves
            if m.debit_id in moved
        ],
        at=at,
    )
    return moved


def hold(
    session: Session, debit: Debit, *, state: str, until: datetime, reason: str, at: datetime
) -> None:
    """Look at a held debit again at `until` (a paused mandate, an unreadable previous order);
    `last_error` says why, and the history too, once per reason (not at every look)."""
    reason = reason[:255]
    if debit.last_error != reason:
        record_history(session, [(debit.id, state, state, reason, None)], at=at)
    session.execute(
        update(Debit)
        .where(Debit.id == debit.id, Debit.state == state)
        .values(due_at=until, updated_at=at, last_error=reason)
        .execution_options(synchronize_session=False)
    )


def due(states: Iterable[str], now: datetime, *, limit: int, skip_locked: bool) -> Select[int]:
    """Ids of debits in `states` whose `due_at` has come, oldest first (index: state, due_at)."""
    statement = (
        select(Debit.id)
        .where(Debit.state.in_(list(states)), Debit.due_at <= now)
        .order_by(Debit.due_at)
        .limit(limit)
    )
    if skip_locked:
        statement = statement.with_for_update(skip_locked=True)
    return statement


def with_mandate(session: Session, debit_id: int) -> tuple[Debit, Mandate] | None:
    """A debit and its mandate, or None if there is no such debit."""
    row = session.execute(
        select(Debit, Mandate)
        .join(Mandate, Mandate.id == Debit.mandate_pk)
        .where(Debit.id == debit_id)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def with_mandates(session: Session, debit_ids: Sequence[int]) -> list[tuple[Debit, Mandate]]:
    """Debits and their mandates in one query (ids that do not exist are simply absent)."""
    rows = session.execute(
        select(Debit, Mandate)
        .join(Mandate, Mandate.id == Debit.mandate_pk)
        .where(Debit.id.in_(list(debit_ids)))
        .order_by(Debit.id)
    )
    return [(row[0], row[1]) for row in rows]


@dataclass(frozen=True, slots=True)
class Claim:
    """A debit to claim for execution, as read: its state and tries, the next try's order."""

    debit_id: int
    expected: str
    tries: int
    order_id: str


def claim_for_execution(session: Session, claims: Sequence[Claim], *, at: datetime) -> set[int]:
    """Claim debits for their next try: `UPDATE ... WHERE id IN (:ids) AND state = :expected AND
    tries = :tries RETURNING id`, one statement per (state, tries) read (usually one), plus
    their history. Returns the ids this caller claimed; any other is someone else's."""
    groups: dict[tuple[str, int], list[int]] = {}
    for c in claims:
        groups.setdefault((c.expected, c.tries), []).append(c.debit_id)
    claimed: set[int] = set()
    for (expected, tries), ids in groups.items():
        statement = (
            update(Debit)
            .where(Debit.id.in_(ids), Debit.state == expected, Debit.tries == tries)
            .values(state="EXECUTING", tries=tries + 1, claimed_at=at, due_at=None, updated_at=at)
            .returning(Debit.id)
            .execution_options(synchronize_session=False)
        )
        claimed.update(session.scalars(statement))
    record_history(
        session,
        [
            (c.debit_id, c.expected, "EXECUTING", f"executing try {c.tries + 1}", c.order_id)
            for c in claims
            if c.debit_id in claimed
        ],
        at=at,
    )
    _count_on_commit(session, "EXECUTING", len(claimed))
    return claimed


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Debit.state, func.count()).group_by(Debit.state))
    return dict(rows.all())


def periods_held(
    session: Session, mandate_pks: Collection[int], *, since: date
) -> dict[int, list[tuple[date, date]]]:
    """The periods (first, last day) that debits of these mandates hold, ending on or after
    `since`: every debit but one a change of terms superseded (index: mandate_pk,
    period_last_day)."""
    held: dict[int, list[tuple[date, date]]] = {}
    if not mandate_pks:
        return held
    rows = session.execute(
        select(Debit.mandate_pk, Debit.period_first_day, Debit.period_last_day).where(
            Debit.mandate_pk.in_(list(mandate_pks)),
            Debit.period_last_day >= since,
            Debit.superseded_at.is_(None),
        )
    )
    for pk, first, last in rows:
        held.setdefault(pk, []).append((first, last))
    return held


def cycles_used(
    session: Session, mandate_pks: Collection[int], *, from_number: int
) -> dict[int, set[int]]:
    """The cycle numbers from `from_number` up that debits of these mandates already have."""
    used: dict[int, set[int]] = {}
    if not mandate_pks:
        return used
    rows = session.execute(
        select(Debit.mandate_pk, Debit.cycle).where(
            Debit.mandate_pk.in_(list(mandate_pks)), Debit.cycle >= from_number
        )
    )
    for pk, number in rows:
        used.setdefault(pk, set()).add(number)
    return used
