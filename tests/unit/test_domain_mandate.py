"""Mandate terms on the way in, dates as Juspay sends them, plan amounts, the status machine."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.domain.errors import IllegalTransition, InvalidField
from billing.domain.interpretations import default_rule
from billing.domain.mandate import (
    FINAL_MANDATE_STATUSES,
    MANDATE_TRANSITIONS,
    AmountRule,
    Frequency,
    MandateStatus,
    MandateType,
    PaymentMethodType,
    RuleType,
    Terms,
    can_transition_mandate,
    mandate_transition,
    parse_mandate_date,
    parse_terms,
    validate_plan_amount,
)

KOLKATA = ZoneInfo("Asia/Kolkata")

ROW: dict[str, object] = {
    "frequency": "MONTHLY",
    "rule_type": "ON",
    "rule_value": "5",
    "amount_rule": "FIXED",
    "max_amount": "399",
    "currency": "INR",
    "start_date": "2027-01-01",
    "end_date": "2028-01-01",
    "payment_method_type": "UPI",
}


def row(**changes: object) -> dict[str, object]:
    return {**ROW, **changes}


def test_a_csv_row_of_strings_becomes_typed_terms() -> None:
    terms = parse_terms(ROW, tz=KOLKATA)
    assert terms == Terms(
        frequency=Frequency.MONTHLY,
        rule_type=RuleType.ON,
        rule_value=5,
        amount_rule=AmountRule.FIXED,
        max_amount=Decimal("399.00"),
        currency="INR",
        start_date=date(2027, 1, 1),
        end_date=date(2028, 1, 1),
        payment_method_type=PaymentMethodType.UPI,
    )
    assert terms.mandate_type is MandateType.EMANDATE


def test_defaults_are_juspays() -> None:
    terms = parse_terms(row(amount_rule="", currency="", end_date=""), tz=KOLKATA)
    assert terms.amount_rule is AmountRule.VARIABLE
    assert terms.currency == "INR"
    assert terms.end_date is None


def test_loose_spellings_are_accepted() -> None:
    terms = parse_terms(
        row(frequency=" monthly ", rule_type="after", rule_value=31, currency="usd"),
        tz=KOLKATA,
    )
    assert (terms.frequency, terms.rule_type, terms.rule_value) == (
        Frequency.MONTHLY,
        RuleType.AFTER,
        31,
    )
    assert terms.currency == "USD"
    assert parse_terms(row(rule_value="07"), tz=KOLKATA).rule_value == 7
    assert parse_terms(row(rule_value=7.0), tz=KOLKATA).rule_value == 7


def test_a_card_mandate_is_of_type_mandate() -> None:
    assert parse_terms(row(payment_method_type="card"), tz=KOLKATA).mandate_type is (
        MandateType.MANDATE
    )


def test_rule_fields_are_absent_for_daily_onetime_and_aspresented() -> None:
    for frequency in ("DAILY", "ONETIME", "ASPRESENTED"):
        terms = parse_terms(row(frequency=frequency, rule_type="", rule_value=None), tz=KOLKATA)
        assert (terms.rule_type, terms.rule_value) == (None, None)


BAD_ROWS: list[tuple[dict[str, object], str, str]] = [
    ({"frequency": ""}, "frequency", "required"),
    ({"frequency": "SOMETIMES"}, "frequency", "MONTHLY"),
    ({"frequency": 12}, "frequency", "int"),
    ({"rule_type": ""}, "rule_type", "required for MONTHLY"),
    ({"rule_type": "DURING"}, "rule_type", "DURING"),
    ({"rule_value": ""}, "rule_value", "required for MONTHLY"),
    ({"rule_value": "32"}, "rule_value", "1-31"),
    ({"rule_value": "0"}, "rule_value", "1-31"),
    ({"rule_value": "five"}, "rule_value", "whole number"),
    ({"rule_value": "1.5"}, "rule_value", "whole number"),
    ({"rule_value": True}, "rule_value", "whole number"),
    ({"frequency": "WEEKLY", "rule_value": "8"}, "rule_value", "1-7"),
    ({"frequency": "FORTNIGHTLY", "rule_value": "17"}, "rule_value", "1-16"),
    ({"frequency": "QUARTERLY", "rule_value": "32"}, "rule_value", "1-31"),
    ({"frequency": "DAILY"}, "rule_type", "not used for DAILY"),
    ({"frequency": "DAILY", "rule_type": ""}, "rule_value", "not used for DAILY"),
    ({"frequency": "ASPRESENTED", "rule_value": ""}, "rule_type", "not used for ASPRESENTED"),
    ({"amount_rule": "SOMETIMES"}, "amount_rule", "FIXED"),
    ({"max_amount": ""}, "max_amount", "required"),
    ({"max_amount": "0"}, "max_amount", "greater than 0"),
    ({"max_amount": "-1"}, "max_amount", "negative"),
    ({"max_amount": "1.005"}, "max_amount", "2 decimals"),
    ({"max_amount": "lots"}, "max_amount", "not a number"),
    ({"currency": "RUPEE"}, "currency", "3-letter"),
    ({"currency": "1NR"}, "currency", "3-letter"),
    ({"start_date": ""}, "start_date", "required"),
    ({"start_date": "next tuesday"}, "start_date", "YYYY-MM-DD"),
    ({"end_date": "2027-01-01"}, "end_date", "after start_date"),
    ({"end_date": "2026-12-31"}, "end_date", "after start_date"),
    ({"end_date": "2027-02-30"}, "end_date", "YYYY-MM-DD"),
    ({"payment_method_type": ""}, "payment_method_type", "required"),
    ({"payment_method_type": "CASH"}, "payment_method_type", "UPI"),
]


@pytest.mark.parametrize(("changes", "field", "reason"), BAD_ROWS)
def test_each_bad_field_is_named(changes: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_terms(row(**changes), tz=KOLKATA)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{field}: ")


def test_every_terms_field_has_a_named_error() -> None:
    assert {field for _, field, _ in BAD_ROWS} == {
        "frequency",
        "rule_type",
        "rule_value",
        "amount_rule",
        "max_amount",
        "currency",
        "start_date",
        "end_date",
        "payment_method_type",
    }


def test_the_first_bad_field_is_reported() -> None:
    with pytest.raises(InvalidField) as caught:
        parse_terms(row(rule_value="99", currency="??", payment_method_type="CASH"), tz=KOLKATA)
    assert caught.value.field == "rule_value"


def test_terms_built_by_hand_are_checked_too() -> None:
    with pytest.raises(InvalidField) as caught:
        Terms(
            frequency=Frequency.WEEKLY,
            rule_type=RuleType.ON,
            rule_value=9,
            amount_rule=AmountRule.VARIABLE,
            max_amount=Decimal("10"),
            currency="INR",
            start_date=date(2027, 1, 1),
            end_date=None,
            payment_method_type=PaymentMethodType.UPI,
        )
    assert caught.value.field == "rule_value"


# --- terms as Juspay sends them ---------------------------------------------------------------

# content.mandate of the MANDATE_ACTIVATED webhook sample, flattened with payment_info
JUSPAY_MANDATE: dict[str, object] = {
    "status": "ACTIVE",
    "start_date": "1639802535",
    "end_date": "3093465599",
    "max_amount": "399",
    "mandate_type": "EMANDATE",
    "frequency": "MONTHLY",
    "currency": "INR",
    "amount_rule": "VARIABLE",
    "payment_method_type": "UPI",
}


def test_a_juspay_mandate_without_a_rule_gets_the_default_rule() -> None:
    with pytest.raises(InvalidField, match="rule_type"):
        parse_terms(JUSPAY_MANDATE, tz=KOLKATA)
    terms = parse_terms(JUSPAY_MANDATE, tz=KOLKATA, from_gateway=True)
    assert terms.start_date == date(2021, 12, 18)
    assert (terms.rule_type, terms.rule_value) == (RuleType.ON, 18)
    # 3093465599 is 2068-01-10T23:59:59Z, i.e. 05:29:59 on 11 Jan in Kolkata: the last whole
    # local day of the mandate is 10 Jan
    assert terms.end_date == date(2068, 1, 10)


def test_a_juspay_mandate_keeps_its_rule_and_drops_one_it_does_not_use() -> None:
    # the ORDER_SUCCEEDED sample's mandate block: start 1598745600, MONTHLY AFTER 30
    sample = {**JUSPAY_MANDATE, "start_date": 1598745600, "rule_type": "AFTER", "rule_value": 30}
    terms = parse_terms(sample, tz=KOLKATA, from_gateway=True)
    assert (terms.rule_type, terms.rule_value, terms.start_date) == (
        RuleType.AFTER,
        30,
        date(2020, 8, 30),
    )
    daily = parse_terms({**sample, "frequency": "DAILY"}, tz=KOLKATA, from_gateway=True)
    assert (daily.rule_type, daily.rule_value) == (None, None)


def test_a_juspay_mandate_without_frequency_is_aspresented() -> None:
    sample = {k: v for k, v in JUSPAY_MANDATE.items() if k != "frequency"}
    assert parse_terms(sample, tz=KOLKATA, from_gateway=True).frequency is Frequency.ASPRESENTED


@pytest.mark.parametrize(
    ("frequency", "start", "expected"),
    [
        (Frequency.MONTHLY, date(2027, 3, 31), (RuleType.ON, 31)),
        (Frequency.YEARLY, date(2028, 2, 29), (RuleType.ON, 29)),
        (Frequency.WEEKLY, date(2027, 3, 3), (RuleType.ON, 3)),  # a Wednesday
        (Frequency.WEEKLY, date(2027, 3, 7), (RuleType.ON, 7)),  # a Sunday
        (Frequency.FORTNIGHTLY, date(2027, 3, 10), (RuleType.ON, 10)),
        (Frequency.FORTNIGHTLY, date(2027, 3, 16), (RuleType.ON, 1)),
        (Frequency.FORTNIGHTLY, date(2027, 3, 31), (RuleType.ON, 16)),
        (Frequency.DAILY, date(2027, 3, 31), (None, None)),
        (Frequency.ONETIME, date(2027, 3, 31), (None, None)),
        (Frequency.ASPRESENTED, date(2027, 3, 31), (None, None)),
    ],
)
def test_default_rule(
    frequency: Frequency, start: date, expected: tuple[RuleType | None, int | None]
) -> None:
    assert default_rule(frequency, start) == expected


# --- dates ------------------------------------------------------------------------------------

DATES: list[tuple[object, date]] = [
    (date(2027, 3, 1), date(2027, 3, 1)),
    ("2027-03-01", date(2027, 3, 1)),
    (" 2027-03-01 ", date(2027, 3, 1)),
    (1639802535, date(2021, 12, 18)),
    ("1639802535", date(2021, 12, 18)),
    ("2021-12-18T20:00:00Z", date(2021, 12, 19)),  # 01:30 on the 19th in Kolkata
    ("2021-12-18T18:29:59+00:00", date(2021, 12, 18)),
    ("2021-12-18T18:30:00+00:00", date(2021, 12, 19)),
    ("2021-12-18T23:00:00+05:30", date(2021, 12, 18)),
    ("2021-12-18T20:00:00", date(2021, 12, 18)),  # naive: already local
    ("2021-12-18 20:00", date(2021, 12, 18)),
    (datetime(2021, 12, 18, 20, 0, tzinfo=UTC), date(2021, 12, 19)),
    (datetime(2021, 12, 18, 20, 0, tzinfo=timezone(timedelta(hours=-5))), date(2021, 12, 19)),
]


@pytest.mark.parametrize(("value", "expected"), DATES)
def test_mandate_dates_in_kolkata(value: object, expected: date) -> None:
    assert parse_mandate_date(value, tz=KOLKATA, field="start_date") == expected


def test_the_same_instant_is_another_date_elsewhere() -> None:
    assert parse_mandate_date("1639857600", tz=KOLKATA, field="d") == date(2021, 12, 19)
    assert parse_mandate_date("1639857600", tz=ZoneInfo("UTC"), field="d") == date(2021, 12, 18)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-03-01", date(2027, 3, 1)),  # a date is inclusive as it is
        ("2027-03-01T23:59:59+05:30", date(2027, 3, 1)),  # the whole local day is covered
        ("2027-03-01T18:29:59Z", date(2027, 3, 1)),  # the same instant
        ("2027-03-01T23:59:59Z", date(2027, 3, 1)),  # 05:29:59 on 2 Mar: 2 Mar is not whole
        ("2027-03-02T00:00:00+05:30", date(2027, 3, 1)),
        ("2027-03-01T12:00:00+05:30", date(2027, 2, 28)),
    ],
)
def test_an_end_instant_ends_on_the_last_whole_local_day(value: str, expected: date) -> None:
    assert parse_mandate_date(value, tz=KOLKATA, field="end_date", end=True) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "required"),
        ("   ", "required"),
        ("soon", "YYYY-MM-DD"),
        ("2027-13-01", "YYYY-MM-DD"),
        ("20270301", "before 2000"),  # digits are epoch seconds, and 1970 is no mandate date
        (0, "before 2000"),
        ("9" * 13, "out of range"),
        ("9" * 5000, "out of range"),
        (999_999_999_999, "out of range"),
        (True, "got True"),
        (1.5, "float"),
        (None, "NoneType"),
    ],
)
def test_bad_dates_name_the_field(value: object, reason: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_mandate_date(value, tz=KOLKATA, field="start_date")
    assert caught.value.field == "start_date"
    assert reason in caught.value.reason


# --- plan amount ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_rule", "amount", "expected"),
    [
        ("FIXED", "399", Decimal("399.00")),
        ("FIXED", "399.00", Decimal("399.00")),
        ("FIXED", 399, Decimal("399.00")),
        ("VARIABLE", "100", Decimal("100.00")),
        ("VARIABLE", "399", Decimal("399.00")),
        ("VARIABLE", "0.01", Decimal("0.01")),
        ("VARIABLE", 12.5, Decimal("12.50")),
    ],
)
def test_plan_amounts_within_the_terms(amount_rule: str, amount: object, expected: Decimal) -> None:
    terms = parse_terms(row(amount_rule=amount_rule), tz=KOLKATA)
    assert validate_plan_amount(terms, amount) == expected


@pytest.mark.parametrize(
    ("amount_rule", "amount", "reason"),
    [
        ("FIXED", "398", "must equal max_amount"),
        ("FIXED", "399.01", "must equal max_amount"),
        ("VARIABLE", "399.01", "must not exceed max_amount"),
        ("VARIABLE", "0", "greater than 0"),
        ("VARIABLE", "-5", "negative"),
        ("VARIABLE", "1.001", "2 decimals"),
        ("VARIABLE", None, "never defaults to max_amount"),
        ("VARIABLE", "", "never defaults to max_amount"),
        ("FIXED", None, "never defaults to max_amount"),
    ],
)
def test_plan_amounts_outside_the_terms_are_refused(
    amount_rule: str, amount: object, reason: str
) -> None:
    terms = parse_terms(row(amount_rule=amount_rule), tz=KOLKATA)
    with pytest.raises(InvalidField) as caught:
        validate_plan_amount(terms, amount)
    assert caught.value.field == "amount"
    assert reason in caught.value.reason


# --- the status machine -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(MandateStatus, MandateStatus))
)
def test_every_pair_of_statuses_is_allowed_or_raises(
    current: MandateStatus, target: MandateStatus
) -> None:
    if can_transition_mandate(current, target):
        assert mandate_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            mandate_transition(current, target)
        assert caught.value.machine == "mandate"
        assert (caught.value.current, caught.value.target) == (current, target)


def test_final_statuses_are_never_left() -> None:
    assert {MandateStatus.REVOKED, MandateStatus.FAILURE, MandateStatus.EXPIRED} == (
        FINAL_MANDATE_STATUSES
    )
    for final in FINAL_MANDATE_STATUSES:
        assert MANDATE_TRANSITIONS[final] == frozenset()
        assert [t for t in MandateStatus if can_transition_mandate(final, t)] == [final]


def test_the_usual_life_of_a_mandate() -> None:
    path = ["CREATED", "PENDING", "ACTIVE", "PAUSED", "ACTIVE", "ACTIVE", "REVOKED"]
    status = MandateStatus.CREATED
    for step in path[1:]:
        status = mandate_transition(status, MandateStatus(step))
    assert status is MandateStatus.REVOKED


def test_stale_moves_back_are_refused() -> None:
    assert not can_transition_mandate(MandateStatus.ACTIVE, MandateStatus.CREATED)
    assert not can_transition_mandate(MandateStatus.ACTIVE, MandateStatus.PENDING)
    assert not can_transition_mandate(MandateStatus.ACTIVE, MandateStatus.FAILURE)
    assert not can_transition_mandate(MandateStatus.REVOKED, MandateStatus.ACTIVE)
    assert not can_transition_mandate(MandateStatus.CREATED, MandateStatus.PAUSED)


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(MANDATE_TRANSITIONS) == set(MandateStatus)
    assert [s.value for s in MandateStatus] == [
        "CREATED",
        "PENDING",
        "ACTIVE",
        "PAUSED",
        "REVOKED",
        "FAILURE",
        "EXPIRED",
    ]
