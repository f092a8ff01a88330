"""Card data for payout attempts: sealed at rest, opened only in memory (SPEC §8, §13).

`card_secret` is what `track` seals under BILLING_CARD_DATA_KEY (never a CVV); `open_card`
opens it again for one attempt and, when the rail needs a CVV, asks the merchant's provider
for it then. Whatever prevents the attempt is raised as `NotMade`, whose reason holds no card
data. The card and the CVV live only in the caller's local variables; nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from billing.gateway import CardNumber, CardToken
from billing.store.models import Fulfillment, PayoutOrder
from billing.store.vault import CardVault, VaultError

CvvProvider = Callable[..., str | None]
"""Merchant code named by BILLING_CVV_PROVIDER: `provider(order_id=..., fulfillment_id=...)`."""

NUMBER, TOKEN = "NUMBER", "TOKEN"


class NotMade(Exception):  # noqa: N818 (a reason, not a failure of ours)
    """The attempt is not made; the message is the reason recorded (never card data)."""


def card_secret(card: CardNumber | CardToken) -> tuple[dict[str, object], str, str | None]:
    """(what is sealed, kind, last four) for a card. The CVV is never part of it."""
    if isinstance(card, CardToken):
        last4 = card.token[-4:] if len(card.token) >= 8 else None
        return {"kind": TOKEN, "token": card.token}, TOKEN, last4
    secret: dict[str, object] = {
        "kind": NUMBER,
        "number": card.number,
        "month": card.expiry_month,
        "year": card.expiry_year,
    }
    if card.name:
        secret["name"] = card.name
    return secret, NUMBER, card.number[-4:]


def card_from_secret(secret: Mapping[str, object], *, cvv: str | None) -> CardNumber | CardToken:
    if secret.get("kind") == TOKEN:
        return CardToken(str(secret["token"]))
    name = secret.get("name")
    return CardNumber(
        str(secret["number"]),
        str(secret["month"]),
        str(secret["year"]),
        name=None if name is None else str(name),
        security_code=cvv,
    )


def open_card(
    vault: CardVault,
    fulfillment: Fulfillment,
    order: PayoutOrder,
    *,
    cvv_provider: CvvProvider | None,
) -> tuple[CardNumber | CardToken, dict[str, object] | None]:
    """The card (with the CVV when the rail needs one) and sender details, opened now."""
    if fulfillment.card_ciphertext is None:
        raise NotMade("no card on file")
    context = fulfillment.fulfillment_id
    try:
        secret = vault.open(fulfillment.card_ciphertext, context=context)
        sender = (
            None
            if fulfillment.sender_ciphertext is None
            else vault.open(fulfillment.sender_ciphertext, context=context)
        )
    except VaultError as exc:
        raise NotMade(str(exc)) from None
    if fulfillment.needs_cvv and secret.get("kind") != NUMBER:
        raise NotMade("the rail needs a CVV but the card on file is a token")
    cvv = _cvv(cvv_provider, fulfillment, order) if fulfillment.needs_cvv else None
    try:
        card = card_from_secret(secret, cvv=cvv)
    except (ValueError, KeyError) as exc:
        what = "CVV" if "security code" in str(exc) else "card data"
        raise NotMade(f"invalid {what} for an attempt") from None
    return card, sender


def _cvv(provider: CvvProvider | None, fulfillment: Fulfillment, order: PayoutOrder) -> str:
    if provider is None:
        raise NotMade("the rail needs a CVV and BILLING_CVV_PROVIDER is not set")
    try:
        cvv = provider(order_id=order.order_id, fulfillment_id=fulfillment.fulfillment_id)
    except Exception as exc:  # noqa: BLE001 - merchant code: a failure is a recorded reason
        raise NotMade(f"the CVV provider failed ({type(exc).__name__})") from None
    if not cvv:
        raise NotMade("the rail needs a CVV and the CVV provider returned none")
    return str(cvv)
