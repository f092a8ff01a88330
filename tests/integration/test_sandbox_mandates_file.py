"""`billing sandbox --mandates FILE`: the merchant's mandate file, read by the importer's parser,
becomes the sandbox's seeds (Juspay holds what the merchant imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.cli.ops import sandbox_mandates
from billing.sandbox.state import SandboxState

HEADER = (
    "customer_id,mandate_id,frequency,rule_type,rule_value,amount_rule,max_amount,amount,"
    "currency,start_date,end_date,payment_method_type,status\n"
)


def test_each_good_row_is_held_as_the_file_says_and_a_bad_row_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mandates.csv"
    path.write_text(
        HEADER
        + "cst1,m1,MONTHLY,ON,5,VARIABLE,2000,499.00,INR,2026-01-01,,UPI,ACTIVE\n"
        + "cst2,m2,WEEKLY,AFTER,2,FIXED,99,,INR,2026-01-01,,NB,PAUSED\n"
        + "cst3,m3,MONTHLY,ON,5,SOMETIMES,10,,INR,2026-01-01,,CARD,ACTIVE\n"
    )
    specs = sandbox_mandates(path)
    assert [s["mandate_id"] for s in specs] == ["m1", "m2"]
    assert "amount" not in specs[0]  # the plan amount is the merchant's, not Juspay's
    state = SandboxState()
    for spec in specs:
        state.seed_mandate(spec)
    m1, m2 = state.mandates["m1"], state.mandates["m2"]
    assert (m1.customer_id, m1.payment_method_type, m1.amount_rule) == ("cst1", "UPI", "VARIABLE")
    assert (str(m1.max_amount), m1.rule_type, m1.rule_value) == ("2000.00", "ON", 5)
    assert (m2.status, m2.frequency, m2.end_date) == ("PAUSED", "WEEKLY", None)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}: line 4: amount_rule: expected one of ['FIXED', 'VARIABLE']"]


def test_json_lines_are_read_like_the_import_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "mandates.jsonl"
    path.write_text(
        '{"customer_id": "c1", "mandate_id": "j1", "frequency": "ASPRESENTED",'
        ' "amount_rule": "VARIABLE", "max_amount": "500", "payment_method_type": "CARD"}\n'
        "not json\n"
    )
    assert [s["mandate_id"] for s in sandbox_mandates(path)] == ["j1"]
