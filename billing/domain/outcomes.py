"""What a gateway answer means for a debit: the one classification table (SPEC §5).

    order status / rejection / payout failure
        -> Outcome: CHARGED | PENDING | FAILED_SOFT (retry per policy) | FAILED_HARD (never retry)
                    | UNKNOWN (reconcile by order status before anything else)

Juspay publishes order statuses but no list of which failure codes are worth a retry. The code
and keyword tables below are our reading of Juspay's API error codes, its UPI PSP codes (JPM*),
NPCI UPI response codes and ISO 8583 card response codes; each is an (interpretation) and this
module is the one place to change them. A code decides before a message keyword, and a hard
keyword before a soft one: retrying a hard failure annoys a customer who said no.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Outcome(StrEnum):
    CHARGED = "CHARGED"
    PENDING = "PENDING"
    FAILED_SOFT = "FAILED_SOFT"
    FAILED_HARD = "FAILED_HARD"
    UNKNOWN = "UNKNOWN"


class OrderStatus(StrEnum):
    NEW = "NEW"
    STARTED = "STARTED"
    CHARGED = "CHARGED"
    JUSPAY_DECLINED = "JUSPAY_DECLINED"
    PENDING_VBV = "PENDING_VBV"
    VBV_SUCCESSFUL = "VBV_SUCCESSFUL"
    AUTHORIZED = "AUTHORIZED"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    AUTHORIZATION_FAILED = "AUTHORIZATION_FAILED"
    AUTHORIZING = "AUTHORIZING"
    AUTO_REFUNDED = "AUTO_REFUNDED"


ORDER_STATUS_IDS: Mapping[int, OrderStatus] = MappingProxyType(
    {
        10: OrderStatus.NEW,
        20: OrderStatus.STARTED,
        21: OrderStatus.CHARGED,
        22: OrderStatus.JUSPAY_DECLINED,
        23: OrderStatus.PENDING_VBV,
        24: OrderStatus.VBV_SUCCESSFUL,
        25: OrderStatus.AUTHORIZED,
        26: OrderStatus.AUTHENTICATION_FAILED,
        27: OrderStatus.AUTHORIZATION_FAILED,
        28: OrderStatus.AUTHORIZING,
        36: OrderStatus.AUTO_REFUNDED,
    }
)

PENDING_STATUSES = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.STARTED,
        OrderStatus.PENDING_VBV,
        OrderStatus.VBV_SUCCESSFUL,
        OrderStatus.AUTHORIZING,
        # (interpretation) mandate debits are captured by Juspay; an AUTHORIZED order is waited
        # on until it reports CHARGED or a failure, never counted as money received.
        OrderStatus.AUTHORIZED,
    }
)
# Failures whose cause is usually the moment (funds, issuer), soft unless the code says otherwise.
SOFT_BY_DEFAULT_STATUSES = frozenset(
    {
        OrderStatus.AUTHORIZATION_FAILED,
        OrderStatus.AUTHENTICATION_FAILED,
        OrderStatus.AUTO_REFUNDED,
    }
)

# --- the tables (interpretation) --------------------------------------------------------------

SOFT_CODES = frozenset(
    {
        "Z9",  # NPCI: insufficient funds in the remitter account
        "Z7",  # NPCI: transaction frequency limit exceeded (passes with time)
        "U30",  # NPCI: debit has failed (bank temporarily not accepting)
        "51",  # ISO 8583: insufficient funds
        "61",  # ISO 8583: exceeds withdrawal amount limit
        "65",  # ISO 8583: exceeds withdrawal frequency limit
        "05",  # ISO 8583: do not honour (generic, retriable for recurring)
        "19",  # ISO 8583: re-enter transaction
        "91",  # ISO 8583 / NPCI: issuer or switch unavailable
        "92",  # ISO 8583: unable to route
        "96",  # ISO 8583 / NPCI: system malfunction
        "JPME",  # Juspay UPI: an execution is already in progress on the mandate
        "JP_851",  # Juspay: the pre-debit notification failed; a new order notifies again
    }
)
HARD_CODES = frozenset(
    {
        # Juspay UPI PSP: the mandate cannot be debited
        "JPMR",  # mandate revoked
        "JPMP",  # mandate paused
        "JPMC",  # mandate already completed
        "JPMD",  # mandate declined by payer
        "JPMX",  # mandate expired
        "JPMW",  # mandate still pending
        # Juspay API error codes: the request itself is wrong
        "INVALID_ACTION",  # e.g. recurring on a revoked mandate, max recurring exhausted
        "RESOURCE_NOT_FOUND",  # e.g. unknown mandate_id
        "INVALID_INPUT",
        "MISSING_MANDATORY_PARAMETER",
        "EXPIRED",  # e.g. mandate token expired
        "JP_852",  # Juspay: mandate not in ACTIVE state, or execution stopped by the merchant
        # NPCI UPI: the remitter account cannot be debited
        "YE",  # remitting account blocked / frozen
        "ZY",  # inactive or dormant account
        "XH",  # account does not exist
        "B3",  # transaction not permitted to the account
        # ISO 8583 card responses that no retry will change
        "04",  # pick up card
        "07",  # pick up card, special condition
        "14",  # invalid card number
        "15",  # no such issuer
        "41",  # lost card
        "43",  # stolen card
        "54",  # expired card
        "57",  # transaction not permitted to cardholder
        "62",  # restricted card
        "R0",  # Visa: stop payment order
        "R1",  # Visa: revocation of authorisation order
        "R3",  # Visa: revocation of all authorisation orders
    }
)
HARD_KEYWORDS = (
    "revoked",
    "revocation",
    "expired",
    "paused",
    "invalid mandate",
    "not active",
    "lost",
    "stolen",
    "blocked",
    "frozen",
    "dormant",
    "closed",
)
SOFT_KEYWORDS = (
    "insufficient",
    "timeout",
    "timed out",
    "unavailable",
    "try again",
    "temporar",
    "technical",
)
# 4xx answers to mandate execution that are not the customer's doing.
RATE_LIMIT_CODES = frozenset({"TOO_MANY_REQUESTS", "RATE_LIMITED", "RATE_LIMIT_EXCEEDED", "429"})
RATE_LIMIT_KEYWORDS = ("rate limit", "too many requests")
# (interpretation) An existing order under our id, or our own credentials refused: the order's
# fate is unknown or it was never created; reconcile by order status (and resend the same
# order_id only if Juspay says it does not exist) rather than fail the customer's cycle.
RECONCILE_CODES = frozenset(
    {
        "DUPLICATE_ORDER_ID",
        "DUPLICATE_REQUEST",
        "ACCESS_DENIED",
        "UNAUTHORIZED",
        "UNAUTHENTICATED",
        "BAD_ORIGIN",
    }
)

# Refusals that concern the mandate itself: the customer may have revoked or paused it at
# Juspay without a webhook reaching us. They say that the mandate cannot be debited, rarely
# what it became, so they trigger a status read (`check_status`) whose answer is recorded
# (SPEC §2, §5). Juspay's words: INVALID_ACTION ("recurring on revoked mandate"),
# "Mandate Not in Active State" / JP_852 (juspay-api.md §2, §4.3, §8), "Mandate is in PAUSED
# state. Recurring cannot be executed" (mandate execution page, SEA variant); JPM* are its UPI
# PSP codes for a mandate revoked, paused, completed, declined, expired or still pending.
MANDATE_REFUSAL_CODES = frozenset(
    {"INVALID_ACTION", "JP_852", "JPMR", "JPMP", "JPMC", "JPMD", "JPMX", "JPMW"}
)
# Checked only in messages that mention "mandate": a card's "expired" says nothing of the mandate.
MANDATE_REFUSAL_KEYWORDS = (
    "not in active state",
    "not active",
    "inactive",
    "cannot be executed",
    "revoked",
    "cancelled",
    "expired",
    "completed",
    "paused",
    "suspended",
)
# ... except JP_852 after `cancel_recurring_transaction`: the merchant stopped that execution
# ("Transaction was declined by merchant.", juspay-api.md §4.6); the mandate is fine.
NOT_ABOUT_THE_MANDATE = ("declined by merchant",)

PAYOUT_HARD_CODES = frozenset(
    {
        "INVALID_CARD",
        "INVALID_CARD_NUMBER",
        "CARD_EXPIRED",
        "EXPIRED_CARD",
        "INVALID_BENEFICIARY",
        "INVALID_BENEFICIARY_DETAILS",
        "BENEFICIARY_NOT_FOUND",
        "INVALID_ACCOUNT",
        "ACCOUNT_CLOSED",
        "ACCOUNT_BLOCKED",
        "CARD_BLOCKED",
        "LOST_CARD",
        "STOLEN_CARD",
        "INVALID_VPA",
        "INVALID_IFSC",
        # ISO 8583 answers a card rail gives about the card itself (Juspay's payout sample
        # `payout-api/order-status/response.json` shows JUSPAY_VISADIRECT answering "57")
        "04",  # pick up card
        "07",  # pick up card, special condition
        "14",  # invalid card number
        "15",  # no such issuer
        "41",  # lost card
        "43",  # stolen card
        "54",  # expired card
        "57",  # transaction not permitted to cardholder
        "62",  # restricted card
    }
)
# Any payout failure code containing one of these is about the card or beneficiary itself.
PAYOUT_HARD_MARKERS = (
    "INVALID_CARD",
    "INVALID_BENEFICIARY",
    "EXPIRED",
    "LOST",
    "STOLEN",
    "BLOCKED",
)


# --- classification ---------------------------------------------------------------------------


def status_from_id(status_id: int | str) -> OrderStatus | None:
    """Juspay's numeric `status_id` (an int, or a string in some samples); None if unknown."""
    if isinstance(status_id, str):
        text = status_id.strip()
        if not (text.isascii() and text.isdigit()):
            return None
        status_id = int(text)
    return ORDER_STATUS_IDS.get(status_id)


