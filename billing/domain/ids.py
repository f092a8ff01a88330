"""Deterministic gateway identifiers: the same (mandate, cycle, try) always gives the same id.

FROZEN FOREVER: an id is `sha256("<domain>|<mandate_id>|<cycle>|<n>")` (UTF-8; cycle and n in
decimal, so the split from the right is unambiguous), base32 without padding, lowercased, cut to
its length. Changing the domain string, the separator, the hash, the alphabet or the length would
give an order already sent a new id, and the next resend would charge the customer twice. A new
scheme gets a new domain string and must keep this one for existing debits.

    order_id_for            20 chars, 100 bits, domain "billing.order.v1"
    notification_ref_for    25 chars, 125 bits, domain "billing.notification.v1"

The lengths differ, so a notification reference never equals an order id.
"""

from __future__ import annotations

import base64
import hashlib

ORDER_ID_LENGTH = 20  # Juspay advises order ids of at most 21 characters
NOTIFICATION_REF_LENGTH = 25
_ORDER_DOMAIN = "billing.order.v1"
_NOTIFICATION_DOMAIN = "billing.notification.v1"


def order_id_for(mandate_id: str, cycle: int, try_number: int) -> str:
    """The order id of try `try_number` (tries count from 1 by convention) of cycle `cycle`."""
    return _derive(_ORDER_DOMAIN, mandate_id, cycle, try_number, ORDER_ID_LENGTH)


def notification_ref_for(mandate_id: str, cycle: int, attempt: int) -> str:
    """The `object_reference_id` of PDN attempt `attempt` for cycle `cycle` (merchant flow)."""
    return _derive(_NOTIFICATION_DOMAIN, mandate_id, cycle, attempt, NOTIFICATION_REF_LENGTH)


def _derive(domain: str, mandate_id: str, cycle: int, number: int, length: int) -> str:
    if not mandate_id:
        raise ValueError("mandate_id must not be empty")
    if cycle < 0 or number < 0:
        raise ValueError(f"cycle and try numbers must not be negative, got {cycle}, {number}")
    material = f"{domain}|{mandate_id}|{cycle:d}|{number:d}".encode()
    digest = hashlib.sha256(material).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]
