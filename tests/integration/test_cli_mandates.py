"""The real `billing` command in a subprocess: registry, forecast, presented debits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli_foundation import run
from tests.integration.test_mandates import write_mixed_csv


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    return tmp_path


def test_importing_a_file_with_bad_rows_reports_each_and_exits_1(workdir: Path) -> None:
    write_mixed_csv(workdir / "mandates.csv")
    result = run("mandates", "import", "mandates.csv", cwd=workdir)
    assert result.returncode == 1
    assert "line 3: rule_value: must be 1-7 for WEEKLY, got 9" in result.stderr
    assert "line 5: amount: more than 2 decimals: '10.001'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 9
    assert "5 created, 0 updated, 0 unchanged, 9 bad" in result.stdout
    listing = json.loads(run("mandates", "list", "--json", cwd=workdir).stdout)
    assert sorted(m["mandate_id"] for m in listing) == [
        "mdt_card",
        "mdt_nb",
        "mdt_pres",
        "mdt_upi",
        "mdt_var",
    ]


def test_a_clean_file_imports_with_exit_0_and_a_dry_run_stores_nothing(workdir: Path) -> None:
    (workdir / "m.jsonl").write_text(
        json.dumps(
            {
                "customer_id": "c1",
                "mandate_id": "m1",
                "frequency": "WEEKLY",
                "rule_type": "ON",
                "rule_value": 1,
                "amount_rule": "FIXED",
                "max_amount": "99",
                "start_date": "2026-01-01",
                "payment_method_type": "UPI",
            }
        )
        + "\n"
    )
    dry = run("mandates", "import", "--dry-run", "m.jsonl", cwd=workdir)
    assert dry.returncode == 0, dry.stderr
    assert "would import 1 rows: 1 created" in dry.stdout
    assert json.loads(run("mandates", "list", "--json", cwd=workdir).stdout) == []
    real = run("mandates", "import", "m.jsonl", "--json", cwd=workdir)
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["created"] == 1


def test_a_missing_file_or_mandate_is_one_line_and_exit_1(workdir: Path) -> None:
    missing_file = run("mandates", "import", "nope.csv", cwd=workdir)
    assert missing_file.returncode == 1
    assert missing_file.stderr.strip() == "error: nope.csv: no such file"
    missing = run("mandates", "show", "no_such_mandate", cwd=workdir)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: mandate 'no_such_mandate' is not in the registry"
    assert "Traceback" not in missing.stderr


def test_bad_usage_exits_2(workdir: Path) -> None:
    assert run("mandates", "import", cwd=workdir).returncode == 2  # FILE missing
    assert run("schedule", "--days", "zero", cwd=workdir).returncode == 2
    assert run("debits", "present", "m1", cwd=workdir).returncode == 2  # --amount missing


def test_a_variable_mandate_without_plan_amount_is_listed_unscheduled_and_never_debited(
    workdir: Path,
) -> None:
    added = run(
        "mandates",
        "add",
        "--mandate-id",
        "var1",
        "--customer-id",
        "c1",
        "--frequency",
        "DAILY",
        "--amount-rule",
        "VARIABLE",
        "--max-amount",
        "500",
        "--start-date",
        "2026-01-01",
        "--payment-method-type",
        "UPI",
        cwd=workdir,
    )
    assert added.returncode == 0, added.stderr
    unscheduled = json.loads(run("mandates", "list", "--unscheduled", "--json", cwd=workdir).stdout)
    assert [m["mandate_id"] for m in unscheduled] == ["var1"]
    table = run("mandates", "list", cwd=workdir).stdout
    assert "UNSCHEDULED" in table
    assert "UNSCHEDULED" in run("mandates", "show", "var1", cwd=workdir).stdout
    forecast = json.loads(run("schedule", "--days", "30", "--json", cwd=workdir).stdout)
    assert forecast == []
    assert run("mandates", "set-amount", "var1", "501", cwd=workdir).returncode == 1
    assert run("mandates", "set-amount", "var1", "120", cwd=workdir).returncode == 0
    forecast = json.loads(run("schedule", "--days", "3", "--json", cwd=workdir).stdout)
    assert sum(day["count"] for day in forecast) >= 2
    assert {d["amount"] for day in forecast for d in day["debits"]} == {"120.00"}


def test_presenting_a_debit_for_an_aspresented_mandate(workdir: Path) -> None:
    run(
        "mandates",
        "add",
        "--mandate-id",
        "pres",
        "--customer-id",
        "c1",
        "--frequency",
        "ASPRESENTED",
        "--max-amount",
        "1000",
        "--start-date",
        "2026-01-01",
        "--payment-method-type",
        "CARD",
        cwd=workdir,
    )
    over = run("debits", "present", "pres", "--amount", "1000.01", cwd=workdir)
    assert over.returncode == 1
    assert over.stderr.strip() == "error: amount: must not exceed max_amount 1000.00"
    ok = run("debits", "present", "pres", "--amount", "640", cwd=workdir)
    assert ok.returncode == 0, ok.stderr
    listed = json.loads(run("debits", "list", "--json", cwd=workdir).stdout)
    assert [(d["mandate_id"], d["amount"], d["state"]) for d in listed] == [
        ("pres", "640.00", "PLANNED")
    ]
    shown = run("debits", "show", str(listed[0]["id"]), cwd=workdir)
    assert "presented by the merchant" in shown.stdout
