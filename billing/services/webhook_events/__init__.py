"""Stored webhook events: store once, process once, sweep what was left behind (SPEC §7).

    RECEIVED --process--> PROCESSED | IGNORED   the event did something / had nothing to do
                      '-> UNMATCHED            it could not be matched exactly (Juspay's PDN
                                               failing for no pending order): changed nothing,
                                               kept for review; replay by CLI
        |  a handler raised: stays RECEIVED (attempts + 1, last_error); swept again later
        '--> POISONED  after MAX_ATTEMPTS failures, or at once when its content cannot be used
                       (terms that do not validate): never retried automatically; replay by CLI

content.py     the event names billing acts on and their typed content (pure; the receiver's
               422 and the processing read content through the same function)
inbox.py       storing (unique per kind and id), the sweeper, listing and finding for support
processing.py  claiming (attempts as a version, `claimed_at` as a lease) and the handlers
"""

from billing.services.webhook_events.content import (
    EC,
    MANDATE_EVENTS,
    NOTIFICATION_EVENTS,
    ORDER_EVENTS,
    PAYOUT,
    PAYOUT_LABELS,
    EventContent,
    UnusableEventError,
    read_content,
    read_payout_content,
)
from billing.services.webhook_events.inbox import (
    CLAIM_LEASE,
    IGNORED,
    POISONED,
    PROCESSED,
    RECEIVED,
    SWEEP_AFTER,
    UNMATCHED,
    Stored,
    find_event,
    list_events,
    store_event,
    sweep_unprocessed,
)
from billing.services.webhook_events.processing import (
    MAX_ATTEMPTS,
    Handled,
    WebhookEvents,
    payout_handler,
    process_pending,
)

__all__ = [
    "CLAIM_LEASE",
    "EC",
    "IGNORED",
    "MANDATE_EVENTS",
    "MAX_ATTEMPTS",
    "NOTIFICATION_EVENTS",
    "ORDER_EVENTS",
    "PAYOUT",
    "PAYOUT_LABELS",
    "POISONED",
    "PROCESSED",
    "RECEIVED",
    "SWEEP_AFTER",
    "UNMATCHED",
    "EventContent",
    "Handled",
    "Stored",
    "UnusableEventError",
    "WebhookEvents",
    "find_event",
    "list_events",
    "payout_handler",
    "process_pending",
    "read_content",
    "read_payout_content",
    "store_event",
    "sweep_unprocessed",
]
