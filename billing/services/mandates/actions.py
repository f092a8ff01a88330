"""Merchant actions on a mandate that go through Juspay: pause, resume, revoke, sync (SPEC §2).

Juspay is asked first; the registry records what Juspay answers (its status), not what was
asked, so a refused or scheduled action never shows as done. None of these calls moves money,
so a timeout is reported to the merchant to retry rather than reconciled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.mandate import MandateStatus
from billing.domain.schedule import DebitCalendar
from billing.gateway import GatewayError, MandateInfo
from billing.services import ServiceError
from billing.services.mandates.registry import (
    ImportReport,
    RowError,
    apply_status,
    import_mandates,
    require,
)
from billing.services.ports import MandateGateway, MandateStatusReader
from billing.store import mandates as store
from billing.store.models import Mandate

log = logging.getLogger("billing.mandates")


def _customer(sessions: sessionmaker[Session], mandate_id: str) -> str:
    with sessions() as session:
        return require(session, mandate_id).customer_id


def _record(
    sessions: sessionmaker[Session],
    mandate_id: str,
    action: str,
    info: MandateInfo,
    *,
    now: datetime,
    calendar: DebitCalendar,
) -> str:
    with sessions() as session, session.begin():
        mandate = require(session, mandate_id, for_update=True)
        store.record_changes(
            session,
            [(mandate.id, "action", "cli", {"action": action, "juspay_status": info.status})],
            at=now,
        )
        if info.status:
            try:
                target = MandateStatus(info.status.upper())
            except ValueError:
                return f"{action} sent; Juspay answered an unknown status {info.status!r}"
            apply_status(session, mandate, target, now=now, calendar=calendar, source=action)
        return mandate.status


def pause(
    sessions: sessionmaker[Session],
    gateway: MandateGateway,
    mandate_id: str,
    *,
    start: date,
    end: date | None,
    now: datetime,
    calendar: DebitCalendar,
) -> str:
    if end is not None and end <= start:
        raise ServiceError("pause end date must be after its start date")
    customer_id = _customer(sessions, mandate_id)
    try:
        info = gateway.pause_mandate(
            mandate_id, customer_id=customer_id, pause_start_date=start, pause_end_date=end
        )
    except GatewayError as exc:
        raise ServiceError(f"pause of mandate {mandate_id} failed: {exc}") from exc
    return _record(sessions, mandate_id, "pause", info, now=now, calendar=calendar)


def resume(
    sessions: sessionmaker[Session],
    gateway: MandateGateway,
    mandate_id: str,
    *,
    on: date,
    now: datetime,
    calendar: DebitCalendar,
) -> str:
    customer_id = _customer(sessions, mandate_id)
    try:
        info = gateway.resume_mandate(mandate_id, customer_id=customer_id, resume_date=on)
    except GatewayError as exc:
        raise ServiceError(f"resume of mandate {mandate_id} failed: {exc}") from exc
    return _record(sessions, mandate_id, "resume", info, now=now, calendar=calendar)


def revoke(
    sessions: sessionmaker[Session],
    gateway: MandateGateway,
    mandate_id: str,
    *,
    now: datetime,
    calendar: DebitCalendar,
) -> str:
    customer_id = _customer(sessions, mandate_id)
    try:
        info = gateway.revoke_mandate(mandate_id, customer_id=customer_id)
    except GatewayError as exc:
        raise ServiceError(f"revoke of mandate {mandate_id} failed: {exc}") from exc
    return _record(sessions, mandate_id, "revoke", info, now=now, calendar=calendar)


def _fields(info: MandateInfo, customer_id: str, plan: Decimal | None) -> dict[str, object]:
    fields: dict[str, object] = {
        "mandate_id": info.mandate_id,
        "customer_id": info.customer_id or customer_id,
        "frequency": info.frequency,
        "rule_type": info.rule_type,
        "rule_value": info.rule_value,
        "amount_rule": info.amount_rule,
        "max_amount": info.max_amount,
        "currency": info.currency,
        "start_date": info.start_date,
        "end_date": info.end_date,
        "payment_method_type": info.payment_method_type,
        "status": info.status,
    }
    if plan is not None:
        fields["amount"] = plan  # a sync refreshes Juspay's terms, never the merchant's amount
    return {k: v for k, v in fields.items() if v not in (None, "")}


def sync(
    sessions: sessionmaker[Session],
    gateway: MandateGateway,
    *,
    mandate_id: str | None = None,
    customer_id: str | None = None,
    now: datetime,
    calendar: DebitCalendar,
    on_error: Callable[[RowError], None] = lambda _e: None,
) -> ImportReport:
    """Refresh one mandate (`check_status`) or all of a customer's from Juspay.

    Terms are read as Juspay sends them (lenient: a missing rule comes from the start date)
    and go through the same upsert as an import: changes recorded, final states kept, the
    merchant's plan amount untouched. A mandate synced cleanly has its hold released.
    """
    if (mandate_id is None) == (customer_id is None):
        raise ServiceError("sync needs a mandate id or a customer id, not both")
    if mandate_id is not None:
        return refresh(sessions, gateway, mandate_id, now=now, calendar=calendar, on_error=on_error)
    assert customer_id is not None  # checked above
    try:
        infos = gateway.customer_mandates(customer_id)
    except GatewayError as exc:
        raise ServiceError(f"sync from Juspay failed: {exc}") from exc
    return _record_infos(sessions, infos, customer_id, now=now, calendar=calendar,
                         on_error=on_error)  # fmt: skip


def refresh(
    sessions: sessionmaker[Session],
    gateway: MandateStatusReader,
    mandate_id: str,
    *,
    now: datetime,
    calendar: DebitCalendar,
    on_error: Callable[[RowError], None] = lambda _e: None,
) -> ImportReport:
    """One mandate from Juspay (`command=check_status`): terms and status recorded, hold lifted."""
    customer = _customer(sessions, mandate_id)
    try:
        infos = [gateway.mandate_status(mandate_id, customer_id=customer)]
    except GatewayError as exc:
        raise ServiceError(f"sync from Juspay failed: {exc}") from exc
    return _record_infos(sessions, infos, customer, now=now, calendar=calendar, on_error=on_error)


def _record_infos(
    sessions: sessionmaker[Session],
    infos: list[MandateInfo],
    customer: str,
    *,
    now: datetime,
    calendar: DebitCalendar,
    on_error: Callable[[RowError], None],
) -> ImportReport:
    with sessions() as session:
        plans = {
            m.mandate_id: m.plan_amount
            for m in session.scalars(
                select(Mandate).where(Mandate.mandate_id.in_([i.mandate_id for i in infos]))
            )
        }
    rows = [
        (n, _fields(info, customer, plans.get(info.mandate_id))) for n, info in enumerate(infos, 1)
    ]
    report = import_mandates(
        sessions,
        rows,
        now=now,
        calendar=calendar,
        source="sync",
        from_gateway=True,
        on_error=on_error,
    )
    refused = {error.line for error in report.errors}
    synced = [info.mandate_id for n, info in enumerate(infos, 1) if n not in refused]
    with sessions() as session, session.begin():
        store.release_holds(session, synced, at=now)
    return report


def refresh_after_refusal(
    sessions: sessionmaker[Session],
    gateway: MandateStatusReader,
    mandate_id: str,
    *,
    reason: str,
    now: datetime,
    calendar: DebitCalendar,
) -> str:
    """Juspay refused a debit for a reason about the mandate: read its status and record it.

    A REVOKED / EXPIRED answer ends the mandate's open debits, PAUSED holds them (SPEC §2). If
    the read fails (or Juspay's answer cannot be recorded) the mandate is held: its debits are
    not sent until a sync succeeds (`billing mandates sync`, or the next look at a held debit).
    """
    problems: list[RowError] = []
    try:
        report = refresh(sessions, gateway, mandate_id, now=now, calendar=calendar,
                         on_error=problems.append)  # fmt: skip
    except ServiceError as exc:
        return hold(sessions, mandate_id, f"{reason}; status read failed: {exc}", now=now)
    if report.bad:
        problem = problems[0] if problems else "refused"
        return hold(sessions, mandate_id, f"{reason}; Juspay's answer unusable: {problem}",
                    now=now)  # fmt: skip
    with sessions() as session:
        return f"mandate {mandate_id} {require(session, mandate_id).status} (read from Juspay)"


def try_release(
    sessions: sessionmaker[Session],
    gateway: MandateStatusReader,
    mandate_id: str,
    *,
    now: datetime,
    calendar: DebitCalendar,
) -> bool:
    """A held mandate's debit is due: try the sync that lifts the hold. True if it was lifted
    (what Juspay said is recorded); False if Juspay still cannot be read (it stays held)."""
    try:
        report = refresh(sessions, gateway, mandate_id, now=now, calendar=calendar)
    except ServiceError as exc:
        log.info("mandate %s stays held: %s", mandate_id, exc)
        return False
    return report.bad == 0


def hold(sessions: sessionmaker[Session], mandate_id: str, reason: str, *, now: datetime) -> str:
    """Hold a mandate's debits until a sync from Juspay succeeds; the reason is recorded."""
    with sessions() as session, session.begin():
        mandate = require(session, mandate_id, for_update=True)
        mandate.hold_reason = reason[:255]
        mandate.updated_at = now
        store.record_changes(session, [(mandate.id, "hold", "gateway", {"hold": reason})], at=now)
    log.warning("mandate %s: debits held until a sync succeeds: %s", mandate_id, reason)
    return f"mandate {mandate_id} held: {reason}"
