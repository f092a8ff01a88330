"""The real `billing` command in a subprocess: help, migrations, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from billing.cli import cli
from billing.store.models import Fulfillment, PayoutOrder

_SCRIPT = Path(sys.executable).with_name("billing")
# The installed console script, as a user runs it; `python -m billing` if it is not installed.
BILLING = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "billing"]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    full_env.update(env or {})
    return subprocess.run(
        [*BILLING, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_the_command_groups(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {
        line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()
    }
    assert listed >= {
        "db",
        "mandates",
        "schedule",
        "debits",
        "tick",
        "worker",
        "beat",
        "sandbox",
        "demo",
        "status",
    }
    # Each group's help in-process: the top-level help above already ran the real console script.
    runner = CliRunner()
    for group in sorted(listed):
        sub = runner.invoke(cli, [group, "--help"], prog_name="billing")
        assert sub.exit_code == 0, (group, sub.output)
        assert "Usage: billing" in sub.output


def test_db_upgrade_creates_the_embedded_sqlite_database(tmp_path: Path) -> None:
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "billing.db").exists()
    again = run("db", "upgrade", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    current = run("db", "current", cwd=tmp_path)
    assert "current: 0001" in current.stdout


def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_1(tmp_path: Path) -> None:
    result = run("db", "current", cwd=tmp_path, env={"BILLING_DEBIT_TIME": "25:99"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: BILLING_DEBIT_TIME: expected HH:MM, got '25:99'"
    ]


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    result = run("no-such-command", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_the_demo_runs_the_whole_system_and_the_books_agree(tmp_path: Path) -> None:
    result = run("demo", "--days", "12", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "books agree:            yes" in result.stdout
    assert "charged exactly once:   yes" in result.stdout
    assert "reconciled by status:   2" in result.stdout
    assert (tmp_path / ".demo" / "billing.db").exists()


def test_status_reports_the_database_and_a_payout_halt_as_unhealthy(tmp_path: Path) -> None:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    report = json.loads(run("status", "--json", "--timeout", "0.5", cwd=tmp_path).stdout)
    assert report["database"]["ok"] is True
    assert report["gateway"]["ok"] is False  # no Juspay key in this environment
    assert "BILLING_JUSPAY_API_KEY" in report["gateway"]["error"]
    engine = create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    now = datetime(2027, 3, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        order = PayoutOrder(
            order_id="po1", customer_id="c1", status="FAILURE", created_at=now, updated_at=now
        )
        session.add(order)
        session.flush()
        session.add(
            Fulfillment(
                fulfillment_id="po1-f1",
                payout_order_pk=order.id,
                status="FAILURE",
                attempt_state="HALTED",
                stop_reason="Attempt API answered 401 E02",
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()
    result = run("status", "--json", "--timeout", "0.5", cwd=tmp_path)
    assert result.returncode == 1
    payouts = json.loads(result.stdout)["payouts"]
    assert payouts["ok"] is False
    assert "payout attempts halted" in payouts["error"]
    assert "401 E02" in payouts["error"]
