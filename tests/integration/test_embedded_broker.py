"""The embedded (SQL) broker keeps every delivered message as a row (kombu marks it invisible
and never deletes it): the file would grow forever and every fetch would skip more rows. Beat's
housekeeping deletes the delivered ones; waiting ones are untouched."""

from __future__ import annotations

from pathlib import Path

from kombu import Connection
from sqlalchemy import create_engine, text

from billing.tasks.embedded_broker import delete_delivered_messages


def test_delivered_messages_are_deleted_and_waiting_ones_kept(tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    with Connection(url) as connection:
        queue = connection.SimpleQueue("gateway")
        for number in range(5):
            queue.put({"n": number})
        taken = [queue.get(timeout=5) for _ in range(3)]
        for message in taken:
            message.ack()
        queue.close()
    assert [m.payload["n"] for m in taken] == [0, 1, 2]

    assert delete_delivered_messages(url, chunk=2) == 3
    assert delete_delivered_messages(url) == 0

    engine = create_engine(f"sqlite:///{tmp_path / 'broker.db'}")
    with engine.connect() as c:
        assert c.scalar(text("SELECT count(*) FROM kombu_message")) == 2
    engine.dispose()
    with Connection(url) as connection:  # the waiting ones are still delivered, in order
        queue = connection.SimpleQueue("gateway")
        assert [queue.get(timeout=5).payload["n"] for _ in range(2)] == [3, 4]
        queue.close()


def test_other_brokers_have_nothing_to_delete() -> None:
    assert delete_delivered_messages("redis://127.0.0.1:6379/0") == 0
