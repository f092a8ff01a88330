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
_EXISTING_COLUMNS = ("id", "mandate_id", "status_at", *MUTABLE_COLUMNS)


def existing(session: Session, mandate_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The stored rows (as plain dicts) of those mandate ids that exist."""
    if not mandate_ids:
        return {}
    # Core columns, not ORM objects: no identity map or instance state per row (an import
    # reads a million of them).
    statement = select(*(MANDATES.c[name] for name in _EXISTING_COLUMNS)).where(
        MANDATES.c.mandate_id.in_(list(mandate_ids))
    )
    return {row["mandate_id"]: dict(row) for row in session.execute(statement).mappings()}


def insert_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new mandates (every row has the same keys) in the session's transaction.

    Each value goes through its column type's bind processor (Money, UTCDateTime: the same
    conversions as any Core statement), then straight to the driver: COPY on PostgreSQL, one
    executemany on SQLite. SQLAlchemy's per-row parameter handling was a third of an import.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    # In the table's order: the order of the compiled INSERT's columns.
    names = [column.name for column in MANDATES.c if column.name in rows[0]]
    if len(names) != len(rows[0]):
        raise ValueError(f"not columns of mandates: {sorted(set(rows[0]) - set(names))}")
    if any(c.default is not None and c.name not in rows[0] for c in MANDATES.c):
        # The driver applies no Python-side column defaults; Core does.
        connection.execute(insert(MANDATES), list(rows))
        return
    processors = [MANDATES.c[name].type.bind_processor(dialect) for name in names]
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]
    values: list[list[Any]] = []
    for row in rows:
        value = [row[name] for name in names]
        for i, process in converting:
            value[i] = process(value[i])
        values.append(value)
    driver = connection.connection.driver_connection
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        quote = dialect.identifier_preparer.quote
        copy_sql = "COPY {} ({}) FROM STDIN".format(
            quote(MANDATES.name), ", ".join(quote(name) for name in names)
        )  # names are the table's own columns (MANDATES.c[name] above)
        with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
            for value in values:
                copy.write_row(value)
        return
    if dialect.name == "sqlite":
        statement = str(insert(MANDATES).compile(dialect=dialect, column_keys=names))
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(statement, values)
        finally:
            cursor.close()
        return
    # Core, not ORM bulk insert: no per-row RETURNING of keys.
    connection.execute(insert(MANDATES), list(rows))


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
