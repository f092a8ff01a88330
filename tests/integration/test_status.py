"""`billing status` in-process: what it says when the schema is behind or the broker is down
(no worker or beat needed; tests/e2e/test_status.py has those)."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from billing.cli import cli
from billing.services.health import BEAT_DISPATCH, record_heartbeat
from billing.store import migrate
from tests.integration.test_cli_errors import closed_port
from tests.services import REDIS_URL, check_redis, service_missing


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BILLING_") and not name.startswith("BILLING_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # the embedded SQLite database and broker live here


def status(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["status", "--json", "--timeout", "0.5", *args])
    return result.exit_code, json.loads(result.stdout)


def test_a_database_behind_the_code_is_unhealthy_and_says_run_db_upgrade(tmp_path: Path) -> None:
    migrate.upgrade(f"sqlite:///{tmp_path / 'billing.db'}")
    migrate.downgrade(f"sqlite:///{tmp_path / 'billing.db'}", "base")
    code, report = status()
    assert code == 1
    assert report["healthy"] is False
    assert report["database"] == {
        "ok": False,
        "revision": None,
        "head": migrate.head_revision("sqlite://"),
        "error": "schema not at head: run billing db upgrade",
    }
    assert report["beat"]["error"] == "not checked: needs the database at head"


def test_a_broker_that_is_down_is_unhealthy_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(f"sqlite:///{tmp_path / 'billing.db'}")
    port = closed_port()
    monkeypatch.setenv("BILLING_BROKER_URL", f"redis://127.0.0.1:{port}/0")
    code, report = status()
    assert code == 1
    broker = report["broker"]
    assert broker["ok"] is False
    assert broker["url"] == f"redis://127.0.0.1:{port}/0"
    assert broker["error"].startswith("unreachable (")
    assert broker["error"].endswith("start it or fix BILLING_BROKER_URL")
    assert report["workers"]["error"] == "not checked: needs the broker and database"
    assert report["database"]["ok"] is True


def test_on_the_embedded_broker_no_worker_and_a_stale_beat_are_unhealthy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    migrate.upgrade(url)
    code, report = status()
    assert code == 1
    assert report["broker"]["ok"] is True  # a real query on the broker's SQLite file
    assert report["workers"]["queues"] == {"gateway": [], "webhooks": [], "housekeeping": []}
    assert report["workers"]["error"].startswith("no worker answering on gateway, webhooks")
    assert report["beat"] == {
        "ok": False,
        "last_dispatch": None,
        "error": "no dispatch recorded: is billing beat running (and a worker on housekeeping)?",
    }
    from billing.bootstrap import build  # noqa: PLC0415
    from billing.config import load_settings  # noqa: PLC0415

    app = build(load_settings())
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    record_heartbeat(app.sessions, BEAT_DISPATCH, at=long_ago)
    app.close()
    _, report = status()
    assert report["beat"]["ok"] is False
    assert (
        report["beat"]["error"]
        == "last dispatch 10m ago: is billing beat running (and a worker on housekeeping)?"
    )


def amqp_url() -> str:
    url = "amqp://guest:guest@127.0.0.1:5672//"
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", 5672)) != 0:
            service_missing("RabbitMQ", ConnectionRefusedError(url))
    return url


@pytest.mark.parametrize("transport", ["redis", "amqp", "sqla"])
def test_the_broker_check_is_a_real_connection_for_each_transport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Reachable: ok with the queue depths; the same transport on a closed port (or, for the
    SQL transport, a database file that cannot be opened): unreachable."""
    migrate.upgrade(f"sqlite:///{tmp_path / 'billing.db'}")
    port = closed_port()
    up, down = {
        "redis": (REDIS_URL, f"redis://127.0.0.1:{port}/0"),
        "amqp": (amqp_url() if transport == "amqp" else "", f"amqp://guest:guest@127.0.0.1:{port}//"),
        "sqla": (f"sqla+sqlite:///{tmp_path / 'broker.db'}", f"sqla+sqlite:///{tmp_path}/no/such/dir/b.db"),
    }[transport]  # fmt: skip
    if transport == "redis":
        check_redis()
    monkeypatch.setenv("BILLING_BROKER_URL", up)
    _, report = status()
    assert report["broker"]["ok"] is True, report["broker"]
    assert set(report["broker"]["waiting"]) == {"gateway", "webhooks", "housekeeping"}
    monkeypatch.setenv("BILLING_BROKER_URL", down)
    code, report = status()
    assert code == 1
    assert report["broker"]["ok"] is False
    assert report["broker"]["error"].startswith("unreachable (")
