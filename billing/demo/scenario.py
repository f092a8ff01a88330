"""The demo's scenario: a merchant's book of mandates and what goes wrong in real life.

The book mixes cards, UPI and net banking, monthly and weekly, fixed and variable amounts (one
VARIABLE mandate without a plan amount, never debited). The fault plan makes the sandbox answer
like Juspay on a bad day: insufficient funds, a hard decline, a timeout after the charge, a
dropped connection, a failed pre-debit notification, slow net-banking settlement. Both the
simulated-clock demo and the live one play this scenario.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer

API_KEY = "demo_api_key"
MERCHANT_ID = "demo_merchant"


class SimulatedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def merchant_book(start: datetime) -> list[dict[str, Any]]:
    """A merchant's book: cards, UPI and net banking, monthly and weekly, fixed and variable."""
    day = start.date().isoformat()
    rows: list[dict[str, Any]] = []

    def add(prefix: str, count: int, **terms: Any) -> None:
        for i in range(count):
            mandate_id = f"{prefix}{i:02d}"
            rows.append(
                {
                    "customer_id": f"cst_{mandate_id}",
                    "mandate_id": mandate_id,
                    "currency": "INR",
                    "start_date": day,
                    "end_date": "",
                    "status": "ACTIVE",
                    "rule_type": "",
                    "rule_value": "",
                    "amount": "",
                    **{k: (v(i) if callable(v) else v) for k, v in terms.items()},
                }
            )

    add(
        "card",
        20,
        frequency="MONTHLY",
        rule_type="AFTER",
        rule_value=lambda i: 1 + i % 28,
        amount_rule="FIXED",
        max_amount="499",
        payment_method_type="CARD",
    )
    add(
        "upi",
        15,
        frequency="MONTHLY",
        rule_type="ON",
        rule_value=lambda i: 3 + i,
        amount_rule="VARIABLE",
        max_amount="2000",
        amount=lambda i: f"{199 + 50 * i}.00",
        payment_method_type="UPI",
    )
    add(
        "wk",
        5,
        frequency="WEEKLY",
        rule_type="AFTER",
        rule_value=lambda i: 1 + i,
        amount_rule="FIXED",
        max_amount="99",
        payment_method_type="UPI",
    )
    add(
        "nb",
        10,
        frequency="MONTHLY",
        rule_type="ON",
        rule_value=lambda i: 5 + i,
        amount_rule="FIXED",
        max_amount="1500",
        payment_method_type="NB",
    )
    add(
        "var",
        3,
        frequency="MONTHLY",
        rule_type="ON",
        rule_value=10,
        amount_rule="VARIABLE",
        max_amount="800",
        payment_method_type="UPI",
    )  # no plan amount: never debited
    return rows


def inject_faults(app_sandbox: SandboxServer) -> None:
    add = app_sandbox.state.faults.add
    for key in ("card01", "card02", "card03"):
        add(
            Fault.from_spec(
                {
                    "kind": "fail",
                    "endpoint": "txns",
                    "key": key,
                    "error_code": "51",
                    "error_message": "Insufficient funds",
                }
            )
        )
    add(
        Fault.from_spec(
            {
                "kind": "fail",
                "endpoint": "txns",
                "key": "card04",
                "error_code": "14",
                "error_message": "Invalid card number",
                "times": 5,
            }
        )
    )
    add(
        Fault.from_spec(
            {"kind": "timeout_after", "endpoint": "txns", "key": "card05", "seconds": 1.5}
        )
    )
    add(Fault.from_spec({"kind": "drop_before", "endpoint": "txns", "key": "card06"}))
    add(Fault.from_spec({"kind": "fail", "endpoint": "pdn", "key": "upi02"}))
    for i in range(10):
        add(
            Fault.from_spec(
                {"kind": "pending", "endpoint": "txns", "key": f"nb{i:02d}", "polls": 4 + i}
            )
        )
