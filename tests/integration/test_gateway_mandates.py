"""Client against sandbox: pre-debit notifications, scheduled executions, mandate commands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from billing.gateway import JuspayClient, Rejected
from billing.sandbox.faults import Fault
from billing.sandbox.server import SandboxServer

CUSTOMER = "cst_2233"
T0 = datetime(2027, 3, 1, 4, 30, tzinfo=UTC)  # 10:00 in India


@pytest.fixture
def upi(sandbox: SandboxServer) -> SandboxServer:
    sandbox.state.clock.set(T0)
    sandbox.state.seed_mandate(
        mandate_id="upi1",
        customer_id=CUSTOMER,
        payment_method_type="UPI",
        max_amount="1000",
        frequency="MONTHLY",
        rule_type="ON",
        rule_value=1,
    )
    sandbox.state.seed_mandate(mandate_id="upi2", customer_id=CUSTOMER, payment_method_type="UPI")
    return sandbox


def execute(client: JuspayClient, order_id: str, **extra: object):
    options: dict[str, object] = {
        "order_id": order_id,
        "amount": Decimal("399"),
        "customer_id": CUSTOMER,
        "mandate_id": "upi1",
    }
    options.update(extra)
    return client.execute_mandate(**options)  # type: ignore[arg-type]


def notify(client: JuspayClient, reference: str, *, amount: str = "399", at: datetime):
    return client.send_pre_debit_notification(
        mandate_id="upi1",
        customer_id=CUSTOMER,
        object_reference_id=reference,
        amount=Decimal(amount),
        txn_date=at,
        description="March subscription",
    )


def test_a_scheduled_upi_debit_gets_juspays_own_notification_and_waits_for_its_day(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    execution = T0 + timedelta(hours=26)
    assert execute(juspay_client, "ord1", execution_date=execution).status == "PENDING_VBV"
    pdn = juspay_client.notification_status("jp_ord1", customer_id=CUSTOMER)
    assert (pdn.status, pdn.amount, pdn.txn_date) == ("SUCCESS", Decimal("399.00"), execution)
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "PENDING_VBV"
    # time moves through the control API, as an out-of-process test would move it
    httpx.post(f"{upi.url}/sandbox/clock", json={"advance_seconds": 26 * 3600}).raise_for_status()
    assert juspay_client.order_status("ord1", customer_id=CUSTOMER).status == "CHARGED"
    assert len(upi.state.charges()) == 1


def test_a_failed_juspay_notification_means_the_debit_did_not_happen(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    upi.state.faults.add(Fault(kind="fail", endpoint="pdn", key="ord1"))
    execute(juspay_client, "ord1", execution_date=T0 + timedelta(hours=26))
    assert juspay_client.notification_status("jp_ord1", customer_id=CUSTOMER).status == "FAILURE"
    status = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    # juspay-api.md §2: JP_851 "PDN Failed. <reason>", reported as the order's bank_error_code
    assert (status.status, status.error_code) == ("AUTHORIZATION_FAILED", "JP_851")
    assert status.error_message is not None
    assert status.error_message.startswith("PDN Failed.")
    assert upi.state.charges() == []


def test_the_merchant_notification_lifecycle_then_an_execution_24h_later(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    debit_at = T0 + timedelta(hours=25)
    sent = notify(juspay_client, "pdn1", at=debit_at)
    assert (sent.status, sent.object_reference_id, sent.mandate_id) == ("CREATED", "pdn1", "upi1")
    assert (sent.amount, sent.txn_date) == (Decimal("399.00"), debit_at)
    polled = [juspay_client.notification_status("pdn1", customer_id=CUSTOMER) for _ in range(3)]
    assert [n.status for n in polled] == ["PENDING", "SUCCESS", "SUCCESS"]

    too_soon = T0 + timedelta(hours=23)  # same day in India, but within 24 h of the success
    with pytest.raises(Rejected) as early:
        execute(juspay_client, "ord1", notification_id="pdn1", execution_date=too_soon)
    assert early.value.code == "EXECUTION_TOO_EARLY"
    upi.state.clock.advance(timedelta(hours=23, minutes=59))
    with pytest.raises(Rejected, match="EXECUTION_TOO_EARLY"):
        execute(juspay_client, "ord2", notification_id="pdn1")

    upi.state.clock.set(debit_at)
    with pytest.raises(Rejected, match="NOTIFICATION_MISMATCH"):
        execute(juspay_client, "ord3", notification_id="pdn1", amount=Decimal("398"))
    result = execute(juspay_client, "ord4", notification_id="pdn1", execution_date=debit_at)
    assert result.status == "PENDING_VBV"
    statuses = [juspay_client.order_status("ord4", customer_id=CUSTOMER).status for _ in range(2)]
    assert statuses == ["PENDING_VBV", "CHARGED"]
    assert [e["order_id"] for e in upi.state.charges()] == ["ord4"]


def test_a_notification_can_fail_and_cannot_be_reused_for_execution(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    upi.state.faults.add(Fault(kind="fail", endpoint="mandates", key="pdn2"))
    notify(juspay_client, "pdn2", at=T0 + timedelta(hours=25))
    statuses = [juspay_client.notification_status("pdn2", customer_id=CUSTOMER) for _ in range(2)]
    assert statuses[-1].status == "FAILURE"
    upi.state.clock.advance(timedelta(hours=25))
    with pytest.raises(Rejected, match="NOTIFICATION_NOT_SUCCESSFUL"):
        execute(juspay_client, "ord1", notification_id="pdn2")
    with pytest.raises(Rejected, match="DUPLICATE_OBJECT_REFERENCE_ID"):
        notify(juspay_client, "pdn2", at=T0 + timedelta(hours=50))


def test_a_pending_fault_keeps_a_notification_pending_whatever_the_time(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    upi.state.faults.add(Fault(kind="pending", endpoint="mandates", key="pdn3", polls=5))
    notify(juspay_client, "pdn3", at=T0 + timedelta(hours=25))
    upi.state.clock.advance(timedelta(days=2))  # far past notification_seconds
    statuses = [juspay_client.notification_status("pdn3", customer_id=CUSTOMER) for _ in range(5)]
    assert [n.status for n in statuses] == ["PENDING"] * 4 + ["SUCCESS"]


def test_check_status_and_the_customer_list(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    info = juspay_client.mandate_status("upi1", customer_id=CUSTOMER)
    assert (info.mandate_id, info.status, info.customer_id) == ("upi1", "ACTIVE", CUSTOMER)
    assert (info.max_amount, info.payment_method_type) == (Decimal("1000.00"), "UPI")
    assert (info.frequency, info.rule_type, info.rule_value) == ("MONTHLY", "ON", 1)
    assert info.mandate_type == "EMANDATE"
    listed = juspay_client.customer_mandates(CUSTOMER)
    assert sorted((m.mandate_id, m.status) for m in listed) == [
        ("upi1", "ACTIVE"),
        ("upi2", "ACTIVE"),
    ]


def test_the_routing_id_must_be_the_customers(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    with pytest.raises(Rejected, match="INVALID_ROUTING_ID"):
        juspay_client.mandate_status("upi1", customer_id="someone_else")


def test_pause_resume_and_revoke(upi: SandboxServer, juspay_client: JuspayClient) -> None:
    paused = juspay_client.pause_mandate(
        "upi1",
        customer_id=CUSTOMER,
        pause_start_date=date(2027, 3, 1),
        pause_end_date=date(2027, 3, 10),
    )
    assert paused.status == "PAUSED"
    with pytest.raises(Rejected, match="INVALID_ACTION"):
        execute(juspay_client, "ord1")
    with pytest.raises(Rejected, match="invalid_request_error"):
        juspay_client.pause_mandate("upi1", customer_id=CUSTOMER, pause_start_date=date(2027, 3, 1))
    resumed = juspay_client.resume_mandate("upi1", customer_id=CUSTOMER, resume_date=T0.date())
    assert resumed.status == "ACTIVE"
    revoked = juspay_client.revoke_mandate("upi1", customer_id=CUSTOMER)
    assert revoked.status == "REVOKED"
    with pytest.raises(Rejected) as again:
        juspay_client.revoke_mandate("upi1", customer_id=CUSTOMER)
    assert again.value.code == "invalid_request_error"
    assert "already REVOKED" in again.value.message


def test_a_scheduled_pause_starts_and_ends_on_the_sandbox_clock(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    scheduled = juspay_client.pause_mandate(
        "upi1",
        customer_id=CUSTOMER,
        pause_start_date=date(2027, 3, 5),
        pause_end_date=date(2027, 3, 10),
    )
    assert scheduled.status == "ACTIVE"
    upi.state.clock.set(datetime(2027, 3, 5, 1, tzinfo=UTC))
    assert juspay_client.mandate_status("upi1", customer_id=CUSTOMER).status == "PAUSED"
    upi.state.clock.set(datetime(2027, 3, 10, 1, tzinfo=UTC))
    assert juspay_client.mandate_status("upi1", customer_id=CUSTOMER).status == "ACTIVE"


def test_a_revoked_mandate_fails_its_scheduled_debit(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    execute(juspay_client, "ord1", execution_date=T0 + timedelta(hours=26))
    juspay_client.revoke_mandate("upi1", customer_id=CUSTOMER)
    upi.state.clock.advance(timedelta(hours=27))
    status = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    # juspay-api.md §2: JP_852 "Mandate is not in active State", as the order's bank_error_code
    assert (status.status, status.error_code) == ("JUSPAY_DECLINED", "JP_852")
    assert status.error_message == "Mandate is not in active State"
    assert upi.state.charges() == []


def test_a_scheduled_execution_can_be_cancelled_until_30_minutes_before(
    upi: SandboxServer, juspay_client: JuspayClient
) -> None:
    execute(juspay_client, "ord1", execution_date=T0 + timedelta(hours=26))
    assert (
        juspay_client.cancel_recurring_transaction("upi1", customer_id=CUSTOMER, order_id="ord1")
        is None
    )
    status = juspay_client.order_status("ord1", customer_id=CUSTOMER)
    # juspay-api.md §4.6: "After a stop the order becomes JUSPAY_DECLINED (22) with
    # bank_error_code JP_852 'Transaction was declined by merchant.'"
    assert (status.status, status.status_id) == ("JUSPAY_DECLINED", 22)
    assert (status.error_code, status.error_message) == (
        "JP_852",
        "Transaction was declined by merchant.",
    )

    execute(juspay_client, "ord2", mandate_id="upi2", execution_date=T0 + timedelta(minutes=29))
    with pytest.raises(Rejected, match="30 minutes"):
        juspay_client.cancel_recurring_transaction("upi2", customer_id=CUSTOMER, order_id="ord2")
    upi.state.clock.advance(timedelta(minutes=30))  # Juspay's own PDN still needs its 24 h
    assert juspay_client.order_status("ord2", customer_id=CUSTOMER).status == "PENDING_VBV"
    upi.state.clock.advance(timedelta(hours=24))
    assert juspay_client.order_status("ord2", customer_id=CUSTOMER).status == "CHARGED"
    assert [e["order_id"] for e in upi.state.charges()] == ["ord2"]
