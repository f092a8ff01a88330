"""Engine and sessions. Nothing connects at import time; the composition root calls these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool


def make_engine(
    url: str, *, pool_size: int = 5, echo: bool = False, pre_ping: bool = True
) -> Engine:
    """An engine tuned per backend: WAL and a busy timeout on SQLite, pre-ping on PostgreSQL
    (`pre_ping=False` saves a round trip per checkout where a failed statement costs little:
    the webhook receiver answers 503, Juspay delivers again, and the pool reconnects)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # SQLite files are shared between processes (worker, CLI, receiver); WAL and
        # busy_timeout let them take turns instead of failing. Connections are pooled: closing
        # the last one checkpoints the WAL, which costs milliseconds per transaction.
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            poolclass=NullPool if in_memory else QueuePool,
            **({} if in_memory else {"pool_size": pool_size, "max_overflow": pool_size}),
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_on_begin) so that writers take the lock
    # at the start of the transaction and guarded UPDATEs see a consistent row.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE: take the write lock when the transaction starts, so two workers claiming the
    # same row serialise on the lock instead of one failing late with "database is locked".
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(bind: Engine | Connection) -> bool:
    """PostgreSQL gets FOR UPDATE SKIP LOCKED; SQLite serialises writers with BEGIN IMMEDIATE."""
    return bind.dialect.name == "postgresql"
