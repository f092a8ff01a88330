"""The mandate registry: import, add, correct, and apply status changes (SPEC §2).

Every way in (file import, CLI, sync from Juspay, webhooks) goes through `parse_mandate` and
`apply_status`, so a mandate is validated and moved by one set of rules whatever its source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.domain.errors import InvalidField
from billing.domain.mandate import (
    FINAL_MANDATE_STATUSES,
    AmountRule,
    Frequency,
    MandateStatus,
    PaymentMethodType,
    RuleType,
    Terms,
    can_transition_mandate,
    parse_terms,
    validate_plan_amount,
)
from billing.domain.ordering import held_at, should_apply
from billing.domain.schedule import DebitCalendar, first_open_cycle
from billing.services import NotFoundError, ServiceError
from billing.services.mandates.terms import open_debits_after_terms_change
from billing.store import debits as debit_store
from billing.store import mandates as store
from billing.store.models import Debit, Mandate

# The terms a planned debit depends on (its amount, window, period, flow): a change of any of
# them has each open debit checked (`terms.open_debits_after_terms_change`).
TERMS_OF_DEBITS = tuple(c for c in store.TERM_COLUMNS if c != "customer_id")
# Debits not yet in flight: a mandate that ends takes them with it (SPEC §2).
OPEN_DEBIT_STATES = ("PLANNED", "NOTIFYING", "NOTIFIED", "RETRY_SCHEDULED")
_ID_LIMITS = {"mandate_id": 64, "customer_id": 128}


@dataclass(frozen=True, slots=True)
class MandateInput:
    """A validated mandate as it comes in: identity, terms, plan amount and status."""

    mandate_id: str
    customer_id: str
    terms: Terms
    plan_amount: Decimal | None
    status: MandateStatus | None  # None: the row names no status (keep what we know)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class KeptStatus:
    """A row whose status was not applied: the status held was kept, and why."""

    line: int
    mandate_id: str
    kept: str
    in_file: str | None
    reason: str

    def __str__(self) -> str:
        kept = f"status {self.kept} kept ({self.reason})"
        return f"line {self.line}: mandate {self.mandate_id}: {kept}"


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_KEPT_ERRORS
    status_kept: int = 0
    kept: list[KeptStatus] = field(default_factory=list)  # the first MAX_KEPT_ERRORS


MAX_KEPT_ERRORS = 1000
_MAX_CACHED_CURSORS = 10_000


def _identifier(fields: Mapping[str, object], name: str) -> str:
    raw = fields.get(name)
    value = "" if raw is None else str(raw).strip()
    if not value:
        raise InvalidField(name, "required")
    if len(value) > _ID_LIMITS[name]:
        raise InvalidField(name, f"longer than {_ID_LIMITS[name]} characters")
    return value


def parse_mandate(
    fields: Mapping[str, object], *, tz: ZoneInfo, from_gateway: bool = False
) -> MandateInput:
    """Validate one mandate from loosely typed fields; `InvalidField` names the first bad one.

    The plan amount (`amount`) of a FIXED mandate defaults to its max_amount (they must be
    equal); a VARIABLE mandate without one is registered but never scheduled.
    `from_gateway=True` reads terms as Juspay sends them (`parse_terms`' lenient mode).
    """
    mandate_id = _identifier(fields, "mandate_id")
    customer_id = _identifier(fields, "customer_id")
    terms = parse_terms(fields, tz=tz, from_gateway=from_gateway)
    raw_amount = fields.get("amount")
    if raw_amount is None or (isinstance(raw_amount, str) and not raw_amount.strip()):
        plan = terms.max_amount if terms.amount_rule is AmountRule.FIXED else None
    else:
        plan = validate_plan_amount(terms, raw_amount)
    raw_status = fields.get("status")
    status_text = "" if raw_status is None else str(raw_status).strip().upper()
    if not status_text:  # no status: keep the one we hold (ACTIVE for a new mandate)
        return MandateInput(mandate_id, customer_id, terms, plan, None)
    try:
        status = MandateStatus(status_text)
    except ValueError:
        allowed = ", ".join(s.value for s in MandateStatus)
        raise InvalidField("status", f"must be one of {allowed}, got {raw_status!r}") from None
    return MandateInput(mandate_id, customer_id, terms, plan, status)


def terms_of(mandate: Mandate | Mapping[str, Any]) -> Terms:
    """Rebuild the domain's `Terms` from a stored row (ORM object or column dict)."""
    get: Callable[[str], Any] = (
        mandate.__getitem__ if isinstance(mandate, Mapping) else lambda n: getattr(mandate, n)
    )
    return Terms(
        frequency=Frequency(get("frequency")),
        rule_type=RuleType(get("rule_type")) if get("rule_type") else None,
        rule_value=get("rule_value"),
        amount_rule=AmountRule(get("amount_rule")),
        max_amount=get("max_amount"),
        currency=get("currency"),
        start_date=get("start_date"),
        end_date=get("end_date"),
        payment_method_type=PaymentMethodType(get("payment_method_type")),
    )


def planning_cursor(
    terms: Terms,
    status: MandateStatus,
    plan_amount: Decimal | None,
    *,
    now: datetime,
    calendar: DebitCalendar,
) -> tuple[int | None, datetime | None]:
    """(next cycle, its planned instant) for a schedulable mandate, else (None, None).

    Starts at the first cycle still open at `now`: importing a mandate that began years ago
    never back-bills the cycles it missed.
    """
    if status in FINAL_MANDATE_STATUSES or not terms.frequency.is_periodic or plan_amount is None:
        return None, None
    upcoming = first_open_cycle(terms, now, calendar)
    return (upcoming.number, upcoming.planned_at) if upcoming else (None, None)


def _columns(item: MandateInput) -> dict[str, Any]:
    t = item.terms
    return {
        "customer_id": item.customer_id,
        "frequency": t.frequency.value,
        "rule_type": t.rule_type.value if t.rule_type else None,
        "rule_value": t.rule_value,
        "amount_rule": t.amount_rule.value,
        "max_amount": t.max_amount,
        "currency": t.currency,
        "start_date": t.start_date,
        "end_date": t.end_date,
        "payment_method_type": t.payment_method_type.value,
        "status": (item.status or MandateStatus.ACTIVE).value,
        "plan_amount": item.plan_amount,
    }


@dataclass
class _Batch:
    items: dict[str, tuple[int, MandateInput]] = field(default_factory=dict)


class _Importer:
    """Upserts validated mandates batch by batch inside the caller's transaction."""

    def __init__(
        self,
        session: Session,
        *,
        source: str,
        now: datetime,
        calendar: DebitCalendar,
        report: ImportReport,
        on_error: Callable[[RowError], None],
    ) -> None:
        self.session = session
        self.source = source
        self.now = now
        self.calendar = calendar
        self.report = report
        self.on_error = on_error
        # planning_cursor is a pure function of these (now and calendar are fixed for the
        # import); a file's mandates mostly share a few plans, so most rows hit this.
        self._cursors: dict[tuple[Terms, MandateStatus, bool], tuple[int | None, datetime | None]]
        self._cursors = {}

    def cursor(
        self, terms: Terms, status: MandateStatus, plan_amount: Decimal | None
    ) -> tuple[int | None, datetime | None]:
        key = (terms, status, plan_amount is None)
        found = self._cursors.get(key)
        if found is None:
            if len(self._cursors) >= _MAX_CACHED_CURSORS:
                self._cursors.clear()
            found = planning_cursor(
                terms, status, plan_amount, now=self.now, calendar=self.calendar
            )
            self._cursors[key] = found
        return found

    def error(self, line: int, field_name: str, reason: str) -> None:
        problem = RowError(line, field_name, reason)
        self.report.bad += 1
        if len(self.report.errors) < MAX_KEPT_ERRORS:
            self.report.errors.append(problem)
        self.on_error(problem)

    def keep(self, line: int, mandate_id: str, kept: str, item: MandateInput, why: str) -> None:
        self.report.status_kept += 1
        if len(self.report.kept) < MAX_KEPT_ERRORS:
            in_file = None if item.status is None else item.status.value
            self.report.kept.append(KeptStatus(line, mandate_id, kept, in_file, why))

    def status_of(
        self, line: int, mandate_id: str, item: MandateInput, old: Mapping[str, Any]
    ) -> MandateStatus | RowError:
        """The status an updated row leaves: the file's claim, dated now, under the same
        order-safety rule as Juspay's events; the held one when the row names none."""
        held = MandateStatus(old["status"])
        if item.status is None:
            if held is not MandateStatus.ACTIVE:
                self.keep(line, mandate_id, held, item, "the file names no status")
            return held
        if item.status == held:
            return held
        if not can_transition_mandate(held, item.status):
            return RowError(line, "status", f"a {held} mandate cannot become {item.status}")
        if not should_apply(
            held, old["status_at"], item.status, self.now, final=FINAL_MANDATE_STATUSES
        ):
            why = f"{held} was learnt at {old['status_at']:%Y-%m-%d %H:%M} UTC, after this file"
            self.keep(line, mandate_id, held, item, why)
            return held
        return item.status

    def flush(self, batch: _Batch) -> None:
        if not batch.items:
            return
        stored = store.existing(self.session, batch.items.keys())
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        changes: list[tuple[int, str, str, Mapping[str, Any]]] = []
        for mandate_id, (line, item) in batch.items.items():
            columns = _columns(item)
            old = stored.get(mandate_id)
            if old is None:
                cursor = self.cursor(
                    item.terms, item.status or MandateStatus.ACTIVE, item.plan_amount
                )
                inserts.append(
                    {
                        "mandate_id": mandate_id,
                        **columns,
                        "next_cycle": cursor[0],
                        "next_cycle_at": cursor[1],
                        "status_at": None,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
                continue
            status = self.status_of(line, mandate_id, item, old)
            if isinstance(status, RowError):
                self.error(status.line, status.field, status.reason)
                continue
            columns["status"] = status.value
            diff = {k: [old[k], v] for k, v in columns.items() if old[k] != v}
            if not diff:
                self.report.unchanged += 1
                continue
            cursor = self.cursor(item.terms, status, item.plan_amount)
            updates.append(
                {
                    **old,
                    **columns,
                    "next_cycle": cursor[0],
                    "next_cycle_at": cursor[1],
                    "status_at": self.now if "status" in diff else old["status_at"],
                }
            )
            for kind, keys in (
                ("terms", [k for k in diff if k not in ("status", "plan_amount")]),
                ("plan_amount", [k for k in diff if k == "plan_amount"]),
                ("status", [k for k in diff if k == "status"]),
            ):
                if not keys:
                    continue
                detail: dict[str, Any] = {k: diff[k] for k in keys}
                debits_depend = any(k in TERMS_OF_DEBITS for k in keys)
                if kind == "terms" and debits_depend and status not in FINAL_MANDATE_STATUSES:
                    outcomes = open_debits_after_terms_change(
                        self.session, old["id"], item.terms, source=self.source, at=self.now,
                        calendar=self.calendar,
                    )  # fmt: skip
                    if outcomes:
                        detail["open_debits"] = outcomes
                changes.append((old["id"], kind, self.source, detail))
            if status in FINAL_MANDATE_STATUSES and "status" in diff:
                end_open_debits(self.session, old["id"], f"mandate {status}", at=self.now)
        store.insert_many(self.session, inserts)
        store.update_many(self.session, updates, at=self.now)
        store.record_changes(self.session, changes, at=self.now)
        self.report.created += len(inserts)
        self.report.updated += len(updates)
        batch.items.clear()


def import_mandates(
    sessions: sessionmaker[Session],
    rows: Iterable[tuple[int, Mapping[str, object] | InvalidField]],
    *,
    now: datetime,
    calendar: DebitCalendar,
    source: str = "import",
    dry_run: bool = False,
    batch_size: int = 2000,
    on_error: Callable[[RowError], None] = lambda _e: None,
    from_gateway: bool = False,
) -> ImportReport:
    """Validate every row and upsert the good ones by mandate_id in ONE transaction.

    Bad rows are reported (`line N: field: reason`) and none of them is stored. Re-importing
    the same file changes nothing; a changed row is recorded in the mandate's history. Rows
    are streamed and written in batches, so memory does not grow with the file. A mandate
    repeated in a file: the later row wins. `dry_run` validates and rolls back.
    """
    report = ImportReport()
    with sessions() as session, session.begin():
        importer = _Importer(
            session,
            source=source,
            now=now,
            calendar=calendar,
            report=report,
            on_error=on_error,
        )
        batch = _Batch()
        for line, fields in rows:
            report.rows += 1
            if isinstance(fields, InvalidField):  # the reader could not even parse the line
                importer.error(line, fields.field, fields.reason)
                continue
            try:
                item = parse_mandate(fields, tz=calendar.tz, from_gateway=from_gateway)
            except InvalidField as exc:
                importer.error(line, exc.field, exc.reason)
                continue
            if item.mandate_id in batch.items:  # a repeat inside the batch: write the first
                importer.flush(batch)
            batch.items[item.mandate_id] = (line, item)
            if len(batch.items) >= batch_size:
                importer.flush(batch)
        importer.flush(batch)
        if dry_run:
            session.rollback()
    return report


def end_open_debits(session: Session, mandate_pk: int, cause: str, *, at: datetime) -> int:
    """Skip the debits of a mandate that are not yet in flight; in-flight ones settle as usual."""
    open_debits = session.execute(
        select(Debit.id, Debit.state).where(
            Debit.mandate_pk == mandate_pk, Debit.state.in_(OPEN_DEBIT_STATES)
        )
    )
    ended = 0
    for debit_id, state in list(open_debits):
        if debit_store.move(
            session,
            debit_id,
            expected=state,
            target="SKIPPED",
            at=at,
            cause=cause,
            values={"due_at": None},
        ):
            ended += 1
    return ended


def apply_status(
    session: Session,
    mandate: Mandate,
    target: MandateStatus,
    *,
    now: datetime,
    calendar: DebitCalendar,
    source: str,
    event_at: datetime | None = None,
) -> bool:
    """Move a mandate's status if the move is allowed and not stale; True when it moved.

    Final statuses are never left. A non-final status dated before the one we hold is stale
    and ignored (webhooks arrive out of order); a final one is applied whenever it comes,
    since ending a mandate is never a step back (`domain.ordering`). A repeated status moves
    nothing but its time, so an older event arriving after it stays stale. Ending a mandate
    skips its open debits; becoming ACTIVE again resumes planning from the next open cycle.
    """
    current = MandateStatus(mandate.status)
    if current == target:
        mandate.status_at = held_at(mandate.status_at, event_at)
        return False
    if not can_transition_mandate(current, target) or not should_apply(
        current, mandate.status_at, target, event_at, final=FINAL_MANDATE_STATUSES
    ):
        return False
    mandate.status = target.value
    mandate.status_at = held_at(mandate.status_at, event_at or now)
    mandate.updated_at = now
    if target is MandateStatus.ACTIVE:
        mandate.next_cycle, mandate.next_cycle_at = planning_cursor(
            terms_of(mandate), target, mandate.plan_amount, now=now, calendar=calendar
        )
    elif target in FINAL_MANDATE_STATUSES:
        mandate.next_cycle, mandate.next_cycle_at = None, None
    session.flush()
    store.record_changes(
        session, [(mandate.id, "status", source, {"status": [current, target]})], at=now
    )
    if target in FINAL_MANDATE_STATUSES:
        end_open_debits(session, mandate.id, f"mandate {target} ({source})", at=now)
    return True


def set_plan_amount(
    sessions: sessionmaker[Session],
    mandate_id: str,
    amount: object,
    *,
    now: datetime,
    calendar: DebitCalendar,
    source: str = "cli",
) -> Decimal:
    """Set the per-cycle amount; debits already planned keep the amount they were planned with."""
    with sessions() as session, session.begin():
        mandate = require(session, mandate_id, for_update=True)
        terms = terms_of(mandate)
        plan = validate_plan_amount(terms, amount)
        old = mandate.plan_amount
        if old == plan:
            return plan
        mandate.plan_amount = plan
        mandate.updated_at = now
        if mandate.next_cycle is None:
            mandate.next_cycle, mandate.next_cycle_at = planning_cursor(
                terms, MandateStatus(mandate.status), plan, now=now, calendar=calendar
            )
        store.record_changes(
            session, [(mandate.id, "plan_amount", source, {"plan_amount": [old, plan]})], at=now
        )
    return plan


def require(session: Session, mandate_id: str, *, for_update: bool = False) -> Mandate:
    mandate = store.get(session, mandate_id, for_update=for_update)
    if mandate is None:
        raise NotFoundError(f"mandate {mandate_id!r} is not in the registry")
    return mandate


def expire_ended(sessions: sessionmaker[Session], *, now: datetime, calendar: DebitCalendar) -> int:
    """Mark EXPIRED every live mandate whose end_date has passed (no webhook needed)."""
    today = calendar.local_date(now)
    with sessions() as session, session.begin():
        ended = session.scalars(
            select(Mandate).where(
                Mandate.end_date < today,
                Mandate.status.not_in([s.value for s in FINAL_MANDATE_STATUSES]),
            )
        ).all()
        count = 0
        for mandate in ended:
            count += apply_status(
                session,
                mandate,
                MandateStatus.EXPIRED,
                now=now,
                calendar=calendar,
                source="end_date",
            )
    return count


def list_mandates(
    session: Session,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    frequency: str | None = None,
    unscheduled: bool = False,
    limit: int = 1000,
) -> Sequence[Mandate]:
    """Registry listing; `unscheduled` = live calendar mandates with no plan amount."""
    statement = select(Mandate).order_by(Mandate.id).limit(limit)
    if status:
        statement = statement.where(Mandate.status == status.upper())
    if customer_id:
        statement = statement.where(Mandate.customer_id == customer_id)
    if frequency:
        statement = statement.where(Mandate.frequency == frequency.upper())
    if unscheduled:
        statement = statement.where(
            Mandate.plan_amount.is_(None),
            Mandate.frequency.not_in([Frequency.ONETIME.value, Frequency.ASPRESENTED.value]),
            Mandate.status.not_in([s.value for s in FINAL_MANDATE_STATUSES]),
        )
    return session.scalars(statement).all()


def is_unscheduled(mandate: Mandate) -> bool:
    """A live calendar mandate with no plan amount: registered, listed, never debited."""
    return (
        mandate.plan_amount is None
        and Frequency(mandate.frequency).is_periodic
        and MandateStatus(mandate.status) not in FINAL_MANDATE_STATUSES
    )


def local_today(now: datetime, calendar: DebitCalendar) -> date:
    return calendar.local_date(now)


def add_mandate(
    sessions: sessionmaker[Session],
    fields: Mapping[str, object],
    *,
    now: datetime,
    calendar: DebitCalendar,
    source: str = "cli",
) -> ImportReport:
    """Add or update one mandate; raises the row's error instead of reporting it."""
    problems: list[RowError] = []
    report = import_mandates(
        sessions,
        [(1, fields)],
        now=now,
        calendar=calendar,
        source=source,
        on_error=problems.append,
    )
    if problems:
        raise ServiceError(f"{problems[0].field}: {problems[0].reason}")
    return report
