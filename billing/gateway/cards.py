"""Card data for the payout Attempt API: values that never show themselves.

`repr()` (and so `str()`, f-strings, logging and tracebacks' locals) masks a card number to its
last four digits and never shows a CVV or a token. The only way out is `card_info()`, which
builds the plaintext that is encrypted at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_DIGITS = re.compile(r"^\d{12,19}$")
_MONTH = re.compile(r"^(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^\d{4}$")
_CVV = re.compile(r"^\d{3,4}$")


def mask(number: str) -> str:
    """`************1111`: only the last four digits of a card number are ever shown."""
    return "*" * max(len(number) - 4, 0) + number[-4:]


@dataclass(frozen=True, slots=True, repr=False)
class CardNumber:
    """A PAN with its expiry; the CVV is optional and only ever held in memory."""

    number: str
    expiry_month: str
    expiry_year: str
    name: str | None = None
    security_code: str | None = None

    def __post_init__(self) -> None:
        digits = re.sub(r"[\s-]", "", self.number)
        if not _DIGITS.match(digits):
            raise ValueError("card number: expected 12 to 19 digits")
        object.__setattr__(self, "number", digits)
        if not _MONTH.match(self.expiry_month):
            raise ValueError("card expiry month: expected MM (01-12)")
        if not _YEAR.match(self.expiry_year):
            raise ValueError("card expiry year: expected YYYY")
        if self.security_code is not None and not _CVV.match(self.security_code):
            raise ValueError("card security code: expected 3 or 4 digits")

    def __repr__(self) -> str:
        cvv = "'***'" if self.security_code else "None"
        return (
            f"CardNumber(number={mask(self.number)!r}, expiry_month={self.expiry_month!r}, "
            f"expiry_year={self.expiry_year!r}, name={self.name!r}, security_code={cvv})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class CardToken:
    """A network token standing for the card; as secret as the number it replaces."""

    token: str

    def __post_init__(self) -> None:
        if not self.token.strip():
            raise ValueError("card token: empty")

    def __repr__(self) -> str:
        return "CardToken(token='***')"


def card_info(
    card: CardNumber | CardToken, sender_details: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The Attempt API's `cardInfo` object (seed: cardNumber + cardExpiry, or cardToken)."""
    info: dict[str, object]
    if isinstance(card, CardToken):
        info = {"cardToken": card.token}
    else:
        info = {
            "cardNumber": card.number,
            "cardExpiry": {"month": card.expiry_month, "year": card.expiry_year},
        }
        if card.name:
            info["name"] = card.name
        if card.security_code:
            info["cardSecurityCode"] = card.security_code
    if sender_details:
        info["senderDetails"] = dict(sender_details)
    return info
