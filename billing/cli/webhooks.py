"""`billing webhooks`: serve the receiver, list stored events, replay one."""

from __future__ import annotations

from typing import Any

import click

from billing.bootstrap import build
from billing.cli.common import JobError, container, echo_json, echo_table
from billing.services.webhook_events import find_event, list_events
from billing.store.models import WebhookEvent

# Events the receiver stores at once (and its pooled connections, up to as many again in
# overflow): enough in flight for PostgreSQL to group their commits, few enough to leave the
# server's connections (100 by default) to the workers. The event loop holds the rest of a burst.
RECEIVER_CONNECTIONS = 20


@click.group()
def webhooks() -> None:
    """Juspay webhooks: the receiver, and the stored events for support."""


@webhooks.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve POST /webhooks/juspay and /webhooks/juspay/payouts (needs BILLING_WEBHOOK_USERNAME
    and BILLING_WEBHOOK_PASSWORD); stored events are processed by the Celery workers."""
    import uvicorn  # noqa: PLC0415 - only this command serves HTTP

    from billing.tasks.worker import app as celery  # noqa: PLC0415 - Celery only for this command
    from billing.webhooks.app import app_for  # noqa: PLC0415
    from billing.webhooks.enqueue import BatchedEnqueue  # noqa: PLC0415

    def send(event_pks: list[int]) -> None:
        celery.send_task("billing.webhooks.process", args=[event_pks])

    enqueue = BatchedEnqueue(send)
    # Its own container: a pool of RECEIVER_CONNECTIONS, one per event being stored.
    receiver = app_for(  # checks the credentials are set
        build(pool_size=RECEIVER_CONNECTIONS, pre_ping=False), enqueue, enqueue_returns_at_once=True
    )
    click.echo(f"receiving Juspay webhooks on http://{host}:{port}/webhooks/juspay")
    try:
        uvicorn.run(receiver, host=host, port=port, log_config=None, access_log=False)
    finally:
        enqueue.close()


def event_row(event: WebhookEvent) -> dict[str, Any]:
    return {
        "pk": event.id,
        "kind": event.kind,
        "event_id": event.event_id,
        "event_name": event.event_name,
        "event_at": event.event_at,
        "state": event.state,
        "attempts": event.attempts,
        "received_at": event.received_at,
        "processed_at": event.processed_at,
        "outcome": event.outcome,
        "last_error": event.last_error,
    }


@webhooks.command("list")
@click.option("--unprocessed", is_flag=True, help="Only RECEIVED, POISONED and UNMATCHED events.")
@click.option(
    "--state",
    help="Only events in this state (RECEIVED, PROCESSED, IGNORED, POISONED, UNMATCHED).",
)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(
    ctx: click.Context, unprocessed: bool, state: str | None, limit: int, as_json: bool
) -> None:
    """List stored webhook events, newest first."""
    with container(ctx).sessions() as session:
        rows = [
            event_row(e)
            for e in list_events(session, unprocessed=unprocessed, state=state, limit=limit)
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["result"] = row["last_error"] if row["state"] == "POISONED" else row["outcome"]
    echo_table(
        rows,
        ["pk", "kind", "event_id", "event_name", "event_at", "state", "attempts", "result"],
    )


@webhooks.command()
@click.argument("event_id")
@click.option("--force", is_flag=True, help="Also replay an event already PROCESSED.")
@click.pass_context
def replay(ctx: click.Context, event_id: str, force: bool) -> None:
    """Process a stored event again, now, in this process (also POISONED, IGNORED, UNMATCHED).

    EVENT_ID is Juspay's event id, or the row number (`pk`) that `list` shows.
    """
    c = container(ctx)
    with c.sessions() as session:
        pk = find_event(session, event_id).id
    result = c.webhook_events().process(pk, replay=True, force=force)
    click.echo(f"{event_id}: {result}")
    if result.startswith(("POISONED", "already", "being processed")):
        raise JobError("")
