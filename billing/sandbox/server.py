"""Running the sandbox: in-process on a thread for tests (`SandboxServer`), or standalone (`serve`).

with SandboxServer(api_key="k", merchant_id="m") as sandbox:
    sandbox.url                     # http://127.0.0.1:<free port>
    sandbox.state.seed_mandate(mandate_id="m1", customer_id="c1", payment_method_type="CARD")
    sandbox.state.charges()         # the ledger
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from billing.sandbox.app import create_app
from billing.sandbox.crypto import SandboxKeys
from billing.sandbox.state import SandboxConfig, SandboxState
from billing.sandbox.webhooks import WebhookConfig

# Longer than any client keep-alive, so the server never closes an idle connection the client
# is about to reuse (that race would look like a dropped connection to the client).
KEEP_ALIVE_SECONDS = 75


def _build_state(
    *,
    api_key: str,
    merchant_id: str,
    key_id: str,
    merchant_key_id: str,
    webhook_url: str | None,
    webhook_username: str | None,
    webhook_password: str | None,
    private_key_pem: bytes | None,
) -> SandboxState:
    config = SandboxConfig(
        api_key=api_key, merchant_id=merchant_id, key_id=key_id, merchant_key_id=merchant_key_id
    )
    hooks = WebhookConfig(url=webhook_url, username=webhook_username, password=webhook_password)
    return SandboxState(config, keys=SandboxKeys(private_key_pem), webhooks=hooks)


class SandboxServer:
    """The sandbox on 127.0.0.1 and a free port, served by uvicorn in a daemon thread."""

    def __init__(
        self,
        *,
        api_key: str = "sandbox_api_key",
        merchant_id: str = "sandbox_merchant",
        key_id: str = "JuspayKID",
        merchant_key_id: str = "JuspaySID",
        webhook_url: str | None = None,
        webhook_username: str | None = None,
        webhook_password: str | None = None,
        private_key_pem: bytes | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_seconds: float = 0.2,
    ) -> None:
        self.state = _build_state(
            api_key=api_key,
            merchant_id=merchant_id,
            key_id=key_id,
            merchant_key_id=merchant_key_id,
            webhook_url=webhook_url,
            webhook_username=webhook_username,
            webhook_password=webhook_password,
            private_key_pem=private_key_pem,
        )
        self._host, self._port = host, port
        self._tick_seconds = tick_seconds
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
        # protocol says TCP, and without it every keep-alive request waits ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.state, tick_seconds=self._tick_seconds),
            http="h11",
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="juspay-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    host: str,
    port: int,
    *,
    api_key: str,
    merchant_id: str,
    webhook_url: str | None = None,
    webhook_username: str | None = None,
    webhook_password: str | None = None,
    private_key_pem_file: Path | None = None,
    key_id: str = "JuspayKID",
    merchant_key_id: str = "JuspaySID",
    mandates: Iterable[Mapping[str, Any]] = (),
) -> None:
    """Serve the sandbox in the foreground until interrupted (`billing sandbox`), holding
    `mandates` (seed_mandate specs) from the start."""
    pem = private_key_pem_file.read_bytes() if private_key_pem_file is not None else None
    state = _build_state(
        api_key=api_key,
        merchant_id=merchant_id,
        key_id=key_id,
        merchant_key_id=merchant_key_id,
        webhook_url=webhook_url,
        webhook_username=webhook_username,
        webhook_password=webhook_password,
        private_key_pem=pem,
    )
    for spec in mandates:
        state.seed_mandate(spec)
    uvicorn.run(
        create_app(state),
        host=host,
        port=port,
        http="h11",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


run = serve
