"""Amounts: `Decimal` quantized to 0.01, parsed loosely from what Juspay sends, sent as "399.00".

Juspay types amounts as strings ("399"), integers (1000) or JSON numbers (1.5) depending on the
API; all of them mean rupees with at most two decimals. A float is read through its shortest
repr, so 0.1 stays 0.10, and a value with more than two decimals is refused, never rounded:
rounding money silently is how ledgers drift.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from billing.domain.errors import InvalidField

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # fits Numeric(12, 2)


def parse_amount(value: object, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """Parse a money value; raise `InvalidField(field, ...)` for anything not a valid amount."""
    if isinstance(value, bool) or value is None:
        raise InvalidField(field, f"expected an amount, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidField(field, f"not a number: {value!r}") from None
    else:
        raise InvalidField(field, f"expected an amount, got {type(value).__name__}")
    if not number.is_finite():
        raise InvalidField(field, f"not a finite number: {value!r}")
    if abs(number) > MAX_AMOUNT:  # before quantize, which fails on huge exponents
        raise InvalidField(field, f"too large: {value!r}")
    if number != number.quantize(CENT, rounding=ROUND_HALF_EVEN):
        raise InvalidField(field, f"more than 2 decimals: {value!r}")
    if number < 0:
        raise InvalidField(field, f"must not be negative: {value!r}")
    if number == 0 and not allow_zero:
        raise InvalidField(field, "must be greater than 0")
    return number.quantize(CENT)


def format_amount(amount: Decimal) -> str:
    """The two-decimal string Juspay expects in `order.amount` ("399.00")."""
    return str(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))
