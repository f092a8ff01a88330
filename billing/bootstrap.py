"""The composition root: the one place that turns settings into engines, clients and clocks.

Entry points (CLI, Celery worker, webhook receiver) call `build()`; nothing connects at import
time, and a Celery worker builds its container after fork (`worker_process_init`).
"""

from __future__ import annotations

import base64
import importlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing.config import ENV_PREFIX, Settings, SettingsError, load_settings
from billing.domain.debit import RetryPolicy
from billing.domain.schedule import DebitCalendar
from billing.gateway import AttemptEncrypter, JuspayClient
from billing.services.debits.execution import Debits
from billing.services.debits.notifications import Notifications
from billing.services.debits.orders import Orders
from billing.services.debits.planning import PlanningPolicy
from billing.services.debits.policy import DebitPolicy
from billing.services.debits.sender import Sender
from billing.services.payouts.service import CvvProvider, PayoutPolicy, Payouts
from billing.services.webhook_events import WebhookEvents
from billing.store.db import make_engine, make_session_factory
from billing.store.vault import CardVault, vault_from_setting
from billing.telemetry import logs

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = system_clock
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _gateway: JuspayClient | None = field(default=None, repr=False)
    _sender: Sender | None = field(default=None, repr=False)

    @property
    def gateway(self) -> JuspayClient:
        """The Juspay client, built on first use (one per process, after a worker forks)."""
        if self._gateway is None:
            s = self.settings
            s.require("juspay_api_key", "juspay_merchant_id")
            assert s.juspay_api_key is not None  # checked by require()
            assert s.juspay_merchant_id is not None
            self._gateway = JuspayClient(
                base_url=s.juspay_base_url,
                api_key=s.juspay_api_key.get_secret_value(),
                merchant_id=s.juspay_merchant_id,
                api_version=s.juspay_api_version,
                connect_timeout=s.juspay_connect_timeout.total_seconds(),
                read_timeout=s.juspay_read_timeout.total_seconds(),
                attempt_path=s.attempt_path,
                attempt_encrypter=attempt_encrypter(s),
                max_connections=s.gateway_max_in_flight,
            )
            self._closers.append(self._gateway.close)
        return self._gateway

    @property
    def sender(self) -> Sender:
        """The process's concurrent sender of executions: one thread pool over the one
        gateway client, as many threads as the client has connections."""
        if self._sender is None:
            pool = ThreadPoolExecutor(
                max_workers=self.settings.gateway_max_in_flight, thread_name_prefix="juspay"
            )
            self._closers.append(pool.shutdown)
            self._sender = Sender(self.gateway, pool)
        return self._sender

    def payouts(self) -> Payouts:
        s = self.settings
        return Payouts(
            self.sessions,
            self.gateway,
            self.clock,
            policy=PayoutPolicy(
                max_attempts=s.payout_max_attempts,
                attempts_disabled=attempts_disabled(s),
                stale_claim_after=s.stale_claim_after,
                dispatch_lease=s.dispatch_lease,
            ),
            vault=card_vault(s),
            cvv_provider=load_cvv_provider(s.cvv_provider),
        )

    @property
    def debit_policy(self) -> DebitPolicy:
        s = self.settings
        return DebitPolicy(
            planning=self.planning,
            retry=RetryPolicy(max_tries=s.max_tries_per_cycle, schedule=s.retry_schedule),
            pending_max_age=s.pending_max_age,
            stale_claim_after=s.stale_claim_after,
            reconcile_after=s.reconcile_after,
        )

    def debits(self) -> Debits:
        return Debits(self.sessions, self.gateway, self.debit_policy, self.clock, self.sender)

    def orders(self) -> Orders:
        return Orders(self.sessions, self.gateway, self.debit_policy, self.clock, self.debits())

    def notifications(self) -> Notifications:
        return Notifications(self.sessions, self.gateway, self.debit_policy, self.clock)

    def webhook_events(self) -> WebhookEvents:
        """Processing of stored webhooks; the gateway is built only if a debit event needs it."""
        return WebhookEvents(
            self.sessions,
            clock=self.clock,
            calendar=self.calendar,
            debits=self.debits,
            notifications=self.notifications,
        )

    @property
    def calendar(self) -> DebitCalendar:
        return DebitCalendar(tz=self.settings.timezone, debit_time=self.settings.debit_time)

    @property
    def planning(self) -> PlanningPolicy:
        return PlanningPolicy(
            calendar=self.calendar,
            execution_lead=self.settings.execution_lead,
            horizon=self.settings.planning_horizon,
            flows=self.settings.notification_flows,
        )

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
        self.engine.dispose()


