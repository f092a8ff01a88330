"""The checks before a call that moves money (domain.sending), and the reading of a debit's
previous order between tries (domain.debit.reconsider): pure, table-tested."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.domain.calendar import Period
from billing.domain.debit import NOT_SENT, DebitState, can_transition_debit, reconsider
from billing.domain.errors import IllegalTransition
from billing.domain.mandate import MandateStatus, Terms, parse_terms
from billing.domain.ordering import order_news_applies
from billing.domain.outcomes import Outcome
from billing.domain.schedule import DebitCalendar
from billing.domain.sending import (
    Verdict,
    may_send,
    notice_still_serves,
    previous_try_allows,
    terms_misfit,
)
from billing.domain.timing import Flow, execution_instant, pdn_txn_date

S = DebitState
NOW = datetime(2027, 3, 4, 2, 30, tzinfo=UTC)
CLOSES = datetime(2027, 3, 5, 18, 30, tzinfo=UTC)  # ON 5 in Kolkata: midnight after the 5th
CAL = DebitCalendar(tz=ZoneInfo("Asia/Kolkata"), debit_time=time(10, 0))
LEAD = timedelta(hours=26)


@pytest.mark.parametrize(
    ("status", "hold", "debits_at", "now", "verdict", "reason"),
    [
        (MandateStatus.ACTIVE, None, CLOSES - timedelta(hours=1), NOW, Verdict.SEND, ""),
        # Juspay would debit on the 6th: outside an ON-5 window
        (MandateStatus.ACTIVE, None, CLOSES, NOW, Verdict.SKIP, "window passed: Juspay would"),
        (MandateStatus.ACTIVE, None, CLOSES, CLOSES, Verdict.SKIP, "window passed before"),
        (MandateStatus.PAUSED, None, NOW, NOW, Verdict.HOLD, "held: mandate PAUSED"),
        (MandateStatus.CREATED, None, NOW, NOW, Verdict.HOLD, "held: mandate CREATED"),
        (MandateStatus.PENDING, None, NOW, NOW, Verdict.HOLD, "held: mandate PENDING"),
        (MandateStatus.REVOKED, None, NOW, NOW, Verdict.SKIP, "mandate REVOKED"),
        (MandateStatus.EXPIRED, None, NOW, NOW, Verdict.SKIP, "mandate EXPIRED"),
        (MandateStatus.ACTIVE, "read failed", NOW, NOW, Verdict.HOLD, "until a sync"),
        # a paused mandate whose window passed: skipped, not held forever (SPEC §2)
        (MandateStatus.PAUSED, None, CLOSES, NOW, Verdict.SKIP, "window passed"),
    ],
)
def test_may_send(
    status: MandateStatus,
    hold: str | None,
    debits_at: datetime,
    now: datetime,
    verdict: Verdict,
    reason: str,
) -> None:
    gate = may_send(
        mandate_status=status,
        hold_reason=hold,
        debits_at=debits_at,
        window_closes_at=CLOSES,
        now=now,
    )
    assert gate.verdict is verdict
    assert gate.reason.startswith(reason) or reason in gate.reason


@pytest.mark.parametrize(
    ("flow", "execution_date", "expected"),
    [
        # juspay: Juspay's own notice from now, never before the date asked
        (Flow.JUSPAY, NOW + LEAD, NOW + LEAD),
        (Flow.JUSPAY, NOW + timedelta(hours=2), NOW + LEAD),  # a late resend
        (Flow.JUSPAY, NOW + timedelta(days=3), NOW + timedelta(days=3)),
        (Flow.MERCHANT, NOW + timedelta(hours=3), NOW + timedelta(hours=3)),
        (Flow.MERCHANT, NOW - timedelta(hours=3), NOW),
        (Flow.NONE, None, NOW),  # executes on request
        (Flow.NONE, NOW + timedelta(days=1), NOW),
    ],
)
def test_execution_instant(flow: Flow, execution_date: datetime | None, expected: datetime) -> None:
    assert execution_instant(flow, now=NOW, execution_date=execution_date, lead=LEAD) == expected


@pytest.mark.parametrize(
    ("outcome", "allows"),
    [
        (Outcome.FAILED_SOFT, True),
        (Outcome.CHARGED, False),
        (Outcome.PENDING, False),
        (Outcome.UNKNOWN, False),
        (Outcome.FAILED_HARD, False),
    ],
)
def test_the_next_try_goes_only_after_a_soft_failure_of_the_previous(
    outcome: Outcome, allows: bool
) -> None:
    assert previous_try_allows(outcome) is allows


@pytest.mark.parametrize("state", sorted(NOT_SENT - {S.PLANNED}))
@pytest.mark.parametrize(
    ("outcome", "target"),
    [
        (Outcome.CHARGED, S.CHARGED),
        (Outcome.PENDING, S.PENDING),
        (Outcome.FAILED_HARD, S.FAILED),
        (Outcome.FAILED_SOFT, None),  # stays: the next try goes as planned
        (Outcome.UNKNOWN, None),
    ],
)
def test_a_debit_between_tries_follows_news_of_its_previous_order(
    state: S, outcome: Outcome, target: S | None
) -> None:
    decision = reconsider(state, outcome)
    assert decision.state == (target or state)
    assert target is None or can_transition_debit(state, target)


@pytest.mark.parametrize("outcome", [Outcome.CHARGED, Outcome.PENDING])
def test_a_planned_retry_hearing_of_its_previous_order_goes_to_review(outcome: Outcome) -> None:
    assert reconsider(S.PLANNED, outcome).state is S.MANUAL_REVIEW
    assert not can_transition_debit(S.PLANNED, S.CHARGED)


@pytest.mark.parametrize("state", [S.EXECUTING, S.PENDING, S.CHARGED, S.SKIPPED])
def test_reconsider_is_only_for_debits_not_yet_sent(state: S) -> None:
    with pytest.raises(IllegalTransition):
        reconsider(state, Outcome.CHARGED)


@pytest.mark.parametrize(
    ("current_at", "news_at", "charged", "applies"),
    [
        (None, NOW, False, True),
        (NOW, None, False, True),  # undated news is not older
        (NOW, NOW, False, True),  # same instant: not stale
        (NOW, NOW - timedelta(minutes=13), False, False),  # an ORDER_FAILED older than a poll
        (NOW, NOW + timedelta(minutes=1), False, True),
        (NOW, NOW - timedelta(days=1), True, True),  # a charge is never ignored
    ],
)
def test_order_news_older_than_what_was_learnt_of_the_order_is_stale(
    current_at: datetime | None, news_at: datetime | None, charged: bool, applies: bool
) -> None:
    assert order_news_applies(current_at, news_at, charged=charged) is applies


PLANNED = datetime(2027, 3, 5, 4, 30, tzinfo=UTC)  # the 5th, 10:00 in Kolkata


@pytest.mark.parametrize(
    ("succeeds_at", "serves"),
    [
        (PLANNED - timedelta(hours=25), True),  # 24 h notice ends before 10:00 on the 5th
        (PLANNED - timedelta(hours=20), True),  # executes later on the 5th: same day
        (datetime(2027, 3, 4, 18, 29, tzinfo=UTC), True),  # 23:59 local: just in time
        (datetime(2027, 3, 4, 18, 31, tzinfo=UTC), False),  # the notice would end on the 6th
    ],
)
def test_a_pdn_serves_only_while_its_notice_can_end_on_the_day_it_announced(
    succeeds_at: datetime, serves: bool
) -> None:
    assert (
        notice_still_serves(PLANNED, now=succeeds_at, window_closes_at=CLOSES, calendar=CAL)
        is serves
    )


def test_a_pdn_announces_the_planned_instant_or_25_hours_from_now() -> None:
    assert pdn_txn_date(PLANNED, PLANNED - LEAD) == PLANNED
    assert pdn_txn_date(PLANNED, PLANNED - timedelta(hours=2)) == PLANNED + timedelta(hours=23)


# -- terms_misfit: a debit planned under old terms -------------------------------------------------


def _terms(**changes: object) -> Terms:
    fields: dict[str, object] = {
        "frequency": "MONTHLY", "rule_type": "ON", "rule_value": 5, "amount_rule": "VARIABLE",
        "max_amount": "1000", "currency": "INR", "start_date": "2027-01-01",
        "payment_method_type": "CARD",
    }  # fmt: skip
    fields.update(changes)
    return parse_terms(fields, tz=CAL.tz)


MARCH = Period(date(2027, 3, 1), date(2027, 3, 31))
MARCH_5 = Period(date(2027, 3, 5), date(2027, 3, 5))


def _misfit(terms: Terms, amount: str = "900", flow_now: str | None = "juspay") -> str | None:
    return terms_misfit(terms, amount=Decimal(amount), period=MARCH, window=MARCH_5,
                        flow="juspay", flow_now=flow_now, calendar=CAL)  # fmt: skip


def test_a_debit_that_still_fits_its_terms_fits_whatever_the_start_date_numbering() -> None:
    assert _misfit(_terms()) is None
    assert _misfit(_terms(start_date="2027-02-01")) is None  # March is cycle 1 now: same debit


@pytest.mark.parametrize(
    ("changes", "amount", "reason"),
    [
        ({"max_amount": "500"}, "900", "amount 900 no longer fits the terms"),
        ({"amount_rule": "FIXED", "max_amount": "399"}, "900", "amount 900 no longer fits"),
        ({"rule_value": 20}, "900", "window now 2027-03-20, was 2027-03-05"),
        ({"rule_type": "AFTER"}, "900", "window now 2027-03-05..2027-03-31"),
        ({"start_date": "2027-04-01"}, "900", "no debit in the period 2027-03-01..2027-03-31"),
        ({"end_date": "2027-03-04"}, "900", "no debit in the period"),
        ({"frequency": "BIMONTHLY"}, "900", "period now 2027-03-01..2027-04-30"),
        ({"frequency": "ASPRESENTED", "rule_type": None, "rule_value": None}, "900",
         "frequency now ASPRESENTED: no calendar debit on 2027-03-05"),
    ],
)  # fmt: skip
def test_a_debit_that_no_longer_fits_its_terms_says_why(
    changes: dict[str, object], amount: str, reason: str
) -> None:
    found = _misfit(_terms(**changes), amount)
    assert found is not None
    assert reason in found


def test_a_debit_planned_for_another_flow_no_longer_fits() -> None:
    assert _misfit(_terms(), flow_now="none") == "flow now none, was juspay"
    assert _misfit(_terms(), flow_now=None) is None  # not checked
