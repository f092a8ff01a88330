"""The real `billing payouts` command in a subprocess, against the sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing.sandbox.server import SandboxServer
from tests.integration.sandbox_fixtures import API_KEY, KEY_ID, MERCHANT_ID, MERCHANT_KEY_ID
from tests.integration.test_cli_foundation import run
from tests.integration.test_payouts import new_card_key

CUSTOMER = "cst_cli"
PAN = "5513651111111111"


@pytest.fixture
def env(sandbox: SandboxServer, juspay_public_key_file: Path, tmp_path: Path) -> dict[str, str]:
    for order_id in ("pc1", "pc2", "pc3"):
        sandbox.state.seed_payout(
            {
                "orderId": order_id,
                "customerId": CUSTOMER,
                "fulfillments": [
                    {"id": f"{order_id}-f1", "amount": "120", "responseCode": "ISSUER_DOWN"},
                    {"id": f"{order_id}-f2", "amount": "80", "status": "SUCCESS", "method": "UPI"},
                ],
            }
        )
    values = {
        "BILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'billing.db'}",
        "BILLING_JUSPAY_BASE_URL": sandbox.url,
        "BILLING_JUSPAY_API_KEY": API_KEY,
        "BILLING_JUSPAY_MERCHANT_ID": MERCHANT_ID,
        "BILLING_JUSPAY_PUBLIC_KEY_FILE": str(juspay_public_key_file),
        "BILLING_JUSPAY_KEY_ID": KEY_ID,
        "BILLING_MERCHANT_KEY_ID": MERCHANT_KEY_ID,
        "BILLING_CARD_DATA_KEY": new_card_key(),
    }
    assert run("db", "upgrade", cwd=tmp_path, env=values).returncode == 0
    return values


def payouts(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    result = run("payouts", *args, cwd=cwd, env=env)
    return result.returncode, result.stdout, result.stderr


def test_track_list_show_and_tick_make_an_attempt_showing_only_the_last_four(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = payouts(
        env, tmp_path, "track", "pc1", "--customer-id", CUSTOMER,
        "--card-number", PAN, "--expiry", "02/2028", "--name", "A Kumar", "--json",
    )  # fmt: skip
    assert code == 0, err
    order = json.loads(out)
    first, second = order["fulfillments"]
    assert (first["card"], first["attempt_state"], first["max_attempts"]) == ("****1111", "DUE", 3)
    assert (second["method"], second["card"], second["attempt_state"]) == ("UPI", None, "DONE")

    tick = run("tick", "--json", cwd=tmp_path, env=env)
    assert tick.returncode == 0, tick.stderr
    assert json.loads(tick.stdout)["extra"]["payouts"] >= 1

    code, out, err = payouts(env, tmp_path, "list", "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["halted"] is None
    (tracked,) = listing["orders"]
    (attempt,) = tracked["fulfillments"][0]["attempts"]
    assert (attempt["number"], attempt["state"], attempt["counted"]) == (1, "ACK", True)

    code, out, err = payouts(env, tmp_path, "list")
    assert code == 0, err
    assert "pc1-f1" in out
    assert "****1111" in out
    assert "1/3" in out
    code, out, err = payouts(env, tmp_path, "show", "pc1")
    assert code == 0, err
    assert "ACK" in out
    assert "****1111" in out
    for text in (out, err, tick.stdout, tick.stderr):
        assert PAN not in text


def test_bad_usage_exits_2_and_a_failed_job_exits_1_with_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, _, err = payouts(
        env, tmp_path, "track", "pc1", "--customer-id", CUSTOMER,
        "--card-number", PAN, "--expiry", "13/2028",
    )  # fmt: skip
    assert code == 2
    assert "--expiry: expected MM/YYYY" in err
    code, _, err = payouts(
        env, tmp_path, "track", "pc1", "--customer-id", CUSTOMER,
        "--card-number", PAN, "--card-token", "tok", "--expiry", "02/2028",
    )  # fmt: skip
    assert code == 2
    assert "not both" in err
    code, _, err = payouts(
        env, tmp_path, "track", "pc1", "--customer-id", CUSTOMER, "--card-token", "tok",
        "--sender-details", json.dumps({"type": "PAY_CARD", "details": {
            "name": "S", "pan": "4111111111111111", "cardSecurityCode": "123"}}),
    )  # fmt: skip
    assert code == 2
    assert "--sender-details: details.cardSecurityCode: a CVV is never stored" in err

    no_key = {k: v for k, v in env.items() if k != "BILLING_CARD_DATA_KEY"}
    code, _, err = payouts(
        no_key, tmp_path, "track", "pc1", "--customer-id", CUSTOMER, "--card-token", "tok123456"
    )
    assert code == 1
    assert err.strip().splitlines() == [
        "error: BILLING_CARD_DATA_KEY: required to store or read card data "
        "(the URL-safe base64 of 32 random bytes)"
    ]
    code, _, err = payouts(env, tmp_path, "track", "nope", "--customer-id", CUSTOMER)
    assert (code, err.strip()) == (1, "error: payout order nope: not found at Juspay")
    code, _, err = payouts(env, tmp_path, "show", "pc9")
    assert (code, err.strip()) == (1, "error: payout order pc9 is not tracked")


def test_import_tracks_good_rows_and_reports_each_bad_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    rows = [
        {"order_id": "pc1", "customer_id": CUSTOMER, "card_token": "tok_8812345678"},
        {"order_id": "pc2", "customer_id": CUSTOMER, "card_number": PAN, "expiry": "2028-02"},
        {"order_id": "pc3", "customer_id": CUSTOMER, "card_number": "12ab", "expiry": "02/2028"},
        {"order_id": "pc3", "customer_id": CUSTOMER, "cvv": "123"},
        {"order_id": "pc9", "customer_id": CUSTOMER},
        {
            "order_id": "pc3",
            "customer_id": CUSTOMER,
            "card_number": PAN,
            "expiry": "02/2028",
            "needs_cvv": True,
        },
    ]
    lines = [json.dumps(row) for row in rows]
    lines.insert(2, "{not json")
    (tmp_path / "payouts.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = payouts(env, tmp_path, "import", "payouts.jsonl")
    assert code == 1
    assert err.strip().splitlines() == [
        "line 2: expiry: expected MM/YYYY",
        "line 3: line: not valid JSON (Expecting property name enclosed in double quotes)",
        "line 4: card_number: expected 12 to 19 digits",
        "line 5: cvv: unknown field",
        "line 6: order_id: payout order pc9: not found at Juspay",
    ]
    assert "7 rows: 2 tracked, 5 bad" in out
    listing = json.loads(payouts(env, tmp_path, "list", "--json")[1])
    cards = {o["order_id"]: o["fulfillments"][0]["card"] for o in listing["orders"]}
    assert cards == {"pc1": "token ****5678", "pc3": "****1111"}
    needs = {o["order_id"]: o["fulfillments"][0]["needs_cvv"] for o in listing["orders"]}
    assert needs == {"pc1": False, "pc3": True}
    assert PAN not in out + err


def test_resume_without_a_halt_is_a_no_op(env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = payouts(env, tmp_path, "resume")
    assert (code, out.strip()) == (0, "0 fulfillments due for an attempt"), err
