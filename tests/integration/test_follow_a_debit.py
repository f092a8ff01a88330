"""`billing debits show` finds a debit by its id or by any of its order ids (the id a log
line, Juspay's dashboard or a customer's bank statement shows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from billing.cli.common import Context
from billing.cli.debits import debits
from tests.integration.billing_harness import Harness

T0 = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)


def show(harness: Harness, ref: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        debits, ["show", ref, "--json"], obj=Context(_container=harness.app)
    )
    return result.exit_code, result.output


def test_debits_show_takes_an_order_id_as_well_as_a_debit_id(harness: Harness) -> None:
    harness.add_mandate("card-show")
    harness.tick(T0)
    harness.tick(PLANNED - timedelta(hours=26))
    debit = harness.debit("card-show")
    [order] = harness.orders(debit.id)
    by_id = show(harness, str(debit.id))
    by_order = show(harness, order.order_id)
    assert by_id[0] == 0, by_id[1]
    assert by_order == by_id
    shown = json.loads(by_order[1])
    assert shown["id"] == debit.id
    assert [o["order_id"] for o in shown["orders"]] == [order.order_id]


def test_debits_show_names_what_it_could_not_find(harness: Harness) -> None:
    result = CliRunner().invoke(
        debits, ["show", "nosuchorder"], obj=Context(_container=harness.app)
    )
    assert result.exit_code != 0
    assert str(result.exception) == "no debit has the id or order id 'nosuchorder'"
