"""Recognising and masking card numbers (SPEC §13): pure, for every edge that handles text.

A card number is 13-19 digits (spaces or dashes allowed between them) that pass the Luhn
check. Masked, only its last four digits remain. `scrub` applies this to free text, and drops
the value of a CVV named in it, for messages that come from outside (a gateway's error
message, a JSON text inside a webhook) before they are logged or stored: we cannot know what
another system echoes back.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"
_SEPARATORS = re.compile(r"[\s-]")
# A run of 13-19 digits, single spaces or dashes allowed between them, not inside a longer run.
_DIGIT_RUN = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# Both patterns need three digits in a row (a card's may have single blanks or dashes between
# them): texts without are returned at once.
_THREE_DIGITS = re.compile(r"\d[ -]?\d[ -]?\d")
# A CVV named in a text with its value: `'cvv': '123'`, `"CVC2": 123`, `card_cvv=999` (a JSON
# or dict inside a string, a form): the name, a quote, `:` or `=`, a quote, 3-4 digits.
_CVV_IN_TEXT = re.compile(
    r"""(?ix)
    ( \b (?: cvv2? | cvc2? | card_?cvv | (?:card_?)?security_?code ) \b
      \\?["']? \s* [:=] \s* \\?["']? )
    \d{3,4} \b
    """
)


def looks_like_card_number(value: object) -> bool:
    """13-19 digits (spaces and dashes allowed) that pass the Luhn check."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    digits = _SEPARATORS.sub("", str(value)) if isinstance(value, str) else str(value)
    if not (13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def mask(value: object) -> str:
    """Last four digits shown, the rest as X; nothing shown for fewer than 8 digits."""
    digits = "".join(c for c in str(value) if c.isascii() and c.isdigit())
    if len(digits) < 8:
        return REDACTED
    return "X" * (len(digits) - 4) + digits[-4:]


def scrub(text: str, *, luhn: bool = True) -> str:
    """`text` with every card number in it masked; shorter digit runs (amounts, epochs, phone
    numbers) untouched. `luhn=False` masks every 13-19 digit run: test cards often fail the
    Luhn check, and a stray long number in an error message is worth losing."""

    if not _THREE_DIGITS.search(text):  # most texts: nothing either pattern could match
        return text

    def replace(match: re.Match[str]) -> str:
        run = match.group(0)
        return mask(run) if not luhn or looks_like_card_number(run) else run

    return _CVV_IN_TEXT.sub(rf"\g<1>{REDACTED}", _DIGIT_RUN.sub(replace, text))
