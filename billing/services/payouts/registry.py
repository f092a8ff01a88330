"""Registering payout orders (SPEC §8): `billing payouts track` and `billing payouts import`.

A registration is validated at the edge (`parse_registration`), then `PayoutRegistry.track`
reads the order from Juspay and stores it, with the card sealed under BILLING_CARD_DATA_KEY on
its PLAIN_CARD fulfillments (those whose `beneficiaryDetails.type` is PLAIN_CARD; the method
lists only name the rail) (cards.card_secret: never a CVV).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from billing.domain.errors import InvalidField
from billing.domain.payout import PLAIN_CARD, parse_expiry, parse_sender_details
from billing.gateway import CardNumber, CardToken, GatewayError, OrderNotFound, loose
from billing.services import Clock, NotFoundError, ServiceError
from billing.services.payouts.attempts import PayoutPolicy
from billing.services.payouts.cards import card_secret
from billing.services.payouts.events import observe_order, settle_order
from billing.services.ports import PayoutGateway
from billing.store import payouts as store
from billing.store.models import PayoutOrder
from billing.store.vault import CardDataKeyMissing, CardVault

log = logging.getLogger("billing.payouts")


@dataclass(frozen=True, slots=True)
class Registration:
    """What `billing payouts track` / an import row asks for, validated at the edge."""

    order_id: str
    customer_id: str
    card: CardNumber | CardToken | None = None  # masked repr
    sender_details: Mapping[str, object] | None = field(default=None, repr=False)
    needs_cvv: bool = False


REGISTRATION_FIELDS = frozenset(
    {
        "order_id",
        "customer_id",
        "card_token",
        "card_number",
        "expiry",
        "name",
        "sender_details",
        "needs_cvv",
    }
)


def parse_registration(row: Mapping[str, object]) -> Registration:
    """An import row or the CLI's options -> a Registration; `InvalidField` names the field."""
    unknown = sorted(set(row) - REGISTRATION_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], "unknown field")

    def text(name: str) -> str | None:
        value = row.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str | int):
            raise InvalidField(name, "expected a string")
        return str(value).strip()

    order_id, customer_id = text("order_id"), text("customer_id")
    if not order_id:
        raise InvalidField("order_id", "required")
    if not customer_id:
        raise InvalidField("customer_id", "required")
    token, number = text("card_token"), text("card_number")
    if token and number:
        raise InvalidField("card_number", "give a card token or a card number, not both")
    card: CardNumber | CardToken | None = None
    if token:
        card = CardToken(token)
    elif number:
        expiry = text("expiry")
        if not expiry:
            raise InvalidField("expiry", "required with a card number (MM/YYYY)")
        month, year = parse_expiry(expiry)
        try:
            card = CardNumber(number, month, year, name=text("name"))
        except ValueError:
            raise InvalidField("card_number", "expected 12 to 19 digits") from None
    elif text("expiry") or text("name"):
        raise InvalidField("card_number", "required with expiry / name")
    raw_sender = row.get("sender_details")
    if isinstance(raw_sender, str) and raw_sender.strip():
        try:
            raw_sender = json.loads(raw_sender)
        except ValueError:
            raise InvalidField("sender_details", "not valid JSON") from None
    sender = None if raw_sender in (None, "") else parse_sender_details(raw_sender)
    needs_cvv = loose.boolean(row.get("needs_cvv"), "needs_cvv") or False
    if needs_cvv and not isinstance(card, CardNumber):
        raise InvalidField("needs_cvv", "only for a card number (a token attempt has no CVV)")
    return Registration(order_id, customer_id, card, sender, needs_cvv)


