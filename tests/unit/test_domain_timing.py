"""When to notify and when to execute, per notification flow (SPEC §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.domain.timing import (
    PDN_MIN_NOTICE,
    Flow,
    earliest_execution_after_pdn,
    execution_due_at,
    merchant_execution_at,
    pdn_due_at,
)

PLANNED = datetime(2027, 3, 10, 4, 30, tzinfo=UTC)  # 10:00 IST
LEAD = timedelta(hours=26)


def test_flow_values_are_the_settings_spelling() -> None:
    assert [f.value for f in Flow] == ["juspay", "merchant", "none"]
    assert timedelta(hours=24) == PDN_MIN_NOTICE


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (Flow.JUSPAY, PLANNED - LEAD),
        (Flow.MERCHANT, PLANNED),
        (Flow.NONE, PLANNED),
    ],
)
def test_execution_due_at(flow: Flow, expected: datetime) -> None:
    assert execution_due_at(flow, PLANNED, LEAD) == expected


def test_the_merchant_flow_sends_its_pdn_ahead_and_executes_24h_after_success() -> None:
    assert pdn_due_at(PLANNED, LEAD) == PLANNED - LEAD
    on_time = PLANNED - timedelta(hours=25)
    assert earliest_execution_after_pdn(on_time) == PLANNED - timedelta(hours=1)
    assert merchant_execution_at(PLANNED, on_time) == PLANNED
    late = PLANNED - timedelta(hours=20)
    assert merchant_execution_at(PLANNED, late) == PLANNED + timedelta(hours=4)


def test_naive_instants_are_refused() -> None:
    naive = datetime(2027, 3, 10, 4, 30)
    with pytest.raises(ValueError, match="aware"):
        execution_due_at(Flow.JUSPAY, naive, LEAD)
    with pytest.raises(ValueError, match="aware"):
        merchant_execution_at(PLANNED, naive)
