"""The real `billing payouts` command in a subprocess, against the sandbox over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer
from billing.store.db import make_engine
from billing.store.payouts import order_views
from tests.integration.sandbox_fixtures import (
    API_KEY,
    KEY_ID,
    MERCHANT_ID,
    MERCHANT_KEY_ID,
    card_fulfillment,
    payout_order,
)
from tests.integration.test_cli_foundation import BILLING, run
from tests.integration.test_payouts import new_card_key
from tests.payout_samples import sample

CUSTOMER = "cst_cli"
PAN = "5513651111111111"


@pytest.fixture
def env(sandbox: SandboxServer, juspay_public_key_file: Path, tmp_path: Path) -> dict[str, str]:
    for order_id in ("pc1", "pc2", "pc3"):
        sandbox.state.seed_payout(
            payout_order(
                order_id,
                CUSTOMER,
                card_fulfillment("120", fid=f"{order_id}-f1"),
                card_fulfillment(
                    "80",
                    status="SUCCESS",
                    kind="ACCOUNT_IFSC",
                    rail="YESBANK_IMPS",
                    fid=f"{order_id}-f2",
                ),
            )
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
    assert (first["beneficiary_type"], first["rail"]) == ("PLAIN_CARD", "DUMMY_VISADIRECT")
    assert (second["beneficiary_type"], second["rail"]) == ("ACCOUNT_IFSC", "YESBANK_IMPS")
    assert (second["card"], second["attempt_state"]) == (None, "DONE")

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
    assert "PLAIN_CARD" in out
    assert "DUMMY_VISADIRECT" in out
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


# --- the whole retry, as a merchant runs it -----------------------------------------------------


def billing(env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> str:
    """`billing ARGS` in a subprocess; fails the test on a non-zero exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")} | env
    done = subprocess.run(
        [*BILLING, *args], cwd=cwd, env=full_env, input=stdin, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"billing {' '.join(args)}: {done.stderr}"
    return done.stdout


def tick_at(env: dict[str, str], cwd: Path, sandbox: SandboxServer, moment: datetime) -> None:
    """`billing tick --now`, with the sandbox's clock at the same instant."""
    sandbox.state.clock.set(moment)
    billing(env, cwd, "tick", "--now", moment.isoformat())


def stored(env: dict[str, str], order_id: str) -> dict[str, Any]:
    """What the commands left in the database (read in-process: each command is a process of
    a few seconds here, so only the decisive looks go through `billing payouts show`)."""
    engine = make_engine(env["BILLING_DATABASE_URL"])
    try:
        with Session(engine) as session:
            (order,) = order_views(session, order_id)
    finally:
        engine.dispose()
    return order


def shown(env: dict[str, str], cwd: Path, order_id: str) -> dict[str, Any]:
    (fulfillment,) = json.loads(billing(env, cwd, "payouts", "show", order_id, "--json"))[
        "fulfillments"
    ]
    return dict(fulfillment)


def test_a_juspay_shaped_failed_plain_card_payout_is_tracked_and_retried_until_paid(
    sandbox: SandboxServer, env: dict[str, str], tmp_path: Path
) -> None:
    """Juspay's own PLAIN_CARD order (`payout-api/order-create-encryp/plain-card.json`,
    verbatim) failed at its rail; `billing payouts track` attaches the card and `billing tick`
    runs FAILURE -> attempt -> ACK -> new transaction SUCCESS -> fulfillment SUCCESS."""
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    sandbox.state.clock.set(t0 - timedelta(minutes=1))
    sandbox.state.config.fulfillment_seconds = 3600  # Juspay settles at the 2nd status read
    body = sample("PLAIN_CARD_CREATE")
    body["fulfillments"][0]["sandbox"] = {"status": "FAILURE", "responseCode": "91"}
    payout = sandbox.state.seed_payout(body)
    fid = payout.fulfillments[0].id  # Juspay's: <order uuid>-f1
    out = billing(
        env, tmp_path, "payouts", "track", "1803665523", "--customer-id", "cth_59Yibs1JauYP6WJP",
        "--card-number", "-", "--expiry", "02/2028", "--name", "Aditya Kadrolkar",
        stdin="4111111111111111\n",
    )  # fmt: skip
    assert f"card attached to: {fid}" in out
    assert f"{fid}  PLAIN_CARD on DUMMY_VISADIRECT  FAILURE  attempts: DUE" in out

    def now_held() -> tuple[str, str, list[str], list[tuple[str, str | None]]]:
        (f,) = stored(env, "1803665523")["fulfillments"]
        attempts = [(a["state"], a["outcome"]) for a in f["attempts"]]
        return f["status"], f["attempt_state"], [t["status"] for t in f["transactions"]], attempts

    assert now_held() == ("FAILURE", "DUE", ["FAILURE"], [])
    tick_at(env, tmp_path, sandbox, t0)  # the attempt: ACK
    assert now_held() == ("FAILURE", "WAITING", ["FAILURE"], [("ACK", None)])
    tick_at(env, tmp_path, sandbox, t0 + timedelta(minutes=1))  # the attempt's transaction
    assert now_held() == ("PENDING", "WAITING", ["FAILURE", "INITIATED"], [("ACK", None)])
    tick_at(env, tmp_path, sandbox, t0 + timedelta(minutes=6))  # paid
    paid = shown(env, tmp_path, "1803665523")
    assert [(t["status"], t["rail"]) for t in paid["transactions"]] == [
        ("FAILURE", "DUMMY_VISADIRECT"),
        ("SUCCESS", "DUMMY_VISADIRECT"),
    ]
    assert (paid["status"], paid["attempt_state"], paid["card"]) == ("SUCCESS", "DONE", "****1111")
    assert [(a["state"], a["outcome"]) for a in paid["attempts"]] == [("ACK", "SUCCESS")]
    (sent,) = sandbox.state.attempt_views()
    assert sent["plaintext"]["fulfillmentId"] == fid
    assert sent["plaintext"]["cardInfo"]["cardNumber"] == "4111111111111111"
    assert [e["fulfillment_id"] for e in sandbox.state.payout_ledger] == [fid]


def test_when_every_attempt_fails_the_attempts_stop_at_billing_payout_max_attempts(
    sandbox: SandboxServer, env: dict[str, str], tmp_path: Path
) -> None:
    env = env | {"BILLING_PAYOUT_MAX_ATTEMPTS": "2"}
    sandbox.state.config.fulfillment_polls = 1  # each attempt fails at the first status read
    sandbox.state.seed_payout(payout_order("pm1", CUSTOMER))  # one failed PLAIN_CARD leg
    sandbox.state.faults.add(Fault(kind="fail", endpoint="attempt", key="pm1", times=10))
    row = {"order_id": "pm1", "customer_id": CUSTOMER, "card_token": "tok_77123456"}
    (tmp_path / "payouts.jsonl").write_text(json.dumps(row) + "\n")
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    sandbox.state.clock.set(t0 - timedelta(minutes=1))
    imported = billing(env, tmp_path, "payouts", "import", "payouts.jsonl")
    assert "1 rows: 1 tracked, 0 bad" in imported
    moment, ticks = t0, 0
    while ticks < 8:  # tick at each instant something is due, until nothing is
        tick_at(env, tmp_path, sandbox, moment)
        ticks += 1
        order = stored(env, "pm1")
        due = [order["next_check_at"], order["fulfillments"][0]["next_attempt_at"]]
        upcoming = sorted(d for d in due if d is not None)
        if not upcoming:
            break
        moment = max(upcoming[0], moment + timedelta(seconds=1))
    (stopped,) = stored(env, "pm1")["fulfillments"]
    assert (stopped["status"], stopped["attempt_state"], stopped["attempts_made"]) == (
        "FAILURE",
        "STOPPED",
        2,
    )
    assert stopped["stop_reason"] == "all 2 attempts made"
    assert [(a["state"], a["outcome"]) for a in stopped["attempts"]] == [("ACK", "FAILURE")] * 2
    assert [t["status"] for t in stopped["transactions"]] == ["FAILURE"] * 3
    assert len(sandbox.state.attempt_views()) == 2
    assert sandbox.state.payout_ledger == []
    assert ticks == 4  # attempt, its failure read, attempt, its failure read: then nothing
