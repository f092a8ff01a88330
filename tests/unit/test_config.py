"""Settings are validated at start, and a bad value names its variable."""

from __future__ import annotations

import os
from datetime import time, timedelta
from pathlib import Path

import pytest

from billing.config import SettingsError, load_settings, parse_duration


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BILLING_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_spec() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///billing.db"
    assert s.broker_url.startswith("sqla+sqlite://")
    assert s.juspay_base_url == "https://sandbox.juspay.in"
    assert s.juspay_api_version == "2021-03-25"
    assert s.timezone.key == "Asia/Kolkata"
    assert s.debit_time == time(10, 0)
    assert s.execution_lead == timedelta(hours=26)
    assert s.retry_schedule == (timedelta(days=1), timedelta(days=2))
    assert s.max_tries_per_cycle == 3
    assert s.pending_max_age == timedelta(days=7)
    assert s.payout_max_attempts == 3
    assert (s.jwe_alg, s.jwe_enc) == ("RSA-OAEP", "A256CBC-HS512")
    assert s.flow_for("UPI") == "juspay"
    assert s.flow_for("CARD") == "juspay"
    assert s.flow_for("NB") == "none"
    assert s.flow_for("WALLET") == "none"


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_RETRY_SCHEDULE", "6h, 1d,PT36H")
    monkeypatch.setenv("BILLING_EXECUTION_LEAD", "PT30H")
    monkeypatch.setenv("BILLING_DEBIT_TIME", "07:45")
    monkeypatch.setenv("BILLING_NOTIFICATION_FLOWS", "UPI:merchant")
    monkeypatch.setenv("BILLING_TIMEZONE", "Asia/Kolkata")
    s = load_settings()
    assert s.retry_schedule == (timedelta(hours=6), timedelta(days=1), timedelta(hours=36))
    assert s.execution_lead == timedelta(hours=30)
    assert s.debit_time == time(7, 45)
    assert s.flow_for("UPI") == "merchant"
    assert s.flow_for("NB") == "none"  # the others keep their defaults


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BILLING_MAX_TRIES_PER_CYCLE=5\n")
    assert load_settings().max_tries_per_cycle == 5


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("BILLING_DATABASE_URL", "not a url", "not a database URL"),
        ("BILLING_BROKER_URL", "localhost:6379", "not a URL"),
        ("BILLING_JUSPAY_BASE_URL", "sandbox.juspay.in", "not a URL"),
        ("BILLING_DEBIT_TIME", "25:00", "expected HH:MM"),
        ("BILLING_DEBIT_TIME", "ten", "expected HH:MM"),
        ("BILLING_EXECUTION_LEAD", "soon", "expected a duration"),
        ("BILLING_EXECUTION_LEAD", "0h", "positive"),
        # Juspay asks for execution >= 25 h ahead (juspay-api.md §2, "Timing rules")
        ("BILLING_EXECUTION_LEAD", "24h", "must be at least 25h (Juspay's lead), got 24h"),
        ("BILLING_EXECUTION_LEAD", "PT24H59M", "must be at least 25h"),
        ("BILLING_RETRY_SCHEDULE", "1d,tomorrow", "expected a duration"),
        ("BILLING_MAX_TRIES_PER_CYCLE", "three", "integer"),
        ("BILLING_MAX_TRIES_PER_CYCLE", "0", "greater than or equal to 1"),
        ("BILLING_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("BILLING_CARD_DATA_KEY", "c2hvcnQ", "32 bytes"),
        ("BILLING_NOTIFICATION_FLOWS", "NB:merchant", "merchant flow is for UPI and CARD"),
        ("BILLING_NOTIFICATION_FLOWS", "UPI:carrier-pigeon", "unknown flow"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith(f"{variable}: ")
    assert reason in message
    assert "\n" not in message


def test_an_execution_lead_of_exactly_25_hours_is_taken() -> None:
    assert load_settings(execution_lead="25h").execution_lead == timedelta(hours=25)


def test_secrets_never_show_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_JUSPAY_API_KEY", "key_live_very_secret")
    monkeypatch.setenv("BILLING_WEBHOOK_PASSWORD", "hook-pass-secret")
    monkeypatch.setenv("BILLING_CARD_DATA_KEY", "not-base64-at-all-secret!!")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "not-base64-at-all-secret" not in str(error.value)
    monkeypatch.delenv("BILLING_CARD_DATA_KEY")
    s = load_settings()
    shown = repr(s) + str(s) + str(s.model_dump())
    assert "key_live_very_secret" not in shown
    assert "hook-pass-secret" not in shown


def test_require_names_the_missing_variables() -> None:
    with pytest.raises(SettingsError, match="BILLING_JUSPAY_API_KEY, BILLING_JUSPAY_MERCHANT_ID"):
        load_settings().require("juspay_api_key", "juspay_merchant_id")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("26h", timedelta(hours=26)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        ("PT26H", timedelta(hours=26)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "1y", "h", "-1d", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("variable", "closest"),
    [
        ("BILLING_DATABSE_URL", "BILLING_DATABASE_URL"),
        ("BILLING_JUSPAY_APIKEY", "BILLING_JUSPAY_API_KEY"),
        ("BILLING_BEAT_DISPATCH_EVRY", "BILLING_BEAT_DISPATCH_EVERY"),
    ],
)
def test_an_unknown_variable_is_refused_naming_the_closest_known_one(
    monkeypatch: pytest.MonkeyPatch, variable: str, closest: str
) -> None:
    monkeypatch.setenv(variable, "x")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == f"{variable}: unknown variable (did you mean {closest}?)"


def test_an_unknown_variable_far_from_any_known_one_is_refused_without_a_guess(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_ZZZ", "1")
    with pytest.raises(SettingsError, match=r"^BILLING_ZZZ: unknown variable$"):
        load_settings()


def test_a_typo_in_the_dotenv_file_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BILLING_MAX_TRIES_PER_CYCEL=5\nOTHER_TOOL_SETTING=1\n")
    with pytest.raises(SettingsError, match="BILLING_MAX_TRIES_PER_CYCEL: unknown variable"):
        load_settings()


def test_the_allow_listed_variables_of_tests_and_tools_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("BILLING_TEST_ANYTHING_NEW", "1")
    monkeypatch.setenv("BILLING_LOG_FORMAT", "json")
    monkeypatch.setenv("UNRELATED_DATABSE_URL", "x")  # not ours: not our business
    assert load_settings().max_tries_per_cycle == 3


@pytest.mark.parametrize(
    "variable",
    [
        "BILLING_JUSPAY_API_KEY",
        "BILLING_JUSPAY_MERCHANT_ID",
        "BILLING_WEBHOOK_USERNAME",
        "BILLING_WEBHOOK_PASSWORD",
        "BILLING_CARD_DATA_KEY",
    ],
)
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_credential_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == f"{variable}: empty: give it a value or remove the variable"


@pytest.mark.parametrize(
    "variable",
    [
        "BILLING_BEAT_DISPATCH_EVERY",
        "BILLING_BEAT_RECLAIM_EVERY",
        "BILLING_BEAT_PAYOUTS_EVERY",
        "BILLING_BROKER_VISIBILITY_TIMEOUT",
        "BILLING_JUSPAY_CONNECT_TIMEOUT",
        "BILLING_JUSPAY_READ_TIMEOUT",
        "BILLING_STALE_CLAIM_AFTER",
    ],
)
def test_a_zero_duration_is_refused(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "0s")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == f"{variable}: must be a positive duration, got 0"


def test_a_zero_retry_delay_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_RETRY_SCHEDULE", "1d,0h")
    with pytest.raises(
        SettingsError, match="BILLING_RETRY_SCHEDULE: every delay must be a positive duration"
    ):
        load_settings()
