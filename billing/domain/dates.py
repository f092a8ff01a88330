"""Mandate dates from whatever the edge holds: a date, a date-time, ISO text or epoch seconds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from billing.domain.errors import InvalidField
from billing.domain.interpretations import (
    EPOCH_MIN_SECONDS,
    end_date_of_instant,
    mandate_date_of,
)

_EXPECTED = "expected YYYY-MM-DD, an ISO date-time or epoch seconds"
_EPOCH_MAX_DIGITS = 12  # year 9999 is 253402300799; longer digit strings are not seconds


def parse_mandate_date(value: object, *, tz: ZoneInfo, field: str, end: bool = False) -> date:
    """A calendar date in the mandate's zone `tz`; raise `InvalidField(field, ...)` otherwise.

    Instants (aware date-times, ISO text with an offset or "Z", epoch seconds as an int or a digit
    string, as Juspay sends them) become their date in `tz`; naive date-times are local already.
    `end=True` reads an instant as the end of a mandate (`end_date_of_instant`); a date stays.
    """
    read = _read(value, field)
    if not isinstance(read, datetime):
        return read
    try:
        return end_date_of_instant(read, tz) if end else mandate_date_of(read, tz)
    except OverflowError:
        raise InvalidField(field, f"out of range: {value!r}") from None


def _read(value: object, field: str) -> date | datetime:
    """A date as given, or an instant (aware, or naive = local wall time)."""
    if isinstance(value, date):  # datetime included
        return value
    if isinstance(value, bool):
        raise InvalidField(field, f"{_EXPECTED}, got {value!r}")
    if isinstance(value, int):
        return _from_epoch(value, field)
    if not isinstance(value, str):
        raise InvalidField(field, f"{_EXPECTED}, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidField(field, "required")
    if text.isascii() and text.isdigit():
        if len(text) > _EPOCH_MAX_DIGITS:
            raise InvalidField(field, f"epoch seconds out of range: {text[:20]}...")
        return _from_epoch(int(text), field)
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField(field, f"{_EXPECTED}, got {value!r}") from None


def _from_epoch(seconds: int, field: str) -> datetime:
    if seconds < EPOCH_MIN_SECONDS:
        raise InvalidField(
            field, f"epoch seconds before 2000-01-01 are not a mandate date: {seconds}"
        )
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidField(field, f"epoch seconds out of range: {seconds}") from None
