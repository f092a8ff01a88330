"""Card data never reaches the database from a webhook (SPEC §13). *(interpretation)*

Juspay's documents show no card number or CVV in any event (EC orders carry `card` as
"FILTERED" or last four digits; payout events are our interpretation, see the sandbox). We do
not rely on that: before an event is stored, every value under a card-number key is masked to
its last four digits, every value under a CVV key is dropped, and any other string or number of
13-19 digits that passes the Luhn check is masked too, as is one inside a text, except under
keys ending in "id" (our order ids and Juspay's references must survive). A body with nothing
to redact is stored byte for byte; one with something redacted is stored re-serialised.
"""

from __future__ import annotations

import re

from billing.domain.cards import REDACTED, looks_like_card_number, mask, scrub

__all__ = ["REDACTED", "looks_like_card_number", "mask", "redact"]
CARD_NUMBER_KEYS = frozenset({"cardnumber", "cardno", "pan", "primaryaccountnumber"})
CVV_KEYS = frozenset({"cvv", "cvv2", "cvc", "cvc2", "cardsecuritycode", "securitycode", "cardcvv"})


def redact(value: object) -> tuple[object, bool]:
    """A copy of a decoded JSON value with card data masked, and whether anything was."""
    if isinstance(value, dict):
        changed = False
        result: dict[str, object] = {}
        for key, item in value.items():
            new, did = _redact_item(str(key), item)
            result[key] = new
            changed = changed or did
        return result, changed
    if isinstance(value, list):
        pairs = [_redact_item("", item) for item in value]
        return [new for new, _ in pairs], any(did for _, did in pairs)
    return value, False


def _redact_item(key: str, item: object) -> tuple[object, bool]:
    name = re.sub(r"[^a-z0-9]", "", key.lower())
    empty = item is None or item == ""
    if name in CVV_KEYS and not empty:
        return REDACTED, True
    if name in CARD_NUMBER_KEYS and not empty and not isinstance(item, dict | list):
        return mask(item), True
    if not name.endswith("id") and looks_like_card_number(item):
        return mask(item), True
    if not name.endswith("id") and isinstance(item, str) and (scrubbed := scrub(item)) != item:
        return scrubbed, True  # a card number inside a text ("paid with 4111 1111 ...")
    return redact(item)
