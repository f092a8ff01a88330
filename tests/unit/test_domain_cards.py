from __future__ import annotations

import pytest

from billing.domain.cards import scrub
from billing.gateway.errors import Rejected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid card 4111111111111111 for payout", "Invalid card XXXXXXXXXXXX1111 for payout"),
        ("card 4111 1111 1111 1111 refused", "card XXXXXXXXXXXX1111 refused"),
        ("card 4111-1111-1111-1111", "card XXXXXXXXXXXX1111"),
        ("order 4111111111111112 is not Luhn-valid", "order 4111111111111112 is not Luhn-valid"),
        ("amount 399.00, order nwmjmpvassuclaxwofso", "amount 399.00, order nwmjmpvassuclaxwofso"),
        ("epoch 1639802535 and phone 9999999999", "epoch 1639802535 and phone 9999999999"),
    ],
)
def test_card_numbers_in_free_text_are_masked_and_nothing_else(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_a_gateway_error_never_carries_an_echoed_card_number() -> None:
    error = Rejected("Invalid cardNumber 5513651111111111 in request", code="E01")
    assert "5513651111111111" not in str(error)
    assert "XXXXXXXXXXXX1111" in error.message


def test_without_luhn_every_long_digit_run_is_masked() -> None:
    assert scrub("pan 5513651111111111", luhn=False) == "pan XXXXXXXXXXXX1111"
    assert scrub("epoch 1639802535", luhn=False) == "epoch 1639802535"