def read_registrations(path: Path) -> Iterator[tuple[int, Registration | InvalidField]]:
    """JSON lines, one registration per line, with its line number (1-based)."""
    if not path.is_file():
        raise ServiceError(f"{path}: no such file")
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, InvalidField("line", f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(value, dict):
                yield number, InvalidField("line", "expected a JSON object")
                continue
            try:
                yield number, parse_registration(value)
            except InvalidField as problem:
                yield number, problem


@dataclass(frozen=True, slots=True)
class TrackReport:
    order_id: str
    status: str
    # (id, beneficiary type, rail, status, attempt state)
    fulfillments: list[tuple[str, str | None, str | None, str, str]]
    card_attached_to: list[str]


@dataclass
class ImportReport:
    rows: int = 0
    tracked: int = 0
    errors: list[str] = field(default_factory=list)


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutRegistry:
    """Tracking payout orders; tracking one again refreshes it and replaces its card."""

    sessions: sessionmaker[Session]
    gateway: PayoutGateway
    clock: Clock
    policy: PayoutPolicy
    vault: CardVault | None

    def track(self, registration: Registration) -> TrackReport:
        """Fetch the order's payout status from Juspay and store it, with the card sealed on
        its PLAIN_CARD fulfillments. Tracking again refreshes it and replaces the card."""
        reg = registration
        vault = self._vault() if reg.card is not None or reg.sender_details else None
        try:
            result = self.gateway.payout_order_status(reg.order_id, customer_id=reg.customer_id)
        except OrderNotFound:
            raise NotFoundError(f"payout order {reg.order_id}: not found at Juspay") from None
        if result.order_id != reg.order_id:
            raise ServiceError(f"Juspay answered for order {result.order_id}, not {reg.order_id}")
        if result.customer_id and result.customer_id != reg.customer_id:
            raise InvalidField("customer_id", f"Juspay holds {reg.order_id} for another customer")
        now = self.clock()
        attached: list[str] = []
        with self.sessions() as session, session.begin():
            order = store.find_order(session, reg.order_id, for_update=True)
            if order is None:
                order = PayoutOrder(
                    order_id=reg.order_id,
                    customer_id=reg.customer_id,
                    status=result.status,
                    status_at=result.updated_at,
                    checks=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(order)
                session.flush()
            order.customer_id = reg.customer_id
            fulfillments = observe_order(session, order, result, now=now)
            for fulfillment in fulfillments:
                if (fulfillment.beneficiary_type or "").upper() != PLAIN_CARD:
                    continue
                fulfillment.max_attempts = self.policy.max_attempts
                if vault is not None and reg.card is not None:
                    secret, kind, last4 = card_secret(reg.card)
                    context = fulfillment.fulfillment_id
                    fulfillment.card_ciphertext = vault.seal(secret, context=context)
                    fulfillment.card_kind, fulfillment.card_last4 = kind, last4
                    fulfillment.needs_cvv = reg.needs_cvv
                    attached.append(fulfillment.fulfillment_id)
                if vault is not None and reg.sender_details:
                    fulfillment.sender_ciphertext = vault.seal(
                        reg.sender_details, context=fulfillment.fulfillment_id
                    )
            settle_order(session, order, fulfillments, now=now, replan=True)
            summary = [
                (f.fulfillment_id, f.beneficiary_type, f.rail, f.status, f.attempt_state)
                for f in fulfillments
            ]
            status = order.status
        if reg.card is not None and not attached:
            log.warning("payout %s: no PLAIN_CARD fulfillment to attach the card to", reg.order_id)
        log.info("payout %s tracked: %s", reg.order_id, status)
        return TrackReport(reg.order_id, status, summary, attached)

    def import_rows(self, rows: Iterable[tuple[int, Registration | InvalidField]]) -> ImportReport:
        """Track every good row; each bad one is reported as `line N: field: reason`.

        Rows are validated first, so a missing BILLING_CARD_DATA_KEY stops the import before
        any call to Juspay. Each row is its own transaction (each needs a gateway read).
        """
        report = ImportReport()
        good: list[tuple[int, Registration]] = []
        for number, row in rows:
            report.rows += 1
            if isinstance(row, InvalidField):
                report.errors.append(f"line {number}: {row}")
            else:
                good.append((number, row))
        if any(r.card is not None or r.sender_details for _, r in good):
            self._vault()
        for number, registration in good:
            try:
                self.track(registration)
            except InvalidField as problem:
                report.errors.append(f"line {number}: {problem}")
            except (ServiceError, GatewayError) as exc:
                report.errors.append(f"line {number}: order_id: {exc}")
            else:
                report.tracked += 1
        return report

    def _vault(self) -> CardVault:
        if self.vault is None:
            raise CardDataKeyMissing()
        return self.vault
