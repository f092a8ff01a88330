"""Gateway answers -> outcomes: the classification table (SPEC §5, §8)."""

from __future__ import annotations

import pytest

from billing.domain.outcomes import (
    HARD_CODES,
    ORDER_STATUS_IDS,
    SOFT_CODES,
    OrderStatus,
    Outcome,
    classify_order,
    classify_rejection,
    concerns_mandate,
    juspay_still_retrying,
    payout_failure_retriable,
    status_from_id,
)


def test_status_ids_are_juspays() -> None:
    assert {sid: s.value for sid, s in ORDER_STATUS_IDS.items()} == {
        10: "NEW",
        20: "STARTED",
        21: "CHARGED",
        22: "JUSPAY_DECLINED",
        23: "PENDING_VBV",
        24: "VBV_SUCCESSFUL",
        25: "AUTHORIZED",
        26: "AUTHENTICATION_FAILED",
        27: "AUTHORIZATION_FAILED",
        28: "AUTHORIZING",
        36: "AUTO_REFUNDED",
    }
    assert set(ORDER_STATUS_IDS.values()) == set(OrderStatus)


@pytest.mark.parametrize(
    ("status_id", "expected"),
    [(21, OrderStatus.CHARGED), ("26", OrderStatus.AUTHENTICATION_FAILED), (" 23 ", "PENDING_VBV")],
)
def test_status_from_id_takes_ints_and_strings(status_id: int | str, expected: str) -> None:
    assert status_from_id(status_id) == expected


@pytest.mark.parametrize("status_id", [99, "x", "", "-21", "2.1"])
def test_unknown_status_ids_are_none(status_id: int | str) -> None:
    assert status_from_id(status_id) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("CHARGED", Outcome.CHARGED),
        ("charged", Outcome.CHARGED),
        ("PENDING_VBV", Outcome.PENDING),
        ("AUTHORIZING", Outcome.PENDING),
        ("STARTED", Outcome.PENDING),
        ("NEW", Outcome.PENDING),
        ("VBV_SUCCESSFUL", Outcome.PENDING),
        ("AUTHORIZED", Outcome.PENDING),
        ("AUTHORIZATION_FAILED", Outcome.FAILED_SOFT),
        ("AUTHENTICATION_FAILED", Outcome.FAILED_SOFT),
        ("AUTO_REFUNDED", Outcome.FAILED_SOFT),
        ("JUSPAY_DECLINED", Outcome.FAILED_HARD),
        ("NOT_FOUND", Outcome.UNKNOWN),
        ("SOMETHING_NEW", Outcome.UNKNOWN),
        ("", Outcome.UNKNOWN),
    ],
)
def test_order_statuses(status: str, expected: Outcome) -> None:
    assert classify_order(status) is expected


def test_every_order_status_has_an_outcome_other_than_unknown() -> None:
    for status in OrderStatus:
        assert classify_order(status) is not Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        # the ORDER_FAILED sample: a 3-D Secure failure is worth another try
        (
            "AUTHENTICATION_FAILED",
            "0399",
            "payment_authentication_error. 3D Secure authentication failure",
            Outcome.FAILED_SOFT,
        ),
        ("AUTHORIZATION_FAILED", "Z9", "", Outcome.FAILED_SOFT),
        ("AUTHORIZATION_FAILED", "51", None, Outcome.FAILED_SOFT),
        ("AUTHORIZATION_FAILED", "91", None, Outcome.FAILED_SOFT),
        ("AUTHORIZATION_FAILED", "41", None, Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", "43", None, Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", "54", None, Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", "14", None, Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", "jpmr", None, Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", None, "Mandate has been REVOKED", Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", None, "Card reported lost", Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", None, "Account blocked", Outcome.FAILED_HARD),
        ("AUTHORIZATION_FAILED", "", "Insufficient balance", Outcome.FAILED_SOFT),
        ("AUTHORIZATION_FAILED", "X1", "bank server timeout", Outcome.FAILED_SOFT),
        # a code outranks a message keyword
        ("AUTHORIZATION_FAILED", "51", "card blocked?", Outcome.FAILED_SOFT),
        # a hard keyword outranks a soft one
        ("AUTHORIZATION_FAILED", None, "insufficient funds; mandate paused", Outcome.FAILED_HARD),
        ("JUSPAY_DECLINED", None, None, Outcome.FAILED_HARD),
        ("JUSPAY_DECLINED", "U30", None, Outcome.FAILED_SOFT),
        ("JUSPAY_DECLINED", None, "Issuer unavailable, try again", Outcome.FAILED_SOFT),
        ("CHARGED", "51", "insufficient", Outcome.CHARGED),
        ("PENDING_VBV", "41", None, Outcome.PENDING),
    ],
)
def test_failed_orders_by_code_and_message(
    status: str, code: str | None, message: str | None, expected: Outcome
) -> None:
    assert classify_order(status, error_code=code, error_message=message) is expected


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("INVALID_ACTION", "Recurring on a revoked mandate", Outcome.FAILED_HARD),
        ("RESOURCE_NOT_FOUND", "invalid mandate_id", Outcome.FAILED_HARD),
        ("INVALID_INPUT", "amount exceeds max_amount", Outcome.FAILED_HARD),
        (None, "Invalid Request", Outcome.FAILED_HARD),
        (None, None, Outcome.FAILED_HARD),
        ("TOO_MANY_REQUESTS", None, Outcome.FAILED_SOFT),
        (None, "Rate limit exceeded", Outcome.FAILED_SOFT),
        (None, "Service temporarily unavailable", Outcome.FAILED_SOFT),
        ("JPME", "EXECUTION_ALREADY_IN_PROGRESS", Outcome.FAILED_SOFT),
        ("DUPLICATE_ORDER_ID", None, Outcome.UNKNOWN),
        ("access_denied", None, Outcome.UNKNOWN),
    ],
)
def test_rejections_of_mandate_execution(
    code: str | None, message: str | None, expected: Outcome
) -> None:
    assert classify_rejection(code, message) is expected


