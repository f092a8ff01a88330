"""Mandates: the registry of customers' standing permissions and their terms (SPEC §2).

Every way a mandate comes in (a merchant's file, the CLI, a sync from Juspay, a webhook) is
validated by the same parser and moved by the same status rules, so the registry holds one
truth whatever its source. Nothing here moves money; debits read the registry, never the
other way round.

    registry.import_mandates    a merchant's file (good rows in one transaction, bad rows named)
    registry.add_mandate        one mandate by hand
    registry.set_plan_amount    the merchant's amount per cycle (VARIABLE mandates)
    registry.apply_status       a status learned from Juspay or the merchant, order-safe
    registry.expire_ended       mandates past their end_date become EXPIRED
    registry.list_mandates      the registry for the CLI
    actions.pause / resume / revoke / sync   merchant actions that ask Juspay first
    files.read_rows             JSON lines or CSV, streamed
"""
