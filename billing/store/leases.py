"""Leasing due rows to one dispatcher: the selection half of "beat selects, a task claims".

A selection marks its rows `dispatched_at = now` in the same transaction, so a second beat
(or the next pass while the queue is still busy) does not enqueue them again within the lease.
The lease saves work; it never decides who moves money (the per-item claim does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from billing.store.db import is_postgres


def _not_leased(column: InstrumentedAttribute[Any], now: datetime, lease: timedelta) -> Any:
    return or_(column.is_(None), column < now - lease)


def claim_ids(
    session: Session,
    id_column: InstrumentedAttribute[Any],
    model: Any,
    where: Sequence[ColumnElement[bool]],
    order_by: InstrumentedAttribute[Any],
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
) -> list[Any]:
    """Up to `limit` ids matching `where` that no one holds, leased to the caller in its own
    transaction (`dispatched_at = now`; rows locked elsewhere are skipped on PostgreSQL)."""
    statement = (
        select(id_column)
        .where(*where, _not_leased(model.dispatched_at, now, lease))
        .order_by(order_by)
        .limit(limit)
    )
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update(skip_locked=True)
    ids = list(session.scalars(statement))
    if ids:
        session.execute(
            update(model)
            .where(id_column.in_(ids))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids
