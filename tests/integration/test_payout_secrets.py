"""A full payout run leaves no card number and no CVV anywhere: not in any column of any table,
not in the SQLite file's bytes (WAL included), not in any log record of any logger at DEBUG,
not in what the CLI prints."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from billing.cli import cli
from billing.store.models import Base
from tests.integration.sandbox_fixtures import API_KEY, KEY_ID, MERCHANT_ID, MERCHANT_KEY_ID
from tests.integration.test_payouts import (  # noqa: F401 (fixtures)
    CUSTOMER,
    CVV,
    PayoutHarness,
    new_card_key,
    payout_harness_factory,
)

PAN = "4000056655665556"
SENDER_PAN = "5200828282828210"
ORDER = "posec-cvv"  # the test CVV provider answers for this order


def _patterns() -> dict[str, re.Pattern[bytes]]:
    def spaced(number: str) -> bytes:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4)).encode()

    found = {
        "card number": re.compile(PAN.encode()),
        "card number with spaces": re.compile(re.escape(spaced(PAN))),
        "sender card number": re.compile(SENDER_PAN.encode()),
        "sender card number with spaces": re.compile(re.escape(spaced(SENDER_PAN))),
        "jwe plaintext": re.compile(b"cardInfo"),
    }
    # a CVV is short: only as a number of its own, not inside ids, timings or base64
    found["cvv"] = re.compile(rb"(?<![0-9A-Za-z.+/=_-])" + CVV.encode() + rb"(?![0-9A-Za-z.+/=_-])")
    return found


def _assert_clean(where: str, data: bytes) -> None:
    for name, pattern in _patterns().items():
        match = pattern.search(data)
        if match is not None:
            around = data[max(match.start() - 60, 0) : match.end() + 60]
            pytest.fail(f"{name} found in {where}: ...{around!r}...")


def test_a_full_payout_run_leaves_no_card_number_or_cvv_in_the_database_or_the_logs(
    payout_harness_factory: Callable[..., PayoutHarness],  # noqa: F811
    db_url: str,
    caplog: pytest.LogCaptureFixture,
    juspay_public_key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: every logger at every level
    card_key = new_card_key()
    provider = "tests.integration.test_payouts:cvv_provider"
    h = payout_harness_factory(card_data_key=card_key, cvv_provider=provider)
    now = datetime.now(UTC).replace(microsecond=0)
    h.at(now)
    h.seed(ORDER)
    env = {
        "BILLING_DATABASE_URL": db_url,
        "BILLING_JUSPAY_BASE_URL": h.sandbox.url,
        "BILLING_JUSPAY_API_KEY": API_KEY,
        "BILLING_JUSPAY_MERCHANT_ID": MERCHANT_ID,
        "BILLING_JUSPAY_PUBLIC_KEY_FILE": str(juspay_public_key_file),
        "BILLING_JUSPAY_KEY_ID": KEY_ID,
        "BILLING_MERCHANT_KEY_ID": MERCHANT_KEY_ID,
        "BILLING_CARD_DATA_KEY": card_key,
        "BILLING_CVV_PROVIDER": provider,
    }
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    runner = CliRunner()
    sender = {"type": "PAY_CARD", "details": {"name": "Sender Co", "pan": SENDER_PAN}}
    outputs = []
    track = runner.invoke(
        cli,
        [
            "payouts", "track", ORDER, "--customer-id", CUSTOMER, "--card-number", "-",
            "--expiry", "09/2031", "--name", "Secret Holder", "--needs-cvv",
            "--sender-details", json.dumps(sender),
        ],
        input=PAN + "\n",
        env=env,
        catch_exceptions=False,
    )  # fmt: skip
    assert track.exit_code == 0, track.output
    outputs.append(track.output)
    assert "card attached to: posec-cvv-f1" in track.output

    # Juspay unreachable once, then the attempt fails, then one succeeds
    h.at(datetime.now(UTC) + timedelta(seconds=1))  # the CLI tracked on the system clock
    h.fault(kind="http_error", endpoint="attempt", status=429)
    h.tick()
    assert h.attempts(f"{ORDER}-f1")[0].state == "UNSENT"
    h.fault(kind="fail", endpoint="attempt", key=ORDER, error_code="ISSUER_DOWN")
    h.run_until(now + timedelta(hours=2))
    fulfillment = h.fulfillment(f"{ORDER}-f1")
    assert (fulfillment.status, fulfillment.attempt_state) == ("SUCCESS", "DONE")
    sent = h.sandbox_attempts()
    assert len(sent) == 2
    assert sent[-1]["plaintext"]["cardInfo"]["cardNumber"] == PAN  # it did travel, encrypted
    assert sent[-1]["plaintext"]["cardInfo"]["cardSecurityCode"] == CVV

    for args in (["payouts", "list"], ["payouts", "list", "--json"], ["payouts", "show", ORDER]):
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "****5556" in outputs[1]
    _assert_clean("the CLI output", "\n".join(outputs).encode())

    # every column of every table
    engine = create_engine(db_url)
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                _assert_clean(f"table {table.name}", repr(tuple(row)).encode())
    engine.dispose()
    h.app.engine.dispose()
    # the SQLite file's bytes, its WAL and shared memory included
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        files = [Path(url.database + suffix) for suffix in ("", "-wal", "-shm")]
        for path in [p for p in files if p.exists()]:
            _assert_clean(str(path.name), path.read_bytes())

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = list(caplog.records)
    assert {r.name for r in records} >= {"billing.gateway", "billing.payouts"}
    for record in records:
        text = formatter.format(record) + repr(record.args)
        _assert_clean(f"a log record of {record.name}", text.encode())
    _assert_clean("the captured log text", caplog.text.encode())
