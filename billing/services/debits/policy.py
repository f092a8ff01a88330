"""What the debit services need from settings, as one value (built in bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from billing.domain.debit import RetryPolicy
from billing.domain.timing import Flow
from billing.services.debits.planning import PlanningPolicy


@dataclass(frozen=True, slots=True)
class DebitPolicy:
    planning: PlanningPolicy
    retry: RetryPolicy
    pending_max_age: timedelta
    # A debit left EXECUTING this long (its worker died after committing) is reconciled; one
    # status check holds its order this long (a worker killed mid-check delays no more).
    stale_claim_after: timedelta = timedelta(minutes=2)
    # An UNKNOWN outcome is first reconciled this soon; a failed read of it is tried again
    # after twice the previous wait (capped by the pending orders' polling).
    reconcile_after: timedelta = timedelta(minutes=1)
    # A due debit whose mandate is PAUSED (or held) is looked at again this often until its
    # window ends.
    paused_recheck: timedelta = timedelta(hours=1)
    # A next try whose previous order's status could not be read is tried again this soon.
    recheck_previous: timedelta = timedelta(minutes=5)

    def retry_lead(self, flow: str) -> timedelta:
        """How long before the debit a try must be sent: the juspay flow waits out Juspay's PDN."""
        return self.planning.execution_lead if flow == Flow.JUSPAY else timedelta(0)
