"""Making one Attempt API call for a failed PLAIN_CARD fulfillment, exactly as the debits do:

1. claim the fulfillment with a guarded transition (DUE -> IN_FLIGHT; rowcount 0 = someone else
   has it), so one attempt is in flight per fulfillment however many workers race;
2. open the card in memory (and ask the CVV provider, when the rail needs one), record the
   attempt row (SENDING) and COMMIT, before a byte goes to Juspay;
3. send; the answer settles the attempt and the fulfillment (domain.payout has the table):
   ACK / unknown -> WAITING: the attempt may pay, and only evidence newer than it (a new
   transaction, a status dated after it) says what became of it; no other attempt is made
   meanwhile. Unavailable -> DUE soon (not counted), 4xx -> STOPPED, 401 -> HALTED (all
   attempts stop; not counted).

A worker that dies between 2 and 3 leaves the attempt SENDING; `reclaim_stale` turns it into
UNKNOWN after the stale timeout, so its result is read from the order, never resent blindly.
The card and the CVV (cards.open_card) exist only in local variables of `attempt`;
nothing here logs them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from billing.domain.payout import (
    AttemptAnswer,
    AttemptState,
    attempt_threshold,
    next_poll_at,
    unavailable_delay,
)
from billing.gateway import (
    AuthenticationFailed,
    GatewayError,
    OutcomeUnknown,
    Rejected,
    Unavailable,
)
from billing.services import Clock
from billing.services.payouts.cards import CvvProvider, NotMade, open_card
from billing.services.ports import PayoutGateway
from billing.store import payouts as store
from billing.store.models import Fulfillment, PayoutAttempt
from billing.store.vault import CardDataKeyMissing, CardVault

log = logging.getLogger("billing.payouts")

_A, _S = AttemptAnswer, AttemptState


@dataclass(frozen=True, slots=True)
class PayoutPolicy:
    max_attempts: int = 3
    # None when attempts can be made; else why not (the Attempt API keys are not configured).
    attempts_disabled: str | None = None
    # An attempt left SENDING this long had its worker die: its outcome is unknown.
    stale_claim_after: timedelta = timedelta(minutes=10)
    dispatch_lease: timedelta = timedelta(minutes=5)


class PayoutAttempts:
    """Every method is safe to run twice or from two workers at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: PayoutGateway,
        clock: Clock,
        *,
        policy: PayoutPolicy,
        vault: CardVault | None,
        cvv_provider: CvvProvider | None,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.clock = clock
        self.policy = policy
        self.vault = vault
        self.cvv_provider = cvv_provider

    def attempt(self, fulfillment_id: str) -> str:
        """Claim a due fulfillment, record its attempt, send it, settle from the answer."""
        if self.policy.attempts_disabled:
            return f"attempts disabled: {self.policy.attempts_disabled}"
        if self.vault is None:
            log.error("payout attempts need card data: %s", CardDataKeyMissing())
            return f"not made: {CardDataKeyMissing()}"
        now = self.clock()
        with self.sessions() as session, session.begin():
            found = store.find_fulfillment(session, fulfillment_id)
            if found is None:
                return "missing"
            fulfillment, order = found
            state = _S(fulfillment.attempt_state)
            if state is not _S.DUE:
                return f"not due ({state})"
            if fulfillment.next_attempt_at is None or fulfillment.next_attempt_at > now:
                return "not due"
            if store.halted(session) is not None:
                return "halted: Juspay refused our credentials (401); see `billing payouts list`"
            if fulfillment.attempts_made >= fulfillment.max_attempts:
                reason = f"all {fulfillment.max_attempts} attempts made"
                store.move(
                    session,
                    fulfillment.id,
                    expected=_S.DUE,
                    target=_S.STOPPED,
                    at=now,
                    values={"stop_reason": reason, "next_attempt_at": None},
                )
                return f"stopped: {reason}"
            claimed = store.move(
                session,
                fulfillment.id,
                expected=_S.DUE,
                target=_S.IN_FLIGHT,
                at=now,
                values={
                    "next_attempt_at": None,
                    "dispatched_at": None,
                    "stop_reason": None,
                    # counted from the claim: a crash before the answer still used it up
                    "attempts_made": Fulfillment.attempts_made + 1,
                },
            )
            if not claimed:
                return "claimed elsewhere"
            # Read again under the claim's row lock: the baseline below must be what is known
            # now, not what was read before a webhook committed.
            session.refresh(fulfillment)
            number = store.next_attempt_number(session, fulfillment.id)
            try:
                card, sender = open_card(
                    self.vault, fulfillment, order, cvv_provider=self.cvv_provider
                )
            except NotMade as reason:
                return self._not_made(session, fulfillment, number, str(reason), now)
            session.add(
                PayoutAttempt(
                    fulfillment_pk=fulfillment.id,
                    number=number,
                    state=_A.SENDING,
                    counted=True,
                    # what is known now: only evidence past it tells this attempt's outcome
                    baseline_txn_pk=store.newest_transaction_pk(session, fulfillment.id),
                    baseline_status_at=fulfillment.status_at,
                    created_at=now,
                )
            )
            order_id, customer_id = order.order_id, order.customer_id
        # Committed: the attempt exists on our side before the request leaves.
        log.info("payout %s / %s: sending attempt %s", order_id, fulfillment_id, number)
        try:
            self.gateway.attempt_payout(
                order_id,
                customer_id=customer_id,
                fulfillment_id=fulfillment_id,
                card=card,
                sender_details=sender,
            )
        except AuthenticationFailed as exc:
            return self._settle(fulfillment_id, number, _A.REJECTED, exc, auth=True)
        except Rejected as exc:
            return self._settle(fulfillment_id, number, _A.REJECTED, exc)
        except Unavailable as exc:
            return self._settle(fulfillment_id, number, _A.UNSENT, exc)
        except OutcomeUnknown as exc:
            return self._settle(fulfillment_id, number, _A.UNKNOWN, exc)
        finally:
            del card, sender
        return self._settle(fulfillment_id, number, _A.ACK, None)

    def _not_made(
        self, session: Session, fulfillment: Fulfillment, number: int, reason: str, now: datetime
    ) -> str:
        """Record why no call was made and stop the fulfillment until `payouts resume`."""
        session.add(
            PayoutAttempt(
                fulfillment_pk=fulfillment.id,
                number=number,
                state=_A.NOT_MADE,
                counted=False,
                error_message=reason[:255],
                created_at=now,
                answered_at=now,
            )
        )
        store.move(
            session,
            fulfillment.id,
            expected=_S.IN_FLIGHT,
            target=_S.STOPPED,
            at=now,
            values={
                "stop_reason": f"attempt not made: {reason}"[:255],
                "attempts_made": Fulfillment.attempts_made - 1,
            },
        )
        log.warning(
            "payout fulfillment %s: attempt not made: %s", fulfillment.fulfillment_id, reason
        )
        return f"not made: {reason}"

    def _settle(
        self,
        fulfillment_id: str,
        number: int,
        answer: AttemptAnswer,
        error: GatewayError | None,
        *,
        auth: bool = False,
    ) -> str:
        now = self.clock()
        code = None if error is None else error.code
        message = None if error is None else (error.message or str(error))[:255]
        with self.sessions() as session, session.begin():
            found = store.lock_fulfillment(session, fulfillment_id=fulfillment_id)
            assert found is not None  # recorded before sending, never deleted
            fulfillment, order = found
            attempt = next(
                a for a in store.attempts_of(session, fulfillment.id) if a.number == number
            )
            attempt.state = answer
            attempt.answered_at = now
            attempt.error_code, attempt.error_message = code, message
            values: dict[str, object] = {}
            if answer in (_A.ACK, _A.UNKNOWN):
                # The attempt may pay from now on: it waits for evidence newer than itself.
                target = _S.WAITING
                threshold = attempt_threshold(fulfillment.attempt_threshold)
                first_read = next_poll_at(
                    now, anchor=now, waiting_since=attempt.created_at, threshold=threshold
                )
                store.schedule_check(order, first_read)
            elif answer is _A.UNSENT:
                attempt.counted = False
                wait = unavailable_delay(store.consecutive_unsent(session, fulfillment.id))
                target = _S.DUE
                values.update(
                    next_attempt_at=now + wait, attempts_made=Fulfillment.attempts_made - 1
                )
            elif auth:
                attempt.counted = False
                target = _S.HALTED
                values.update(
                    attempts_made=Fulfillment.attempts_made - 1,
                    stop_reason=(
                        f"HALTED: Juspay refused our credentials ({code or 'HTTP 401'}: "
                        f"{message}); fix BILLING_JUSPAY_API_KEY / BILLING_JUSPAY_MERCHANT_ID, "
                        "then run `billing payouts resume`"
                    )[:255],
                )
            else:
                target = _S.STOPPED
                values["stop_reason"] = f"rejected {code or ''}: {message}".strip()[:255]
            store.move(
                session,
                fulfillment.id,
                expected=_S.IN_FLIGHT,
                target=target,
                at=now,
                values=values,
            )
        if auth:
            log.critical(
                "payout attempts HALTED: Juspay answered 401 %s to attempt %s of %s; no attempt "
                "is made until `billing payouts resume`",
                code,
                number,
                fulfillment_id,
            )
        elif answer in (_A.UNKNOWN, _A.UNSENT, _A.REJECTED):
            log.warning("payout %s attempt %s: %s (%s)", fulfillment_id, number, answer, error)
        else:
            log.info("payout %s attempt %s: ACK", fulfillment_id, number)
        return f"{answer} {code or ''}".strip() if code else str(answer)

    def reclaim_stale(self) -> int:
        """Attempts left SENDING by a worker that died: UNKNOWN, read from the order's status."""
        now = self.clock()
        reclaimed = 0
        with self.sessions() as session, session.begin():
            stale = store.stale_sending(session, before=now - self.policy.stale_claim_after)
            for attempt_id, fulfillment_pk in stale:
                locked = store.lock_fulfillment(session, pk=fulfillment_pk)
                assert locked is not None
                _, order = locked
                answered = store.answer_attempt(
                    session,
                    attempt_id,
                    expected=_A.SENDING,
                    values={
                        "state": _A.UNKNOWN,
                        "error_message": "no answer recorded (worker lost?)",
                    },
                )
                if not answered:
                    continue  # its worker answered after all
                store.move(
                    session, fulfillment_pk, expected=_S.IN_FLIGHT, target=_S.WAITING, at=now
                )
                store.schedule_check(order, now)
                reclaimed += 1
        if reclaimed:
            log.warning(
                "reclaimed %s payout attempts left SENDING: reading their outcome", reclaimed
            )
        return reclaimed
