"""Named queries on the mandate registry: batched upserts for imports, planning selection.

Imports of millions of rows go through Core statements in batches (executemany), never through
ORM objects kept in a session, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from billing.store.models import Mandate, MandateChange

MANDATES = Mandate.metadata.tables["mandates"]

# The columns an import, a sync or a webhook may set; everything else is bookkeeping.
TERM_COLUMNS = (
    "customer_id",
    "frequency",
    "rule_type",
    "rule_value",
    "amount_rule",
    "max_amount",
    "currency",
    "start_date",
    "end_date",
    "payment_method_type",
)
MUTABLE_COLUMNS = (*TERM_COLUMNS, "status", "plan_amount", "next_cycle", "next_cycle_at")


def existing(session: Session, mandate_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The stored rows (as plain dicts) of those mandate ids that exist."""
    if not mandate_ids:
        return {}
    rows = session.execute(select(Mandate).where(Mandate.mandate_id.in_(list(mandate_ids))))
    result: dict[str, dict[str, Any]] = {}
    for (mandate,) in rows:
        result[mandate.mandate_id] = {
            "id": mandate.id,
            "mandate_id": mandate.mandate_id,
            "status_at": mandate.status_at,
            **{c: getattr(mandate, c) for c in MUTABLE_COLUMNS},
        }
        session.expunge(mandate)
    return result


def insert_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        # Core, not ORM bulk insert: no per-row RETURNING of keys, ~3x faster on PostgreSQL.
        session.connection().execute(insert(MANDATES), list(rows))


def update_many(session: Session, rows: Sequence[Mapping[str, Any]], *, at: datetime) -> None:
    """Update every mutable column of the given rows (each has `id` and all MUTABLE_COLUMNS)."""
    if not rows:
        return
    statement = (
        update(Mandate)
        .where(Mandate.id == bindparam("_pk"))
        .values({c: bindparam(f"_{c}") for c in (*MUTABLE_COLUMNS, "status_at", "updated_at")})
        .execution_options(synchronize_session=False)
    )
    params = [
        {
            "_pk": row["id"],
            "_status_at": row.get("status_at"),
            "_updated_at": at,
            **{f"_{c}": row[c] for c in MUTABLE_COLUMNS},
        }
        for row in rows
    ]
    session.connection().execute(statement, params)


def record_changes(
    session: Session,
    entries: Iterable[tuple[int, str, str, Mapping[str, Any]]],
    *,
    at: datetime,
) -> None:
    """Append (mandate_pk, kind, source, detail) rows to the mandate's change history."""
    rows = [
        {
            "mandate_pk": pk,
            "at": at,
            "kind": kind,
            "source": source,
            "detail": json.dumps(detail, default=str, sort_keys=True),
        }
        for pk, kind, source, detail in entries
    ]
    if rows:
        session.execute(insert(MandateChange), rows)


def due_for_planning(
    session: Session, cutoff: datetime, *, limit: int, skip_locked: bool
) -> list[Mandate]:
    """ACTIVE mandates whose next cycle is due for planning, through (status, next_cycle_at).

    The cost follows the number of mandates returned, not the size of the registry: the
    query is a range scan on the index, and the cursor moves forward as debits are planned.
    """
    statement = due_for_planning_statement(cutoff, limit=limit)
    if skip_locked:
        statement = statement.with_for_update(skip_locked=True)
    return list(session.scalars(statement))


def due_for_planning_statement(cutoff: datetime, *, limit: int) -> Select[Mandate]:
    return (
        select(Mandate)
        .where(Mandate.status == "ACTIVE", Mandate.next_cycle_at <= cutoff)
        .order_by(Mandate.next_cycle_at)
        .limit(limit)
    )


def set_cursors(
    session: Session, cursors: Sequence[tuple[int, int | None, datetime | None]], *, at: datetime
) -> None:
    """Move planning cursors: (mandate pk, next cycle number, its planned instant)."""
    if not cursors:
        return
    statement = (
        update(Mandate)
        .where(Mandate.id == bindparam("_pk"))
        .values(
            next_cycle=bindparam("_n"), next_cycle_at=bindparam("_at"), updated_at=bindparam("_u")
        )
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(
        statement, [{"_pk": pk, "_n": n, "_at": when, "_u": at} for pk, n, when in cursors]
    )


def get(session: Session, mandate_id: str, *, for_update: bool = False) -> Mandate | None:
    statement = select(Mandate).where(Mandate.mandate_id == mandate_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def release_holds(session: Session, mandate_ids: Collection[str], *, at: datetime) -> int:
    """Lift the hold of these mandates (a sync from Juspay succeeded); record each release."""
    held = session.execute(
        select(Mandate.id, Mandate.hold_reason).where(
            Mandate.mandate_id.in_(list(mandate_ids)), Mandate.hold_reason.is_not(None)
        )
    ).all()
    if not held:
        return 0
    session.execute(
        update(Mandate)
        .where(Mandate.id.in_([pk for pk, _ in held]))
        .values(hold_reason=None, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    record_changes(
        session, [(pk, "hold", "sync", {"hold": [reason, None]}) for pk, reason in held], at=at
    )
    return len(held)
