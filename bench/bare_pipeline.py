"""The bare-stack baseline: a Celery task per debit, no product logic.

Claim one row (guarded UPDATE ... RETURNING), one POST to the gateway, one write. Run by
`bench/celery_throughput.py` as `celery -A bare_pipeline worker` with BARE_DATABASE_URL,
BARE_BROKER_URL and BARE_GATEWAY_URL set; its table is `bare_debits` (made by the driver).
"""

from __future__ import annotations

import os

import httpx
from celery import Celery, signals
from sqlalchemy import Engine, create_engine, text

app = Celery("bare", broker=os.environ.get("BARE_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)
_engine: Engine | None = None
_http: httpx.Client | None = None


@signals.worker_process_init.connect
def _after_fork(**_: object) -> None:
    global _engine, _http
    _engine, _http = None, None


def _parts() -> tuple[Engine, httpx.Client]:
    global _engine, _http  # noqa: PLW0603
    if _engine is None or _http is None:
        _engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_size=40)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        _http = httpx.Client(base_url=os.environ["BARE_GATEWAY_URL"], limits=limits)
    return _engine, _http


@app.task(name="bare.execute", acks_late=True)
def execute(debit_id: int) -> None:
    engine, http = _parts()
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "UPDATE bare_debits SET state = 'EXECUTING' WHERE id = :id AND state = 'PLANNED' "
                "RETURNING order_id, mandate_id, customer_id, amount"
            ),
            {"id": debit_id},
        ).one_or_none()
    if row is None:
        return
    reply = http.post(
        "/txns",
        data={
            "order.order_id": row.order_id,
            "order.amount": str(row.amount),
            "order.customer_id": row.customer_id,
            "mandate_id": row.mandate_id,
        },
    )
    state = "CHARGED" if reply.json().get("status") == "CHARGED" else "FAILED"
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE bare_debits SET state = :s WHERE id = :id"), {"s": state, "id": debit_id}
        )
