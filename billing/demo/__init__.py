"""The demo: the whole product run against the bundled Juspay sandbox, ending in a books check.

A newcomer's first command (`make demo`). `scenario` holds what is played (a merchant's book
of mandates and the faults Juspay throws at it); `simulation` plays it on a simulated clock
shared with the sandbox, through the same services the Celery workers run, and compares
billing's books with the sandbox's ledger. The CLI command only parses its options.
"""