def classify_order(
    status: str, *, error_code: str | None = None, error_message: str | None = None
) -> Outcome:
    """The outcome of an order status (`order.status`, the one authority, SPEC §6)."""
    try:
        order_status = OrderStatus(status.strip().upper())
    except ValueError:
        return Outcome.UNKNOWN
    if order_status is OrderStatus.CHARGED:
        return Outcome.CHARGED
    if order_status in PENDING_STATUSES:
        return Outcome.PENDING
    if order_status in SOFT_BY_DEFAULT_STATUSES:
        return _failure(error_code, error_message, default=Outcome.FAILED_SOFT)
    # JUSPAY_DECLINED: Juspay refused the request itself (bad input) unless the code says soft.
    return _failure(error_code, error_message, default=Outcome.FAILED_HARD)


def classify_rejection(error_code: str | None, error_message: str | None = None) -> Outcome:
    """The outcome of a 4xx answer to mandate execution: hard unless temporary or ours."""
    code = _norm(error_code)
    message = (error_message or "").lower()
    if code in RECONCILE_CODES:
        return Outcome.UNKNOWN
    if code in RATE_LIMIT_CODES or any(word in message for word in RATE_LIMIT_KEYWORDS):
        return Outcome.FAILED_SOFT
    return _failure(error_code, error_message, default=Outcome.FAILED_HARD)


