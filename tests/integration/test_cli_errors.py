"""Every failure of the `billing` command is one line naming the cause and the fix (SPEC §11):
no SQL statement, no traceback (unless --debug). Run in-process through the console script's
`main` (the same code path, without a process start per case)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import create_engine, text

from billing.cli import main
from billing.cli.errors import describe
from tests.services import scratch_postgres_database


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BILLING_") and not name.startswith("BILLING_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def billing(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command as the console script does; its exit code and its stderr."""
    try:
        main(list(args))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    else:
        code = 0
    return code, capsys.readouterr().err


def test_an_unmigrated_sqlite_database_is_one_line_saying_run_db_upgrade(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = billing(capsys, "mandates", "list")
    assert code == 1
    assert err.splitlines() == [
        "error: database not migrated (no table mandates): run billing db upgrade"
    ]


def test_an_unmigrated_postgresql_database_is_one_line_saying_run_db_upgrade(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with scratch_postgres_database("billing_cli_errors") as url:
        monkeypatch.setenv("BILLING_DATABASE_URL", url)
        code, err = billing(capsys, "debits", "list")
    assert code == 1
    assert err.splitlines() == [
        "error: database not migrated (no table debits): run billing db upgrade"
    ]


def test_a_database_that_is_down_is_one_line_naming_it_and_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv(
        "BILLING_DATABASE_URL", f"postgresql+psycopg://billing:s3cret@127.0.0.1:{port}/billing"
    )
    code, err = billing(capsys, "mandates", "list")
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(
        f"error: database unreachable at postgresql+psycopg://billing:***@127.0.0.1:{port}/billing"
    )
    assert "Connection refused" in line
    assert line.endswith("start it or fix BILLING_DATABASE_URL")
    assert "s3cret" not in err


def test_a_schema_behind_the_code_is_one_line_without_the_sql(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE mandates DROP COLUMN hold_reason"))
    engine.dispose()
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_url)
    code, err = billing(capsys, "mandates", "list")
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("error: schema not at head (")
    assert line.endswith("run billing db upgrade")
    assert "SELECT" not in line


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = billing(capsys, "--debug", "mandates", "list")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == (
        "error: database not migrated (no table mandates): run billing db upgrade"
    )


def test_a_broker_that_is_down_is_one_line_naming_it_and_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    monkeypatch.setenv("BILLING_BROKER_URL", url)
    with Connection(url, connect_timeout=1) as connection, pytest.raises(Exception) as raised:
        connection.ensure_connection(max_retries=1, interval_start=0)
    line = describe(raised.value)
    assert line.startswith("broker unreachable at redis://:***@127.0.0.1:")
    assert line.endswith("start it or fix BILLING_BROKER_URL")
    assert "hunter2" not in line
    assert "\n" not in line


def test_a_misspelt_variable_is_refused_at_start_naming_the_closest_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_DATABSE_URL", "postgresql+psycopg://db/billing")
    code, err = billing(capsys, "mandates", "list")
    assert code == 1
    assert err.splitlines() == [
        "error: BILLING_DATABSE_URL: unknown variable (did you mean BILLING_DATABASE_URL?)"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BILLING_JUSPAY_API_KEY", "", "empty: give it a value or remove the variable"),
        ("BILLING_BEAT_DISPATCH_EVERY", "0s", "must be a positive duration, got 0"),
    ],
)
def test_an_empty_secret_and_a_zero_interval_are_refused_at_start(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, err = billing(capsys, "mandates", "list")
    assert code == 1
    assert err.splitlines() == [f"error: {variable}: {message}"]
