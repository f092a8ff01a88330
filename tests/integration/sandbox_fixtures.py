"""Fixtures for tests against the bundled Juspay sandbox over real HTTP.

    sandbox_server         session: one SandboxServer on 127.0.0.1 (a thread), started once
    sandbox                the same server, reset before and after the test
    juspay_public_key_file session: the sandbox's public key, fetched through its control API
    attempt_encrypter      an AttemptEncrypter loaded from that file (from_files)
    make_juspay_client     factory: a JuspayClient on the sandbox, short timeouts, closed after
    juspay_client          make_juspay_client() with the defaults
    webhook_receiver       a tiny HTTP server the sandbox posts its webhooks to
and `wait_until(predicate)`, the deadline-poll every test uses instead of sleeping, and
`payout_order` / `card_fulfillment`: a payout order as Juspay's order create takes it (after
Juspay's sample `payout-api/order-create-encryp/plain-card.json`), to seed the sandbox with.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from billing.gateway import AttemptEncrypter, JuspayClient
from billing.sandbox.server import SandboxServer

__all__ = [
    "API_KEY",
    "KEY_ID",
    "MERCHANT_ID",
    "MERCHANT_KEY_ID",
    "WEBHOOK_PASSWORD",
    "WEBHOOK_USERNAME",
    "WebhookReceiver",
    "attempt_encrypter",
    "card_fulfillment",
    "juspay_client",
    "juspay_public_key_file",
    "make_juspay_client",
    "payout_order",
    "sandbox",
    "sandbox_server",
    "wait_until",
    "webhook_receiver",
]

API_KEY = "sbx_key_5Qm2ZrT8wX"  # distinctive, so a leak into a log is unmistakable
MERCHANT_ID = "billing_test"
KEY_ID = "JuspayKID"
MERCHANT_KEY_ID = "JuspaySID"
WEBHOOK_USERNAME = "juspay-hooks"
WEBHOOK_PASSWORD = "hook-pw-Vb7Kq2Lm"
READ_TIMEOUT = 0.5  # short, so timeout faults cost half a second

_T = TypeVar("_T")


def wait_until(
    predicate: Callable[[], _T], *, timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> _T:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(
        api_key=API_KEY,
        merchant_id=MERCHANT_ID,
        key_id=KEY_ID,
        merchant_key_id=MERCHANT_KEY_ID,
        webhook_username=WEBHOOK_USERNAME,
        webhook_password=WEBHOOK_PASSWORD,
    ) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    sandbox_server.state.reset()
    yield sandbox_server
    sandbox_server.state.reset()


@pytest.fixture(scope="session")
def juspay_public_key_file(
    sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    response = httpx.get(f"{sandbox_server.url}/sandbox/keys/juspay-public.pem")
    response.raise_for_status()
    path = tmp_path_factory.mktemp("keys") / "juspay-public.pem"
    path.write_bytes(response.content)
    return path


@pytest.fixture
def attempt_encrypter(juspay_public_key_file: Path) -> AttemptEncrypter:
    return AttemptEncrypter.from_files(
        public_key_file=juspay_public_key_file, key_id=KEY_ID, merchant_key_id=MERCHANT_KEY_ID
    )


@pytest.fixture
def make_juspay_client(
    sandbox: SandboxServer, attempt_encrypter: AttemptEncrypter
) -> Iterator[Callable[..., JuspayClient]]:
    clients: list[JuspayClient] = []

    def make(**overrides: Any) -> JuspayClient:
        options: dict[str, Any] = {
            "base_url": sandbox.url,
            "api_key": API_KEY,
            "merchant_id": MERCHANT_ID,
            "connect_timeout": 0.5,
            "read_timeout": READ_TIMEOUT,
            "attempt_encrypter": attempt_encrypter,
        }
        options.update(overrides)
        client = JuspayClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def juspay_client(make_juspay_client: Callable[..., JuspayClient]) -> JuspayClient:
    return make_juspay_client()


@dataclass
class WebhookReceiver:
    """Collects what the sandbox posts: path, decoded Basic credentials and JSON body."""

    url: str = ""
    status: int = 200  # what to answer; set 500 to make deliveries fail
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, path_suffix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.received if r["path"].endswith(path_suffix)]

    def names(self) -> list[str]:
        return [e.get("event_name") or e.get("label") for e in self.events()]


def card_fulfillment(
    amount: str = "250.50",
    *,
    status: str = "FAILURE",
    code: str | None = "91",
    description: str | None = None,
    retriable: bool | None = None,
    threshold: int | None = 1440,
    kind: str = "PLAIN_CARD",
    rail: str = "DUMMY_VISADIRECT",
    fid: str | None = None,
) -> dict[str, Any]:
    """One fulfillment of Juspay's order create body (the PLAIN_CARD sample's shape), and where
    the sandbox starts it (`sandbox`: status, the first transaction's code, a fixed id)."""
    info: dict[str, Any] = {"remark": "Payout Transaction"}
    if threshold is not None:
        info["attemptThreshold"] = threshold
    if retriable is not None:
        info["isRetriable"] = retriable
    start: dict[str, Any] = {"status": status}
    if code is not None and status == "FAILURE":
        start["responseCode"] = code
    if description is not None:
        start["responseDescription"] = description
    if fid is not None:
        start["id"] = fid
    details = {"name": "A Kumar", "cardType": "CREDIT", "brand": "VISA", "bankCode": "508534"}
    return {
        "preferredMethodList": [rail],
        "amount": amount,
        "beneficiaryDetails": {"details": details, "type": kind},
        "additionalInfo": info,
        "sandbox": start,
    }


def payout_order(order_id: str, customer_id: str, *fulfillments: dict[str, Any]) -> dict[str, Any]:
    """Juspay's order create body for the sandbox; one failed PLAIN_CARD fulfillment
    (`<order>-f1`) unless given."""
    items = list(fulfillments) or [card_fulfillment(fid=f"{order_id}-f1")]
    return {
        "orderId": order_id,
        "customerId": customer_id,
        "customerPhone": "9999999999",
        "customerEmail": "test@example.com",
        "type": "FULFILL_ONLY",
        "fulfillments": items,
    }


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            auth = self.headers.get("authorization", "")
            credentials = None
            if auth.startswith("Basic "):
                credentials = base64.b64decode(auth[6:]).decode()
            with receiver.lock:
                receiver.received.append(
                    {"path": self.path, "credentials": credentials, "body": json.loads(raw)}
                )
            self.send_response(receiver.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def webhook_receiver(sandbox: SandboxServer) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    receiver.url = f"http://{host!s}:{port}/webhooks/juspay"
    sandbox.state.webhooks.configure(url=receiver.url)
    yield receiver
    server.shutdown()
    server.server_close()
