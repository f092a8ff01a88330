"""The merchant's CVV provider for the e2e payout test (BILLING_CVV_PROVIDER=
tests.e2e.merchant_cvv:provide), imported by the worker subprocess: nothing else in it."""

from __future__ import annotations

CVV = "8416"


def provide(*, order_id: str, fulfillment_id: str) -> str | None:
    return CVV