def test_no_code_is_both_soft_and_hard() -> None:
    assert not SOFT_CODES & HARD_CODES


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("JPMR", None, True),
        ("JPMP", None, True),
        ("JPMX", None, True),
        # juspay-api.md §8: INVALID_ACTION "e.g. recurring on revoked mandate"
        ("INVALID_ACTION", "Recurring on a revoked mandate", True),
        # juspay-api.md §2: JP_852 "Mandate is not in active State" (as bank_error_code)
        ("JP_852", "Mandate is not in active State", True),
        # juspay-api.md §4.3: 400 "Mandate Not in Active State" (INVALID_ACTION)
        ("invalid_request", "Mandate Not in Active State", True),
        # mandate execution page (SEA): "Mandate is in PAUSED state. Recurring cannot be executed"
        ("invalid_request", "Mandate is in PAUSED state. Recurring cannot be executed", True),
        (None, "Mandate is Paused", True),
        (None, "mandate expired", True),
        # juspay-api.md §4.6: JP_852 after the merchant stopped the execution: not the mandate
        ("JP_852", "Transaction was declined by merchant.", False),
        ("54", "Expired card", False),  # the card expired, not the mandate
        ("51", "Insufficient funds", False),
        ("JP_851", "PDN Failed. Not delivered", False),
        (None, None, False),
    ],
)
def test_refusals_that_concern_the_mandate_are_recognised(
    code: str | None, message: str | None, expected: bool
) -> None:
    assert concerns_mandate(code, message) is expected


@pytest.mark.parametrize(
    ("outcome", "done", "allowed", "retrying"),
    [
        (Outcome.FAILED_SOFT, 0, 4, True),
        (Outcome.FAILED_SOFT, 3, 4, True),
        (Outcome.FAILED_SOFT, 4, 4, False),  # every allowed retry made: our dunning runs
        (Outcome.FAILED_SOFT, 5, 4, False),
        (Outcome.UNKNOWN, 1, 4, True),
        (Outcome.PENDING, 1, 4, True),
        (Outcome.CHARGED, 1, 4, False),  # final: nothing left to retry
        (Outcome.FAILED_HARD, 1, 4, False),  # final: no retry changes a hard failure
        (Outcome.FAILED_SOFT, None, 4, False),  # counts unreadable: not retrying
        (Outcome.FAILED_SOFT, 1, None, False),
    ],
)
def test_juspay_is_still_retrying_while_the_order_is_not_final_and_retries_are_left(
    outcome: Outcome, done: int | None, allowed: int | None, retrying: bool
) -> None:
    assert juspay_still_retrying(outcome, done, allowed) is retrying


def test_juspays_pdn_failure_is_soft_and_a_mandate_not_active_is_hard() -> None:
    # juspay-api.md §2: JP_851 "PDN Failed", JP_852 "Mandate is not in active State".
    assert classify_order("AUTHORIZATION_FAILED", error_code="JP_851") is Outcome.FAILED_SOFT
    assert classify_order("JUSPAY_DECLINED", error_code="JP_852") is Outcome.FAILED_HARD


@pytest.mark.parametrize(
    ("code", "is_retriable", "expected"),
    [
        (None, None, True),
        ("INSUFFICIENT_BALANCE", None, True),
        ("BANK_DOWN", True, True),
        ("BANK_DOWN", False, False),
        ("INVALID_CARD", None, False),
        ("invalid card number", True, False),
        ("CARD_EXPIRED", None, False),
        ("INVALID_BENEFICIARY", None, False),
        ("INVALID_BENEFICIARY_NAME", None, False),
        ("STOLEN_CARD", None, False),
        (
            "57",
            None,
            False,
        ),  # Juspay's sample: VISADIRECT "Transaction Not Permitted to card holder"
        ("54", None, False),  # expired card
        ("91", None, True),  # issuer or switch inoperative
        ("05", None, True),  # do not honour
    ],
)
def test_payout_failures(code: str | None, is_retriable: bool | None, expected: bool) -> None:
    assert payout_failure_retriable(code, is_retriable) is expected
