"""Amounts as Juspay types them, parsed to Decimal cents and sent back as "399.00"."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.domain.errors import InvalidField
from billing.domain.money import format_amount, parse_amount


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("399", "399.00"),
        ("1.00", "1.00"),
        ("1.0", "1.00"),
        (" 12.5 ", "12.50"),
        (1, "1.00"),
        (1000, "1000.00"),
        (1.5, "1.50"),
        (0.1, "0.10"),
        (Decimal("7.25"), "7.25"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_amounts_parse_to_cents(value: object, expected: str) -> None:
    amount = parse_amount(value)
    assert amount == Decimal(expected)
    assert format_amount(amount) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "greater than 0"),
        (0, "greater than 0"),
        ("-1", "negative"),
        ("1.001", "2 decimals"),
        (0.001, "2 decimals"),
        ("abc", "not a number"),
        ("", "not a number"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        (None, "expected an amount"),
        (True, "expected an amount"),
        ([1], "expected an amount"),
        ("10000000000.00", "too large"),
    ],
)
def test_bad_amounts_name_the_field(value: object, reason: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_amount(value, field="max_amount")
    assert caught.value.field == "max_amount"
    assert reason in caught.value.reason


def test_zero_is_allowed_where_asked() -> None:
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")


@pytest.mark.parametrize("value", ["1e30", 10**30, "-1e30", "9999999999999.99"])
def test_huge_amounts_are_refused_with_a_named_error_not_a_decimal_crash(value: object) -> None:
    with pytest.raises(InvalidField, match="amount: too large"):
        parse_amount(value)
