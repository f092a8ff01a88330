"""Errors of the domain.

DomainError
├── InvalidField        a value from outside is malformed; names the field and why
└── IllegalTransition   a state machine was asked for a move it does not allow
"""

from __future__ import annotations


class DomainError(ValueError):
    """Base of every error the pure core raises."""


class InvalidField(DomainError):  # noqa: N818 - the API's name, read as `raise InvalidField`
    """`field: reason`, the one-line shape every edge reports (import rows, webhooks, CLI)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class IllegalTransition(DomainError):  # noqa: N818 - the same
    """A move between two states that the machine forbids (e.g. leaving a final state)."""

    def __init__(self, machine: str, current: str, target: str) -> None:
        super().__init__(f"{machine}: {current} -> {target} is not allowed")
        self.machine = machine
        self.current = current
        self.target = target
