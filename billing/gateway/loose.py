"""Readers for Juspay's loosely typed JSON: the same field arrives as 21 or "21", true or "true".

Each reader takes the raw value and the dotted field name, returns a typed value or None for
absent/empty, and raises `InvalidField(field, reason)` for a value that cannot mean anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from billing.domain.errors import InvalidField
from billing.domain.money import parse_amount

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def mapping(value: object, field: str) -> Mapping[str, object] | None:
    """A JSON object; Juspay sometimes sends nested objects as JSON strings, so decode those."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidField(field, "expected an object") from None
    if not isinstance(value, Mapping):
        raise InvalidField(field, f"expected an object, got {type(value).__name__}")
    return value


def text(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidField(field, f"expected a string, got {type(value).__name__}")
    return str(value)


def required_text(value: object, field: str) -> str:
    result = text(value, field)
    if result is None:
        raise InvalidField(field, "missing")
    return result


def integer(value: object, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidField(field, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise InvalidField(field, f"expected an integer, got {value!r}")


def boolean(value: object, field: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise InvalidField(field, f"expected a boolean, got {value!r}")


def amount(value: object, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return parse_amount(value, field=field, allow_zero=True)


def required_amount(value: object, field: str) -> Decimal:
    result = amount(value, field)
    if result is None:
        raise InvalidField(field, "missing")
    return result


def instant(value: object, field: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 ("2020-08-30T09:47:46Z") or epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidField(field, f"expected a date-time, got {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(int(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidField(field, f"epoch out of range: {value!r}") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidField(field, f"not a date-time: {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # Juspay's timestamps are UTC
        return parsed.astimezone(UTC)
    raise InvalidField(field, f"expected a date-time, got {type(value).__name__}")
