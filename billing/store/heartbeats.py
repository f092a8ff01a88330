"""Heartbeats: one row per process role, overwritten (an upsert, safe under two beats)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billing.store.db import is_postgres
from billing.store.models import Heartbeat


def record(session: Session, name: str, *, at: datetime, detail: str | None = None) -> None:
    insert = pg_insert if is_postgres(session.get_bind()) else sqlite_insert
    statement = insert(Heartbeat).values(name=name, at=at, detail=detail)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Heartbeat.name], set_={"at": at, "detail": detail}
        )
    )


def read(session: Session, name: str) -> Heartbeat | None:
    return session.scalar(select(Heartbeat).where(Heartbeat.name == name))
