"""How often a mandate may be debited and where in the period: Juspay's `frequency` and `rule_type`.

Kept apart from `mandate` so that `interpretations` and `schedule` can use them without a cycle;
`billing.domain.mandate` re-exports both, which is where callers import them from.
"""

from __future__ import annotations

from enum import StrEnum


class Frequency(StrEnum):
    ONETIME = "ONETIME"
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    FORTNIGHTLY = "FORTNIGHTLY"
    MONTHLY = "MONTHLY"
    BIMONTHLY = "BIMONTHLY"
    QUARTERLY = "QUARTERLY"
    HALFYEARLY = "HALFYEARLY"
    YEARLY = "YEARLY"
    ASPRESENTED = "ASPRESENTED"

    @property
    def is_periodic(self) -> bool:
        """True when the calendar plans the debits; ONETIME and ASPRESENTED are presented."""
        return self not in _PRESENTED

    @property
    def uses_rule(self) -> bool:
        """True when the mandate carries `rule_type` / `rule_value` (every periodic but DAILY)."""
        return self.is_periodic and self is not Frequency.DAILY


_PRESENTED = frozenset({Frequency.ONETIME, Frequency.ASPRESENTED})

MONTHLY_FAMILY = frozenset(
    {
        Frequency.MONTHLY,
        Frequency.BIMONTHLY,
        Frequency.QUARTERLY,
        Frequency.HALFYEARLY,
        Frequency.YEARLY,
    }
)


class RuleType(StrEnum):
    ON = "ON"
    BEFORE = "BEFORE"
    AFTER = "AFTER"


def is_periodic(frequency: Frequency) -> bool:
    return frequency.is_periodic


def uses_rule(frequency: Frequency) -> bool:
    return frequency.uses_rule