_ATTEMPT_KEYS = ("juspay_public_key_file", "juspay_key_id", "merchant_key_id")


def attempts_disabled(settings: Settings) -> str | None:
    """Why the Attempt API cannot be called with these settings, or None when it can."""
    missing = [n for n in _ATTEMPT_KEYS if getattr(settings, n) in (None, "")]
    if not missing:
        return None
    return ", ".join(ENV_PREFIX + n.upper() for n in missing) + " not set"


def attempt_encrypter(settings: Settings) -> AttemptEncrypter | None:
    """The JWE encrypter for payout attempts when its keys are configured (SPEC §8)."""
    s = settings
    if attempts_disabled(s) is not None:
        return None
    assert s.juspay_public_key_file is not None  # checked by attempts_disabled()
    assert s.juspay_key_id is not None
    assert s.merchant_key_id is not None
    if s.jws_sign:
        s.require("merchant_private_key_file")
    return AttemptEncrypter.from_files(
        public_key_file=s.juspay_public_key_file,
        key_id=s.juspay_key_id,
        merchant_key_id=s.merchant_key_id,
        alg=s.jwe_alg,
        enc=s.jwe_enc,
        private_key_file=s.merchant_private_key_file if s.jws_sign else None,
    )


def card_vault(settings: Settings) -> CardVault | None:
    key = settings.card_data_key
    return None if key is None else vault_from_setting(key.get_secret_value())


def load_cvv_provider(path: str | None) -> CvvProvider | None:
    """The merchant's CVV provider named `module:function` (BILLING_CVV_PROVIDER)."""
    if not path:
        return None
    module_name, _, name = path.partition(":")
    try:
        provider = getattr(importlib.import_module(module_name), name or "", None)
    except ImportError as exc:
        raise SettingsError(
            f"BILLING_CVV_PROVIDER: cannot import {module_name!r} ({exc})"
        ) from None
    if not name or not callable(provider):
        raise SettingsError(f"BILLING_CVV_PROVIDER: expected module:function, got {path!r}")
    checked: CvvProvider = provider
    return checked


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    pool_size: int = 5,
    pre_ping: bool = True,
) -> Container:
    """The container; `pool_size`: pooled database connections (the webhook receiver's are
    as many as the events it stores at once); `pre_ping`: see `make_engine`."""
    settings = settings or load_settings()
    register_secrets(settings)
    engine = make_engine(settings.database_url, pool_size=pool_size, pre_ping=pre_ping)
    return Container(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or system_clock,
    )


def register_secrets(settings: Settings) -> None:
    """The configured secrets, and the Basic values made from them, never reach a log line
    (telemetry/logs.py replaces them wherever they appear)."""
    key = settings.juspay_api_key.get_secret_value() if settings.juspay_api_key else None
    if key:
        logs.register_secret(key)
        logs.register_secret(base64.b64encode(f"{key}:".encode()).decode("ascii"))
    password = settings.webhook_password.get_secret_value() if settings.webhook_password else None
    if password:
        logs.register_secret(password)
        basic = f"{settings.webhook_username or ''}:{password}".encode()
        logs.register_secret(base64.b64encode(basic).decode("ascii"))
    if settings.card_data_key:
        logs.register_secret(settings.card_data_key.get_secret_value())
