"""The sandbox's records and its own reading of Juspay's wire values (no code shared with the
client: a misreading must not hide in both)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Order status -> status_id, from Juspay's status table.
STATUS_IDS = {
    "NEW": 10,
    "STARTED": 20,
    "CHARGED": 21,
    "JUSPAY_DECLINED": 22,
    "PENDING_VBV": 23,
    "VBV_SUCCESSFUL": 24,
    "AUTHORIZED": 25,
    "AUTHENTICATION_FAILED": 26,
    "AUTHORIZATION_FAILED": 27,
    "AUTHORIZING": 28,
    "AUTO_REFUNDED": 36,
}
PENDING_STATUSES = frozenset({"NEW", "STARTED", "PENDING_VBV", "AUTHORIZING", "VBV_SUCCESSFUL"})
MANDATE_STATUSES = frozenset(
    {"CREATED", "PENDING", "ACTIVE", "PAUSED", "REVOKED", "FAILURE", "EXPIRED"}
)
METHOD_TYPES = frozenset({"UPI", "CARD", "NB", "WALLET"})
_MONEY = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,21}$")


class Refusal(Exception):  # noqa: N818 (a control-flow signal carrying the answer)
    """Raised inside an operation to answer at once with `answer`."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    text: bool = False


def ec_error(
    code: str, message: str, *, status: int = 400, word: str = "Invalid Request"
) -> Answer:
    return Answer(
        status,
        {"status": word, "error_code": code, "error_message": message, "user_message": message},
    )


def mandate_not_active(status: str) -> Refusal:
    """Juspay's 400 for a call on a mandate that is not ACTIVE: the body of its mandate
    execution page (SEA variant: "Mandate not in active state") with the `error_info.code` of its
    API error catalogue (INVALID_ACTION: "recurring on revoked mandate"), juspay-api.md §8."""
    message = f"Mandate is in {status} state. Recurring cannot be executed"
    body = {
        "status": "invalid_request_error",
        "error_message": message,
        "error_code": "invalid_request",
        "error_info": {
            "user_message": "Mandate Not in Active State",
            "developer_message": message,
            "code": "INVALID_ACTION",
            "category": "USER_ERROR",
        },
    }
    return Refusal(Answer(400, body))


def missing(name: str) -> Refusal:
    return Refusal(ec_error("MISSING_FIELD", f"Mandatory field missing: {name}"))


def payout_error(code: str, message: str, user_message: str, *, status: int = 400) -> Answer:
    body = {"error": True, "errorCode": code, "errorMessage": message, "userMessage": user_message}
    return Answer(status, body)


def money(text: str, name: str) -> Decimal:
    """A positive amount with at most two decimals, as Juspay accepts it ("399", "399.00")."""
    if not _MONEY.match(text.strip()):
        raise Refusal(ec_error("INVALID_AMOUNT", f"Invalid amount for {name}: {text!r}"))
    value = Decimal(text.strip())
    if value <= 0:
        raise Refusal(ec_error("INVALID_AMOUNT", f"{name} must be greater than 0"))
    return value.quantize(Decimal("0.01"))


def valid_order_id(order_id: str) -> str:
    if not _ORDER_ID.match(order_id):
        raise Refusal(ec_error("INVALID_ORDER_ID", "order_id: at most 21 of [A-Za-z0-9_-]"))
    return order_id


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


@dataclass
class Mandate:
    mandate_id: str
    customer_id: str
    status: str = "ACTIVE"
    max_amount: Decimal = Decimal("5000.00")
    amount_rule: str = "VARIABLE"
    payment_method_type: str = "UPI"
    payment_method: str | None = None
    frequency: str = "ASPRESENTED"
    rule_type: str | None = None
    rule_value: int | None = None
    currency: str = "INR"
    start_date: int | None = None  # epoch seconds, as Juspay sends them
    end_date: int | None = None
    mandate_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    pause_start: datetime | None = None
    pause_end: datetime | None = None
    resume_at: datetime | None = None
    activated_at: datetime | None = None

    @property
    def mandate_type(self) -> str:
        return "MANDATE" if self.payment_method_type == "CARD" else "EMANDATE"


@dataclass
class Order:
    order_id: str
    mandate_id: str
    customer_id: str
    amount: Decimal
    currency: str
    status: str
    created_at: datetime
    payment_method_type: str
    txn_uuid: str = field(default_factory=lambda: new_id("eul"))
    execution_at: datetime | None = None
    notification_id: str | None = None
    pdn_reference: str | None = None  # the PDN Juspay sends itself for this order
    polls: int = 0
    settle_polls: int | None = None
    settle_at: datetime | None = None
    outcome: str = "CHARGED"
    outcome_code: str | None = None
    outcome_message: str | None = None
    bank_error_code: str | None = None
    bank_error_message: str | None = None
    retry_plan: tuple[int, str] | None = None  # silent retry: (polls, final status) when it fails
    retry_polls: int | None = None  # polls left before the silent retry's final outcome
    retry_allowed: int = 4  # Juspay's silent retries allowed on this order (allowed_retry)
    retry_info: dict[str, Any] | None = None  # additional_info.mandate_retry_info, as sent
    txns: int = 1  # transactions on the order: a retry is a new one (`<merchant>-<order>-<n>`)
    settled_at: datetime | None = None


