"""Deterministic order ids and notification references: pinned, unique, gateway-safe."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.ids import notification_ref_for, order_id_for

MANDATE = "eBWQNiQgeG7fdrXPPXtVbL"  # from Juspay's webhook samples


def test_ids_are_pinned_forever() -> None:
    """If this fails, the encoding changed: sent orders would be resent under new ids."""
    assert order_id_for(MANDATE, 0, 1) == "vvxew6vfyk6y4h64nej6"
    assert order_id_for(MANDATE, 12, 3) == "zkgzs5qkmxxez6yrzjiz"
    assert notification_ref_for(MANDATE, 0, 1) == "4j6dyawslafnxtpm4rnsbewnd"


def test_ids_are_unique_across_a_grid() -> None:
    mandates = [f"mdt{n}" for n in range(40)] + [MANDATE, "a|1", "a", "1"]
    grid = list(itertools.product(mandates, range(30), range(1, 6)))
    orders = {order_id_for(m, c, t) for m, c, t in grid}
    refs = {notification_ref_for(m, c, t) for m, c, t in grid}
    assert len(orders) == len(refs) == len(grid)
    assert not orders & refs


def test_a_separator_in_the_mandate_id_cannot_collide() -> None:
    assert order_id_for("a|1", 2, 3) != order_id_for("a", 12, 3)
    assert order_id_for("a|1", 2, 3) != order_id_for("a", 1, 23)


@settings(max_examples=300, deadline=None)
@given(
    mandate_id=st.text(min_size=1, max_size=64),
    cycle=st.integers(0, 10**6),
    number=st.integers(0, 1000),
)
def test_ids_are_alphanumeric_short_and_stable(mandate_id: str, cycle: int, number: int) -> None:
    order_id = order_id_for(mandate_id, cycle, number)
    ref = notification_ref_for(mandate_id, cycle, number)
    assert len(order_id) == 20
    assert len(ref) == 25
    for value in (order_id, ref):
        assert value.isascii()
        assert value.isalnum()
    assert order_id == order_id_for(mandate_id, cycle, number)
    assert order_id != order_id_for(mandate_id, cycle, number + 1)
    assert order_id != order_id_for(mandate_id, cycle + 1, number)


@pytest.mark.parametrize(
    ("mandate_id", "cycle", "number"), [("", 0, 1), ("m", -1, 1), ("m", 0, -1)]
)
def test_nonsense_is_refused(mandate_id: str, cycle: int, number: int) -> None:
    with pytest.raises(ValueError):
        order_id_for(mandate_id, cycle, number)
    with pytest.raises(ValueError):
        notification_ref_for(mandate_id, cycle, number)
