"""Mandate terms, the mandate status machine, and the validation of terms on the way in.

Terms arrive loosely typed (CSV strings, JSON lines, webhooks, the CLI); `parse_terms` turns them
into `Terms` or raises `InvalidField` naming the first bad field. `Terms` re-checks its invariants
when built, so a value made by hand cannot be invalid either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

from billing.domain.dates import parse_mandate_date
from billing.domain.errors import IllegalTransition, InvalidField
from billing.domain.frequency import MONTHLY_FAMILY, Frequency, RuleType, is_periodic
from billing.domain.interpretations import (
    FORTNIGHTLY_RULE_MAX,
    GATEWAY_DEFAULT_FREQUENCY,
    REJECT_UNUSED_RULE,
    default_rule,
    end_date_acceptable,
)
from billing.domain.money import parse_amount

__all__ = [
    "DEFAULT_AMOUNT_RULE",
    "DEFAULT_CURRENCY",
    "FINAL_MANDATE_STATUSES",
    "MANDATE_TRANSITIONS",
    "RULE_VALUE_RANGES",
    "AmountRule",
    "Frequency",
    "MandateStatus",
    "MandateType",
    "PaymentMethodType",
    "RuleType",
    "Terms",
    "can_transition_mandate",
    "check_rule",
    "is_periodic",
    "mandate_transition",
    "parse_mandate_date",
    "parse_terms",
    "validate_plan_amount",
]


class AmountRule(StrEnum):
    FIXED = "FIXED"
    VARIABLE = "VARIABLE"


class PaymentMethodType(StrEnum):
    UPI = "UPI"
    CARD = "CARD"
    NB = "NB"
    WALLET = "WALLET"


class MandateType(StrEnum):
    MANDATE = "MANDATE"  # card
    EMANDATE = "EMANDATE"  # UPI, net banking, wallet


class MandateStatus(StrEnum):
    CREATED = "CREATED"
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    REVOKED = "REVOKED"
    FAILURE = "FAILURE"
    EXPIRED = "EXPIRED"


FINAL_MANDATE_STATUSES = frozenset(
    {MandateStatus.REVOKED, MandateStatus.FAILURE, MandateStatus.EXPIRED}
)

_S = MandateStatus
MANDATE_TRANSITIONS: Mapping[MandateStatus, frozenset[MandateStatus]] = MappingProxyType(
    {
        _S.CREATED: frozenset({_S.PENDING, _S.ACTIVE, _S.FAILURE, _S.REVOKED, _S.EXPIRED}),
        _S.PENDING: frozenset({_S.ACTIVE, _S.FAILURE, _S.REVOKED, _S.EXPIRED}),
        # FAILURE means "registration failed": an ACTIVE or PAUSED mandate ends as REVOKED or
        # EXPIRED, and a late registration failure must not end it (interpretation).
        _S.ACTIVE: frozenset({_S.PAUSED, _S.REVOKED, _S.EXPIRED}),
        _S.PAUSED: frozenset({_S.ACTIVE, _S.REVOKED, _S.EXPIRED}),
        _S.REVOKED: frozenset(),
        _S.FAILURE: frozenset(),
        _S.EXPIRED: frozenset(),
    }
)


def can_transition_mandate(current: MandateStatus, target: MandateStatus) -> bool:
    """Staying in the same status is allowed (a repeated webhook); final statuses are never left."""
    return current == target or target in MANDATE_TRANSITIONS[current]


def mandate_transition(current: MandateStatus, target: MandateStatus) -> MandateStatus:
    if not can_transition_mandate(current, target):
        raise IllegalTransition("mandate", current, target)
    return target


# --- Terms ------------------------------------------------------------------------------------

DEFAULT_CURRENCY = "INR"  # Juspay's default
DEFAULT_AMOUNT_RULE = AmountRule.VARIABLE  # Juspay's default

RULE_VALUE_RANGES: Mapping[Frequency, tuple[int, int]] = MappingProxyType(
    {
        Frequency.WEEKLY: (1, 7),  # ISO weekday, 1 = Monday
        Frequency.FORTNIGHTLY: (1, FORTNIGHTLY_RULE_MAX),
        **dict.fromkeys(MONTHLY_FAMILY, (1, 31)),
    }
)

_CURRENCY = re.compile(r"[A-Z]{3}")
_WHOLE_NUMBER = re.compile(r"[+-]?\d{1,9}")


@dataclass(frozen=True, slots=True)
class Terms:
    frequency: Frequency
    rule_type: RuleType | None
    rule_value: int | None
    amount_rule: AmountRule
    max_amount: Decimal
    currency: str
    start_date: date
    end_date: date | None
    payment_method_type: PaymentMethodType

    def __post_init__(self) -> None:
        check_rule(self.frequency, self.rule_type, self.rule_value)
        object.__setattr__(self, "max_amount", parse_amount(self.max_amount, field="max_amount"))
        if not _CURRENCY.fullmatch(self.currency):
            raise InvalidField("currency", f"expected a 3-letter ISO code, got {self.currency!r}")
        _check_end_date(self.start_date, self.end_date)

    @property
    def mandate_type(self) -> MandateType:
        if self.payment_method_type is PaymentMethodType.CARD:
            return MandateType.MANDATE
        return MandateType.EMANDATE

    def covers(self, day: date) -> bool:
        """True when `day` lies within [start_date, end_date] (both inclusive)."""
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


def check_rule(frequency: Frequency, rule_type: RuleType | None, rule_value: int | None) -> None:
    """rule_type and rule_value are required, in range, for WEEKLY..YEARLY and absent otherwise."""
    if not frequency.uses_rule:
        if rule_type is not None:
            raise InvalidField("rule_type", f"not used for {frequency}")
        if rule_value is not None:
            raise InvalidField("rule_value", f"not used for {frequency}")
        return
    if rule_type is None:
        raise InvalidField("rule_type", f"required for {frequency}")
    if rule_value is None:
        raise InvalidField("rule_value", f"required for {frequency}")
    low, high = RULE_VALUE_RANGES[frequency]
    if not low <= rule_value <= high:
        raise InvalidField("rule_value", f"must be {low}-{high} for {frequency}, got {rule_value}")


def _check_end_date(start_date: date, end_date: date | None) -> None:
    if end_date is not None and not end_date_acceptable(start_date, end_date):
        raise InvalidField("end_date", f"must be after start_date {start_date}, got {end_date}")


def parse_terms(fields: Mapping[str, object], *, tz: ZoneInfo, from_gateway: bool = False) -> Terms:
    """Terms from loosely typed fields ("" and None mean absent); the first bad field raises.

    Dates go through `parse_mandate_date`; an end_date given as an instant (Juspay's epoch
    seconds) ends on the last local day it fully covers (`interpretations.end_date_of_instant`).

    `from_gateway=True` is for terms Juspay sent (webhooks, sync): a missing frequency is Juspay's
    default, a missing rule is `default_rule`, and a rule on a rule-less frequency is dropped.
    """
    frequency_value = _present(fields, "frequency")
    if frequency_value is None and from_gateway:
        frequency = GATEWAY_DEFAULT_FREQUENCY
    else:
        frequency = _enum(Frequency, frequency_value, "frequency")
    rule_type_value = _present(fields, "rule_type")
    rule_type = None if rule_type_value is None else _enum(RuleType, rule_type_value, "rule_type")
    rule_value_value = _present(fields, "rule_value")
    rule_value = None if rule_value_value is None else _whole_number(rule_value_value)
    lenient_rule = from_gateway or not REJECT_UNUSED_RULE
    if not lenient_rule:
        check_rule(frequency, rule_type, rule_value)

    amount_rule_value = _present(fields, "amount_rule")
    amount_rule = (
        DEFAULT_AMOUNT_RULE
        if amount_rule_value is None
        else _enum(AmountRule, amount_rule_value, "amount_rule")
    )
    max_amount_value = _present(fields, "max_amount")
    if max_amount_value is None:
        raise InvalidField("max_amount", "required")
    max_amount = parse_amount(max_amount_value, field="max_amount")
    currency = _currency(_present(fields, "currency"))

    start_value = _present(fields, "start_date")
    if start_value is None:
        raise InvalidField("start_date", "required")
    start_date = parse_mandate_date(start_value, tz=tz, field="start_date")
    end_value = _present(fields, "end_date")
    end_date = (
        None
        if end_value is None
        else parse_mandate_date(end_value, tz=tz, field="end_date", end=True)
    )
    _check_end_date(start_date, end_date)
    if lenient_rule:
        rule_type, rule_value = _lenient_rule(frequency, rule_type, rule_value, start_date)

    return Terms(
        frequency=frequency,
        rule_type=rule_type,
        rule_value=rule_value,
        amount_rule=amount_rule,
        max_amount=max_amount,
        currency=currency,
        start_date=start_date,
        end_date=end_date,
        payment_method_type=_enum(
            PaymentMethodType, _present(fields, "payment_method_type"), "payment_method_type"
        ),
    )


def validate_plan_amount(terms: Terms, amount: object) -> Decimal:
    """The per-cycle amount: FIXED = max_amount, VARIABLE <= max_amount; never defaulted."""
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        raise InvalidField("amount", "required: a debit never defaults to max_amount")
    value = parse_amount(amount, field="amount")
    if terms.amount_rule is AmountRule.FIXED and value != terms.max_amount:
        raise InvalidField("amount", f"must equal max_amount {terms.max_amount} for FIXED")
    if value > terms.max_amount:
        raise InvalidField("amount", f"must not exceed max_amount {terms.max_amount}")
    return value


_E = TypeVar("_E", bound=StrEnum)


def _present(fields: Mapping[str, object], name: str) -> object | None:
    value = fields.get(name)
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _enum(kind: type[_E], value: object, field: str) -> _E:
    if isinstance(value, str):
        try:
            return kind(value.strip().upper())
        except ValueError:
            pass
    choices = ", ".join(member.value for member in kind)  # only on the error path: imports
    if value is None:
        raise InvalidField(field, f"required, one of {choices}")
    if not isinstance(value, str):
        raise InvalidField(field, f"expected one of {choices}, got {type(value).__name__}")
    raise InvalidField(field, f"expected one of {choices}, got {value!r}")


def _whole_number(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise InvalidField("rule_value", f"expected a whole number, got {value!r}")


def _currency(value: object | None) -> str:
    if value is None:
        return DEFAULT_CURRENCY
    code = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.fullmatch(code):
        raise InvalidField("currency", f"expected a 3-letter ISO code, got {value!r}")
    return code


def _lenient_rule(
    frequency: Frequency, rule_type: RuleType | None, rule_value: int | None, start_date: date
) -> tuple[RuleType | None, int | None]:
    if not frequency.uses_rule:
        return None, None
    default_type, default_value = default_rule(frequency, start_date)
    return rule_type or default_type, default_value if rule_value is None else rule_value