def concerns_mandate(error_code: str | None, error_message: str | None) -> bool:
    """Does this refusal say the mandate itself cannot be debited (revoked, paused, ...)?"""
    message = (error_message or "").lower()
    if any(phrase in message for phrase in NOT_ABOUT_THE_MANDATE):
        return False
    if _norm(error_code) in MANDATE_REFUSAL_CODES:
        return True
    return "mandate" in message and any(word in message for word in MANDATE_REFUSAL_KEYWORDS)


def juspay_still_retrying(
    outcome: Outcome, retries_done_count: int | None, allowed_retry: int | None
) -> bool:
    """Is Juspay still retrying this order silently? *(interpretation)*

    Juspay's `additional_info.mandate_retry_info` is `{is_retried_order, retries_done_count,
    allowed_retry, is_business_retried, is_technical_retried}` (juspay-api.md §3); Juspay does
    not document what it means. Ours: it is still retrying while the order is not final (not
    charged, not a failure no retry changes: our hard codes) and fewer retries were done than
    are allowed. Counts missing or unreadable: not retrying, so our own dunning runs; before it
    sends a new order it reads this one's status again (SPEC §5), so a retry Juspay did start
    shows as pending and is waited on.
    """
    if outcome in (Outcome.CHARGED, Outcome.FAILED_HARD):
        return False
    if retries_done_count is None or allowed_retry is None:
        return False
    return retries_done_count < allowed_retry


def payout_failure_retriable(failure_code: str | None, is_retriable: bool | None) -> bool:
    """Whether a failed PLAIN_CARD fulfillment may be retried through the Attempt API (SPEC §8)."""
    if is_retriable is False:
        return False
    code = _norm(failure_code).replace(" ", "_").replace("-", "_")
    if code in PAYOUT_HARD_CODES:
        return False
    return not any(marker in code for marker in PAYOUT_HARD_MARKERS)


def _failure(error_code: str | None, error_message: str | None, *, default: Outcome) -> Outcome:
    code = _norm(error_code)
    if code in HARD_CODES:
        return Outcome.FAILED_HARD
    if code in SOFT_CODES:
        return Outcome.FAILED_SOFT
    message = (error_message or "").lower()
    if any(word in message for word in HARD_KEYWORDS):
        return Outcome.FAILED_HARD
    if any(word in message for word in SOFT_KEYWORDS):
        return Outcome.FAILED_SOFT
    return default


def _norm(code: str | None) -> str:
    return (code or "").strip().upper()
