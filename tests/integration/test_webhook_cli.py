"""`billing webhooks serve / list / replay` as a user runs them (subprocesses, embedded SQLite
database and broker): an event posted to the served receiver waits for a worker, and support
replays it by its id."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.sandbox_fixtures import wait_until
from tests.integration.test_cli_foundation import BILLING, run
from tests.seed_samples import SAMPLES

CREDENTIALS = {"BILLING_WEBHOOK_USERNAME": "hooks", "BILLING_WEBHOOK_PASSWORD": "pw-Zx81"}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    return tmp_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(workdir: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")} | CREDENTIALS
    process = subprocess.Popen(
        [*BILLING, "webhooks", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(url + "/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout=30, interval=0.1, what="billing webhooks serve")
    yield url
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert "pw-Zx81" not in stderr


def test_serve_needs_the_credentials(workdir: Path) -> None:
    result = run("webhooks", "serve", cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: BILLING_WEBHOOK_USERNAME, BILLING_WEBHOOK_PASSWORD: required but not set"
    )


def test_a_served_event_waits_for_a_worker_and_support_replays_it(
    workdir: Path, served: str
) -> None:
    answer = httpx.post(served + "/webhooks/juspay", content=SAMPLES["MANDATE_CREATED"],
                        auth=("hooks", "pw-Zx81"))  # fmt: skip
    assert answer.json() == {"status": "stored", "id": "evt_V2_a2f864be94fb4fde88cd1056cbf88beb"}
    assert (
        httpx.post(served + "/webhooks/juspay", content=b"{}", auth=("hooks", "x")).status_code
        == 401
    )

    listed = json.loads(run("webhooks", "list", "--unprocessed", "--json", cwd=workdir).stdout)
    assert [(e["event_name"], e["state"], e["attempts"]) for e in listed] == [
        ("MANDATE_CREATED", "RECEIVED", 0)  # enqueued on the embedded broker; no worker runs
    ]
    replayed = run("webhooks", "replay", "evt_V2_a2f864be94fb4fde88cd1056cbf88beb", cwd=workdir)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip().endswith(
        "PROCESSED: mandate eBWQNiQgeG7fdrXPPXtVbL registered CREATED"
    )
    assert json.loads(run("webhooks", "list", "--unprocessed", "--json", cwd=workdir).stdout) == []
    mandates = json.loads(run("mandates", "list", "--json", cwd=workdir).stdout)
    assert [(m["mandate_id"], m["status"]) for m in mandates] == [
        ("eBWQNiQgeG7fdrXPPXtVbL", "CREATED")
    ]
    again = run("webhooks", "replay", str(listed[0]["pk"]), cwd=workdir)
    assert again.returncode == 1
    assert "already PROCESSED" in again.stdout
    table = run("webhooks", "list", cwd=workdir)
    assert "MANDATE_CREATED" in table.stdout
    assert "registered CREATED" in table.stdout


def test_replaying_an_unknown_event_is_one_line_and_exit_1(workdir: Path) -> None:
    result = run("webhooks", "replay", "evt_nope", cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no webhook event 'evt_nope'"
