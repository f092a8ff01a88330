"""Settings: every knob of SPEC §10, read from BILLING_* variables and an optional `.env`.

Validated once at start; a bad value becomes `SettingsError` whose message names the
variable (`BILLING_DEBIT_TIME: expected HH:MM, got '25:00'`). Secrets are `SecretStr`, so
neither `repr(settings)` nor a log line can show them.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from collections.abc import Iterable
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from billing.domain.timing import JUSPAY_MIN_EXECUTION_LEAD

ENV_PREFIX = "BILLING_"
PAYMENT_METHOD_TYPES = ("UPI", "CARD", "NB", "WALLET")
NOTIFICATION_FLOWS = ("juspay", "merchant", "none")

_SHORT_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$", re.IGNORECASE
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# BILLING_* variables that are not settings of the product but are legitimately set where it
# runs: the test suite's service URLs (tests/services.py) and the log format read before the
# settings are (issue 13). Any other unknown BILLING_* variable is refused at start as a typo.
ALLOWED_PREFIXES = ("BILLING_TEST_",)
ALLOWED_VARIABLES = frozenset({"BILLING_LOG_FORMAT"})


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def parse_duration(value: object) -> timedelta:
    """`90m`, `26h`, `1d`, `2w` or ISO 8601 (`PT26H`, `P1DT2H`); a timedelta passes through."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    short = _SHORT_DURATION.match(text)
    if short:
        return timedelta(seconds=int(short.group(1)) * _UNIT_SECONDS[short.group(2).lower()])
    iso = _ISO_DURATION.match(text)
    if iso and text.upper() not in ("P", "PT") and any(iso.groupdict().values()):
        parts = {k: int(v or 0) for k, v in iso.groupdict().items()}
        return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    raise ValueError(f"expected a duration like 90m, 26h, 1d or PT26H, got {text!r}")


def _parse_duration_list(value: object) -> tuple[timedelta, ...]:
    if isinstance(value, list | tuple):
        items: list[object] = list(value)
    else:
        items = [part for part in str(value).split(",") if part.strip()]
    return tuple(parse_duration(item) for item in items)


def _parse_time(value: object) -> time:
    if isinstance(value, time):
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"expected HH:MM, got {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _parse_zone(value: object) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc


def _parse_flows(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in str(value).split(","):
            if not item.strip():
                continue
            method, sep, flow = item.partition(":")
            if not sep:
                raise ValueError(f"expected METHOD:FLOW pairs, got {item.strip()!r}")
            pairs.append((method.strip().upper(), flow.strip().lower()))
    flows = dict(_DEFAULT_FLOWS)
    for method, flow in pairs:
        if method not in PAYMENT_METHOD_TYPES:
            raise ValueError(f"unknown payment method type {method!r}")
        if flow not in NOTIFICATION_FLOWS:
            raise ValueError(f"unknown flow {flow!r} for {method} (juspay, merchant or none)")
        if flow == "merchant" and method not in ("UPI", "CARD"):
            raise ValueError(f"the merchant flow is for UPI and CARD only, not {method}")
        flows[method] = flow
    return flows


def _check_database_url(value: str) -> str:
    try:
        make_url(value)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {value!r}") from exc
    return value


def _check_url(value: str) -> str:
    if not re.match(r"^[a-z][a-z0-9+.-]*://", value, re.IGNORECASE):
        raise ValueError(f"not a URL: {value!r}")
    return value


_DEFAULT_FLOWS = {"UPI": "juspay", "CARD": "juspay", "NB": "none", "WALLET": "none"}

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Durations = Annotated[tuple[timedelta, ...], NoDecode, BeforeValidator(_parse_duration_list)]
TimeOfDay = Annotated[time, BeforeValidator(_parse_time)]
Zone = Annotated[
    ZoneInfo, BeforeValidator(_parse_zone), PlainSerializer(lambda z: z.key, return_type=str)
]
Flows = Annotated[dict[str, str], NoDecode, BeforeValidator(_parse_flows)]


class Settings(BaseSettings):
    """The whole configuration; build it with `load_settings()` to get one-line errors."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        arbitrary_types_allowed=True,
    )

    database_url: str = "sqlite:///billing.db"
    # kombu's SQLAlchemy transport on a SQLite file: a broker that needs no server.
    broker_url: str = "sqla+sqlite:///billing-broker.db"
    # Redis redelivers an unacked task after this; every task is claim-first, so it is safe.
    broker_visibility_timeout: Duration = timedelta(hours=1)

    juspay_base_url: str = "https://sandbox.juspay.in"
    juspay_api_key: SecretStr | None = None
    juspay_merchant_id: str | None = None
    juspay_api_version: str = "2021-03-25"
    juspay_connect_timeout: Duration = timedelta(seconds=5)
    juspay_read_timeout: Duration = timedelta(seconds=30)
    # Calls to Juspay in flight at once per worker process (its connection pool's size too).
    # 32: on 2 cores, 64 threads per process spent twice the CPU per call in lock and GIL
    # contention (bench/celery_throughput.py: 509 debits/s at 64, 692/s at 32, 660/s at 16).
    gateway_max_in_flight: int = Field(default=32, ge=1, le=1024)
    # Due debits per execution message: claimed, recorded, sent and settled together.
    execution_batch: int = Field(default=100, ge=1, le=1000)
    # Beat leases due work while fewer ids than this wait in the gateway queue.
    dispatch_max_queued: int = Field(default=20_000, ge=100)

    juspay_public_key_file: Path | None = None
    juspay_key_id: str | None = None
    merchant_private_key_file: Path | None = None
    merchant_key_id: str | None = None
    jwe_alg: str = "RSA-OAEP"
    jwe_enc: str = "A256CBC-HS512"
    jws_sign: bool = False
    attempt_path: str = "/payout/merchant/v1/orders/{order_id}/attempt"

    webhook_username: str | None = None
    webhook_password: SecretStr | None = None
    webhook_max_body_bytes: int = Field(default=1_000_000, gt=0)

    timezone: Zone = ZoneInfo("Asia/Kolkata")
    debit_time: TimeOfDay = time(10, 0)
    execution_lead: Duration = timedelta(hours=26)
    planning_horizon: Duration = timedelta(days=3)
    retry_schedule: Durations = (timedelta(days=1), timedelta(days=2))
    max_tries_per_cycle: int = Field(default=3, ge=1, le=20)
    pending_max_age: Duration = timedelta(days=7)
    # A debit claimed (EXECUTING) this long without an answer had its worker die: reconcile it.
    # Also how long one status check holds an order. Keep it above the connect + read timeout
    # (a live call is then never taken for a dead one); it bounds how soon a killed worker's
    # debits are final (README: recovery).
    stale_claim_after: Duration = timedelta(minutes=2)
    # An UNKNOWN outcome (timeout, 5xx, dropped connection) is first read back this soon; a
    # failed read of it is tried again after twice the previous wait (never later than the
    # pending orders' polling would).
    reconcile_after: Duration = timedelta(minutes=1)
    # Beat does not enqueue the same due row twice within this lease.
    dispatch_lease: Duration = timedelta(minutes=5)
    # How often beat plans debits from the mandate calendar (it also plans once as it starts).
    beat_plan_every: Duration = timedelta(minutes=5)
    # How often beat selects due work, and how often it looks for stale claims.
    beat_dispatch_every: Duration = timedelta(seconds=15)
    beat_reclaim_every: Duration = timedelta(minutes=1)
    # How often beat selects due payout attempts and status reads (and reclaims stale attempts).
    beat_payouts_every: Duration = timedelta(seconds=30)
    payout_max_attempts: int = Field(default=3, ge=1, le=20)
    card_data_key: SecretStr | None = None
    cvv_provider: str | None = None
    notification_flows: Flows = Field(default_factory=lambda: dict(_DEFAULT_FLOWS))
    # Logs (telemetry/logs.py, read from the environment when logging starts): json, text, or
    # auto (text on a terminal, JSON otherwise).
    log_format: Literal["auto", "json", "text"] = "auto"
    # The worker's /metrics port (its main process sums its prefork children); unset: none.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator(
        "juspay_api_key",
        "juspay_merchant_id",
        "juspay_key_id",
        "merchant_key_id",
        "webhook_username",
        "webhook_password",
        "card_data_key",
        "cvv_provider",
        mode="before",
    )
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # An empty credential is a template line left unfilled, not "no credential": refuse it
        # rather than send an empty API key or accept webhooks with an empty password.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            raise ValueError("empty: give it a value or remove the variable")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_database_url(value)

    @field_validator("broker_url", "juspay_base_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("juspay_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("card_data_key")
    @classmethod
    def _card_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        try:
            key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("expected the URL-safe base64 of 32 random bytes") from exc
        if len(key) != 32:
            raise ValueError(f"expected 32 bytes once decoded, got {len(key)}")
        return value

    @field_validator(
        "execution_lead",
        "pending_max_age",
        "planning_horizon",
        "stale_claim_after",
        "reconcile_after",
        "dispatch_lease",
        "broker_visibility_timeout",
        "juspay_connect_timeout",
        "juspay_read_timeout",
        "beat_dispatch_every",
        "beat_reclaim_every",
        "beat_payouts_every",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, got 0")
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _positive_each(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if any(delay <= timedelta(0) for delay in value):
            raise ValueError("every delay must be a positive duration")
        return value

    @field_validator("execution_lead")
    @classmethod
    def _juspay_lead(cls, value: timedelta) -> timedelta:
        # Juspay asks for mandate execution at least 25 h ahead of the debit (its PDN, then its
        # 24 h wait); a shorter lead would have Juspay debit after the planned day.
        if value < JUSPAY_MIN_EXECUTION_LEAD:
            hours = JUSPAY_MIN_EXECUTION_LEAD.total_seconds() / 3600
            given = value.total_seconds() / 3600
            raise ValueError(f"must be at least {hours:g}h (Juspay's lead), got {given:g}h")
        return value

    def flow_for(self, payment_method_type: str) -> str:
        """The notification flow (juspay / merchant / none) for a payment method type."""
        return self.notification_flows.get(payment_method_type.upper(), "none")

    def require(self, *names: str) -> None:
        """Fail with the variables' names when a feature needs settings that are unset."""
        missing = [ENV_PREFIX + n.upper() for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise SettingsError(f"{', '.join(missing)}: required but not set")


def known_variables() -> frozenset[str]:
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def unknown_variables(names: Iterable[str]) -> list[str]:
    """`BILLING_X: unknown variable (did you mean BILLING_Y?)` for each name the product does
    not read, so a typo fails at start instead of silently leaving a default in force."""
    known = known_variables()
    problems = []
    for name in sorted(set(names)):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in ALLOWED_VARIABLES:
            continue
        if upper.startswith(ALLOWED_PREFIXES):
            continue
        # Compared without the shared prefix, which would make every name look close.
        suffixes = sorted(k.removeprefix(ENV_PREFIX) for k in known)
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, n=1)
        hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else ""
        problems.append(f"{name}: unknown variable{hint}")
    return problems


def _dotenv_names(path: Path) -> list[str]:
    if not path.is_file():
        return []
    from dotenv import dotenv_values  # noqa: PLC0415 - a pydantic-settings dependency

    return list(dotenv_values(path))


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise `SettingsError` naming each bad variable,
    an unknown `BILLING_*` variable (in the environment or `.env`) included."""
    names = list(os.environ) + _dotenv_names(Path(".env"))
    unknown = unknown_variables(names)
    if unknown:
        raise SettingsError("; ".join(unknown))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{ENV_PREFIX}{field.upper()}: {message}")
        raise SettingsError("; ".join(lines)) from None
