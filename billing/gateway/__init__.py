"""The Juspay gateway: the only place that speaks HTTP to Juspay.

juspay.py   JuspayClient: one method per Juspay API, typed results
wire.py     the httpx client, headers, logging; every failure goes to errors.failure()
errors.py   the error tree (Rejected / Unavailable / OutcomeUnknown) and its one mapping
results.py  frozen result types and the parsers the webhook receiver reuses (EC)
payouts.py  the payout order, fulfillment, transaction and payout webhook shapes
loose.py    readers for loosely typed JSON ("21" or 21, "true" or true, "1" or 1.0)
jwe.py      AttemptEncrypter, the only jwcrypto import here
cards.py    CardNumber / CardToken, which never show themselves
"""

from billing.gateway.cards import CardNumber, CardToken
from billing.gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    MalformedResponse,
    OrderNotFound,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.gateway.juspay import JuspayClient
from billing.gateway.jwe import AttemptEncrypter, KeyLoadError
from billing.gateway.payouts import (
    FulfillmentResult,
    PayoutEventContent,
    PayoutOrderResult,
    PayoutOrderSummary,
    PayoutTransaction,
    parse_payout_event,
    parse_payout_order,
)
from billing.gateway.results import (
    ExecutionResult,
    MandateInfo,
    MandateRetryInfo,
    NotificationResult,
    OrderStatusResult,
    parse_mandate,
    parse_notification,
    parse_order,
)

__all__ = [
    "AttemptEncrypter",
    "AuthenticationFailed",
    "CardNumber",
    "CardToken",
    "ExecutionResult",
    "FulfillmentResult",
    "GatewayError",
    "JuspayClient",
    "KeyLoadError",
    "MalformedResponse",
    "MandateInfo",
    "MandateRetryInfo",
    "NotificationResult",
    "OrderNotFound",
    "OrderStatusResult",
    "OutcomeUnknown",
    "PayoutEventContent",
    "PayoutOrderResult",
    "PayoutOrderSummary",
    "PayoutTransaction",
    "Rejected",
    "Unavailable",
    "parse_mandate",
    "parse_notification",
    "parse_order",
    "parse_payout_event",
    "parse_payout_order",
]
