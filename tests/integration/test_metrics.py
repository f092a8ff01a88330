"""/metrics on the webhook receiver: scraped before and after ticks, the counters move with
what happened (debits by state, gateway calls by endpoint) and the gauges follow the backlog."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from starlette.testclient import TestClient

from billing.store import debits as store
from billing.store.models import Debit
from billing.webhooks.app import app_for
from tests.integration.billing_harness import Harness

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)  # MONTHLY ON 5, 10:00 Asia/Kolkata
LEAD = timedelta(hours=26)


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_show_debits_gateway_calls_and_the_backlog_move_after_a_tick(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(webhook_username="juspay", webhook_password="hook-secret-1")
    client = TestClient(app_for(harness.app, lambda _pk: None))
    harness.add_mandate("card-metrics")
    harness.tick(T0)
    before = scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    harness.at(PLANNED - LEAD)
    after = scrape(client)
    assert after[("billing_due_debits", ())] == 1  # due, not yet sent
    assert delta("billing_oldest_due_debit_age_seconds") == 0

    harness.tick()
    after = scrape(client)
    assert delta("billing_debits_total", state="EXECUTING") == 1
    assert delta("billing_debits_total", state="PENDING") == 1
    assert delta("billing_gateway_requests_total", endpoint="POST /txns", status="200") == 1
    assert delta("billing_gateway_request_seconds_count", endpoint="POST /txns") == 1
    assert after[("billing_due_debits", ())] == 0
    assert after[("billing_debit_states", (("state", "PENDING"),))] == 1

    harness.run_until(PLANNED + timedelta(hours=2))
    after = scrape(client)
    assert delta("billing_debits_total", state="CHARGED") == 1
    assert delta("billing_gateway_requests_total", endpoint="GET /orders/{id}", status="200") >= 1
    assert after[("billing_debit_states", (("state", "CHARGED"),))] == 1


def test_a_rolled_back_move_is_not_counted(harness: Harness) -> None:
    harness.add_mandate("card-rollback")
    harness.tick(T0)

    def cancelled() -> float:
        return REGISTRY.get_sample_value("billing_debits_total", {"state": "CANCELLED"}) or 0.0

    start = cancelled()
    with harness.app.sessions() as session:
        session.begin()
        debit_id = session.scalars(select(Debit.id)).one()
        assert store.move(session, debit_id, expected="PLANNED", target="CANCELLED",
                          at=T0, cause="test")  # fmt: skip
        session.rollback()
    assert cancelled() == start
    with harness.app.sessions() as session, session.begin():
        assert store.move(session, debit_id, expected="PLANNED", target="CANCELLED",
                          at=T0, cause="test")  # fmt: skip
    assert cancelled() == start + 1
