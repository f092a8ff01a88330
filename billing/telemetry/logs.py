"""Structured logs: every line about a debit carries its ids, so one debit can be followed.

    with logs.bound(debit_id=7):          # a scope: the lines logged inside carry debit_id
        logs.bind(order_id=..., try_number=2)   # learnt later: added to the innermost scope
        log.info("debit %s: %s", 7, result)

Scopes live in a `contextvars.ContextVar` (per thread, per task); `bind` outside any scope does
nothing, so a CLI run never keeps a previous debit's ids. The Celery worker opens a scope per
task with its `task_id` (tasks/worker.py); the gateway client binds Juspay's `request_id`.
A thread pool must run its work in a copy of the caller's context to keep the ids.

Output (`BILLING_LOG_FORMAT`): `json` (one object per line) or `text`; `auto` (the default) is
text on a terminal, JSON otherwise. The scope's fields are read only when a line is emitted:
a level that is off costs the usual `isEnabledFor` check and nothing else.

Redaction runs on every field of every line, whatever logged it: values under secret-looking
names (CVV, password, key, token, authorization) are replaced, card numbers masked to their
last four digits (`domain.cards`), CVVs written as `cvv=123` removed, and the configured
secrets (API key, webhook password, card data key: `register_secret`) never appear.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from billing.domain.cards import REDACTED, scrub

FORMATS: Final = ("auto", "json", "text")
_TRY_KEY = "try"
# The order a reader scans a line in; other fields follow in the order they were bound.
_FIRST = ("debit_id", "mandate_id", "order_id", _TRY_KEY, "task_id", "request_id")
_SECRET_NAME = re.compile(r"cvv|cvc|security_?code|password|passwd|secret|token|api_?key|"
                          r"authorization|private_?key|card_?data_?key", re.IGNORECASE)  # fmt: skip
# A decimal number (a duration, an amount) is not a card number, however many digits it has.
_DECIMAL = re.compile(r"(\d+\.\d+)")
_THIRTEEN_DIGITS = re.compile(r"\d(?:[ -]?\d){12}")
_SUSPECT = re.compile(r"\d(?:[ -]?\d){12}|cvv|cvc|security", re.IGNORECASE)
_CVV_TEXT = re.compile(r"(?i)\b(cvv2?|cvc2?|security[ _]?code)(\W{1,3})\d{3,4}\b")
# Loggers that would repeat our one line per gateway call (httpx logs every request at INFO).
_QUIET = ("httpx", "httpcore", "hpack", "urllib3")

_scope: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "billing_log_scope", default=None
)
_secrets: set[str] = set()


def _key(name: str) -> str:
    return _TRY_KEY if name == "try_number" else name


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """A scope whose fields (plus the enclosing scope's) go on every line logged inside it.
    `try_number=` is written as `try`; a None value is left out."""
    parent = _scope.get()
    scope = dict(parent) if parent else {}
    scope.update((_key(k), v) for k, v in fields.items() if v is not None)
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def bind(**fields: object) -> None:
    """Add fields to the innermost scope (a no-op outside any scope); None values are skipped."""
    scope = _scope.get()
    if scope is not None:
        scope.update((_key(k), v) for k, v in fields.items() if v is not None)


def has(name: str) -> bool:
    scope = _scope.get()
    return scope is not None and _key(name) in scope


def open_scope(**fields: object) -> contextvars.Token[dict[str, object] | None]:
    """A new outermost scope (a Celery task's); give the token back to `close_scope`."""
    return _scope.set({_key(k): v for k, v in fields.items() if v is not None})


def close_scope(token: contextvars.Token[dict[str, object] | None] | None) -> None:
    if token is None:
        _scope.set(None)
        return
    try:
        _scope.reset(token)
    except ValueError:  # created in another context (a signal from another thread)
        _scope.set(None)


def current() -> Mapping[str, object]:
    return dict(_scope.get() or {})


def register_secret(value: str | None) -> None:
    """A value that must never appear in a log line (an API key, a password); short values
    are ignored, they would blank out ordinary words."""
    if value and len(value) >= 6:
        _secrets.add(value)


def redact_text(text: str) -> str:
    """Card numbers masked, `cvv=123` emptied, registered secrets replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _SUSPECT.search(text) is None:  # the usual line: no long digit run, no CVV
        return text
    text = _CVV_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    if _THIRTEEN_DIGITS.search(text) is None:
        return text
    parts = _DECIMAL.split(text)  # odd items: the decimals, kept as they are
    return "".join(part if i % 2 else scrub(part) for i, part in enumerate(parts))


@functools.lru_cache(maxsize=512)
def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_value(name: str, value: object) -> object:
    if value is None or isinstance(value, bool):
        return value
    if _secret_name(name):
        return REDACTED
    if isinstance(value, int | float):
        return value if abs(value) < 10**12 else redact_text(str(value))
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(name, v) for v in value]
    return redact_text(str(value))


def _fields(record: logging.LogRecord) -> dict[str, object]:
    scope: Mapping[str, object] = getattr(record, "billing", None) or {}
    extra = getattr(record, "fields", None)
    fields: dict[str, object] = {}
    for name in _FIRST:
        if name in scope:
            fields[name] = scope[name]
    for name, value in scope.items():
        fields.setdefault(name, value)
    if isinstance(extra, Mapping):
        for name, value in extra.items():
            fields[str(name)] = value
    return {name: redact_value(name, value) for name, value in fields.items()}


class ScopeFilter(logging.Filter):
    """Copies the current scope onto a record; on the handler, so it runs only for lines that
    are emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "billing"):
            record.billing = _scope.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the scope's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for name, value in _fields(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message  debit_id=… order_id=…`, redacted like the JSON."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = redact_text(super().format(record))
        fields = _fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{name}={value}" for name, value in fields.items())
        return f"{text}  {pairs}"

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return redact_text(super().formatException(ei))


def resolve_format(value: str | None = None, *, stream: Any = None) -> str:
    """`json` or `text`: the value given, else BILLING_LOG_FORMAT, `auto` by the stream."""
    chosen = (value or os.environ.get("BILLING_LOG_FORMAT") or "auto").strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"BILLING_LOG_FORMAT: expected json, text or auto, got {chosen!r}")
    if chosen == "auto":
        target = stream if stream is not None else sys.stderr
        return "text" if getattr(target, "isatty", lambda: False)() else "json"
    return chosen


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so a second `configure` replaces it instead of doubling every line."""


def configure(level: int | str = logging.WARNING, fmt: str | None = None) -> None:
    """Install the one handler on the root logger (stderr), at `level`."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    chosen = resolve_format(fmt, stream=sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.addFilter(ScopeFilter())
    # Someone else's handlers on the root (pytest, an app embedding billing): their level stands.
    others = any(not isinstance(h, _Handler) for h in root.handlers)
    root.addHandler(handler)
    if not others:
        root.setLevel(level if isinstance(level, int) else level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
