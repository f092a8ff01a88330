"""Merchant actions on a mandate that go through Juspay: pause, resume, revoke (SPEC §2).

Juspay is asked first; the registry records what Juspay answers (its status), not what was
asked, so a refused or scheduled action never shows as done. None of these calls moves money,
so a timeout is reported to the merchant to retry rather than reconciled.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session, sessionmaker

from billing.domain.mandate import MandateStatus
from billing.domain.schedule import DebitCalendar
from billing.gateway import GatewayError, MandateInfo
from billing.services import ServiceError
from billing.services.mandates import apply_status, require
from billing.services.ports import MandateGateway
from billing.store import mandates as store


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
