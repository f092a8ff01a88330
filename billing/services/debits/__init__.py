"""Debits: turning a mandate's cycles into money exactly once (SPEC §3-§6).

A debit is born PLANNED from the mandate calendar, may need a pre-debit notification, is
executed by a guarded claim with its order recorded before the call, and is settled only by an
order status whose order_id and amount match. Every module here keeps that promise for its
step; the whole lifecycle lives in this package, so a reader follows one debit without
leaving it.

    planning.plan_debits          mandate calendar -> PLANNED debits within the horizon
    planning.forecast             `billing schedule`: what will be charged, read-only
    planning.present_debit        ASPRESENTED / ONETIME debits presented by the merchant
    notifications.Notifications   merchant-flow PDNs: send, check, record; Juspay's PDN failing
    execution.Debits.execute      checks -> claim -> record the order -> POST /txns -> settle
    execution.Debits.checks_before_sending   the one place for them: the previous try's status
                                  at Juspay, a held mandate's sync, window and mandate
                                  (`domain.sending`)
    execution.cancel_debit        the merchant stops a debit
    orders.Orders.check           poll a pending order, reconcile an unknown one
    settlement.Settlement         one order status -> the debit's next state
    dispatch.claim_due_work       what beat (and `billing tick`) hands out, leased
    dispatch.reclaim_stale        debits left EXECUTING by a dead worker -> reconciled
    policy.DebitPolicy            what these need from settings, as one value
"""
