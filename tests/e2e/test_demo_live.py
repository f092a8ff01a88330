"""`billing demo --live`: the real processes on the embedded defaults end with the books check,
and Ctrl-C stops every process the demo started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

BILLING = str(Path(sys.executable).with_name("billing"))


def demo_env() -> dict[str, str]:
    """Nothing of billing's set: the live demo brings its own (embedded) settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}


def test_the_live_demo_charges_its_book_through_the_real_processes_and_the_books_agree(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [BILLING, "demo", "--live", "--size", "20", "--timeout", "150", "--dir", str(tmp_path)],
        cwd=tmp_path,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for name in ("sandbox", "receiver", "worker", "beat"):
        assert re.search(rf"started {name} \(pid \d+", output), output
    assert "books agree:            yes" in output
    assert "charged exactly once:   yes" in output
    assert re.search(r"billing charged:\s+[1-9]\d* debits", output), output
    # The embedded defaults: the processes' own files in the demo's directory.
    assert (tmp_path / "billing.db").exists()
    assert (tmp_path / "billing-broker.db").exists()
    assert "ready." in (tmp_path / "worker.log").read_text()


def test_ctrl_c_stops_every_process_the_live_demo_started(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [BILLING, "demo", "--live", "--size", "20", "--timeout", "600", "--dir", str(tmp_path)],
        cwd=tmp_path,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    pids: dict[str, int] = {}
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 150
        while not lines or "charged/s" not in lines[-1]:  # the progress display is on
            line = demo.stdout.readline()
            assert line or demo.poll() is None, "".join(lines)
            lines.append(line)
            found = re.match(r"started (\w+) \(pid (\d+)", line)
            if found:
                pids[found.group(1)] = int(found.group(2))
            assert time.monotonic() < deadline, "".join(lines)
        os.kill(demo.pid, signal.SIGINT)  # what Ctrl-C sends to the demo
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    output = "".join(lines) + rest
    assert demo.returncode != 0
    assert {"sandbox", "receiver", "worker", "beat"} <= set(pids), output
    assert f"stopped {len(pids)} processes" in output, output
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):  # nothing left in its process group
            os.killpg(pid, 0)