@dataclass
class Notification:
    object_reference_id: str
    mandate_id: str
    customer_id: str
    amount: Decimal
    txn_date: int
    description: str
    created_at: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4().int % 10**9))
    status: str = "CREATED"
    updated_at: datetime | None = None
    polls: int = 0
    settle_polls: int = 2
    outcome: str = "SUCCESS"
    by_juspay_for: str | None = None  # the order id when Juspay sent it itself
    succeeded_at: datetime | None = None
    settle_by_time: bool = True  # False: a pending fault, settled by polls only (or never)


@dataclass
class PayoutTxn:
    """One try of a fulfillment at its rail (`transactions[]`, juspay-api.md §6.2)."""

    ref: str  # transactionRef (also gatewayRefId)
    id: str  # `<fulfillment id>-t<n>`, as FULFILLMENT_TXN webhooks show it
    status: str  # INITIATED | SUCCESS | FAILURE
    method: str  # fulfillmentMethod: the rail
    amount: Decimal
    created_at: datetime
    updated_at: datetime
    attempted: bool = False  # made by the Attempt API
    response_code: str | None = None
    response_message: str | None = None
    response_description: str | None = None
    outcome: str = "SUCCESS"  # what it will end as (sandbox internals, like the fields below)
    outcome_code: str | None = None
    outcome_description: str | None = None
    settle_polls: int | None = None


@dataclass
class QueuedAttempt:
    """An attempt Juspay ACKed but has not taken up yet (fault `queued`): until `due`, the
    fulfillment shows what it showed before it."""

    due: datetime
    outcome: str
    outcome_code: str | None
    outcome_description: str | None
    settle_polls: int | None


@dataclass
class Fulfillment:
    id: str
    order_id: str
    amount: Decimal
    beneficiary_type: str  # beneficiaryDetails.type: PLAIN_CARD, CARD, ACCOUNT_IFSC, UPI_ID ...
    beneficiary_details: dict[str, Any]  # as Juspay shows them: a card only as last4ofCard
    preferred_methods: list[str]
    additional_info: dict[str, Any]
    created_at: datetime
    status: str = "CREATED"
    status_updated_at: datetime | None = None
    updated_at: datetime | None = None
    udfs: dict[str, str] = field(default_factory=dict)
    transactions: list[PayoutTxn] = field(default_factory=list)
    queued: list[QueuedAttempt] = field(default_factory=list)
    polls: int = 0  # status reads since its latest transaction started

    @property
    def rail(self) -> str:
        return self.preferred_methods[0] if self.preferred_methods else "DUMMY_IMPS"

    @property
    def is_retriable(self) -> bool | None:
        value = self.additional_info.get("isRetriable")
        return value if isinstance(value, bool) else None


@dataclass
class PayoutOrder:
    order_id: str
    juspay_id: str  # Juspay's own id of the order (`info.id` in ORDER webhooks)
    customer_id: str
    created_at: datetime
    updated_at: datetime
    fulfillments: list[Fulfillment] = field(default_factory=list)
    udfs: dict[str, str] = field(default_factory=dict)

    @property
    def amount(self) -> Decimal:
        return sum((f.amount for f in self.fulfillments), Decimal("0.00"))

    @property
    def status(self) -> str:
        """Juspay's payout order status, derived from the fulfillments *(interpretation)*."""
        states = {f.status for f in self.fulfillments}
        if not states or states <= {"CREATED"}:
            return "READY_FOR_FULFILLMENT"
        if states <= {"SUCCESS"}:
            return "FULFILLMENTS_SUCCESSFUL"
        if "MANUAL_REVIEW" in states:
            return "FULFILLMENTS_MANUAL_REVIEW"
        if states & {"PENDING", "INITIATED", "CREATED"}:
            return "FULFILLMENTS_SCHEDULED"
        if states <= {"CANCELLED"}:
            return "FULFILLMENTS_CANCELLED"
        if "SUCCESS" in states:
            return "FULFILLED_PARTIALLY"
        return "FULFILLMENTS_FAILURE"


@dataclass
class Attempt:
    id: str
    order_id: str
    fulfillment_id: str
    at: datetime
    header: dict[str, Any]
    kid: str
    sid: str
    signed: bool
    payload: str  # the compact JWE as received
    plaintext: dict[str, Any]  # test double only: visible through the control API, never logged
