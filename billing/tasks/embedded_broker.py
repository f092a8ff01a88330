"""The embedded broker's housekeeping (kombu's SQLAlchemy transport, `sqla+sqlite:///…`).

kombu marks a delivered message invisible and never deletes it (its `_get`), so the broker's
database grows by every message ever sent and each fetch skips more invisible rows. An
invisible row is never delivered again (a message restored after a worker's graceful stop is a
new row), so beat deletes them, a chunk per statement to keep SQLite's write lock short.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text

from billing.tasks.worker import broker_database_url, broker_transport

CHUNK = 5_000

_DELETE = text(
    "DELETE FROM kombu_message WHERE id IN "
    "(SELECT id FROM kombu_message WHERE visible = :delivered LIMIT :chunk)"
)


def delete_delivered_messages(broker_url: str, *, chunk: int = CHUNK) -> int:
    """Rows of delivered messages deleted from an embedded broker; 0 for any other broker."""
    if broker_transport(broker_url) != "sqla":
        return 0
    engine = create_engine(broker_database_url(broker_url))
    deleted = 0
    try:
        while True:
            with engine.begin() as connection:
                count = connection.execute(_DELETE, {"delivered": False, "chunk": chunk}).rowcount
            deleted += count
            if count < chunk:
                return deleted
    finally:
        engine.dispose()
