"""The bundled Juspay sandbox: a Starlette app that behaves like Juspay for every call the
client makes, written from Juspay's documents and sharing no code with `billing.gateway`.

    models.py     records and the sandbox's own reading of wire values
    state.py      memory behind one lock: mandates, orders, notifications, payouts, ledgers
    ec.py         POST /txns, GET /orders/{id}
    mandates.py   POST /mandates/{id} commands, GET /notifications/{ref}, customer mandates
    payouts.py    payout order status and the encrypted Attempt API
    payout_seed.py  payout orders from the body of Juspay's order create
    lifecycle.py  how things settle (polls, the sandbox clock, Juspay's own PDN, attempts)
    faults.py     injected faults      webhooks.py  emission      crypto.py  JWE / JWS keys
    control.py    the /sandbox/ control API      app.py  routes, auth, faults, request log
    server.py     SandboxServer (in-process, for tests) and serve() (standalone)
"""
