"""Payouts: retries of failed PLAIN_CARD fulfillments through the encrypted Attempt API (SPEC §8).

A payout order is registered from Juspay's status with the card sealed at rest; a failed
PLAIN_CARD fulfillment is attempted again, one attempt in flight at a time, each recorded
before it is sent, and its outcome is read from the order's status or a payout webhook. This
package shares nothing with debits: a payout never moves a debit and a debit never a payout.

    service.Payouts               the object the entrypoints hold: track, refresh, attempt, run_due
    service.resume                lift a 401 halt, re-arm stopped fulfillments
    service.describe              `billing payouts list / show`
    registry.PayoutRegistry       `billing payouts track / import`
    attempts.PayoutAttempts       one Attempt API call: claim -> record -> send -> settle
    events.apply_payout_event     a stored payout webhook applied like a status read
    cards.open_card               card data opened in memory for one attempt
"""
