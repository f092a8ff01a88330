"""`billing mandates import`: progress on a terminal only, and a bad FILE is one error naming
it (SPEC §11), not one per row."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from billing.cli import cli, main
from tests.integration.test_cli_errors import billing
from tests.integration.test_cli_foundation import BILLING
from tests.integration.test_mandates import HEADER, write_mixed_csv


@pytest.fixture
def workdir(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("BILLING_") and not name.startswith("BILLING_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_url)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_rows(path: Path, count: int, *, bad_every: int = 0) -> Path:
    """`count` rows; every `bad_every`-th one has a bad max_amount."""
    lines = [HEADER]
    for i in range(count):
        amount = "-1" if bad_every and i % bad_every == 0 else "500"
        lines.append(f"c{i},m{i:06d},MONTHLY,ON,5,VARIABLE,{amount},,INR,2027-01-01,,UPI,")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_header_without_a_required_column_is_one_error_for_the_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = HEADER.replace("max_amount,", "").replace(",payment_method_type", "")
    rows = ["c1,m1,MONTHLY,ON,5,VARIABLE,,INR,2027-01-01,,"] * 50
    (workdir / "m.csv").write_text("\n".join([header, *rows]) + "\n")
    code, err = billing(capsys, "mandates", "import", "m.csv")
    assert code == 1
    assert err.splitlines() == [
        "error: m.csv: line 1: missing required column(s): max_amount, payment_method_type"
    ]


def test_a_binary_file_is_one_error_naming_the_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "export.xlsx").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8)
    code, err = billing(capsys, "mandates", "import", "export.xlsx")
    assert code == 1
    assert err.splitlines() == [
        "error: export.xlsx: a binary file, expected JSON lines or CSV text"
    ]


def test_a_file_that_is_not_utf8_is_one_error_naming_the_file_and_stores_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rows(workdir / "m.csv", 20)
    path.write_bytes(
        path.read_bytes()
        + "c99,m99,MONTHLY,ON,5,VARIABLE,500,,INR,2027-01-01,,UPI,Caf\xe9\n".encode("latin-1")
    )
    code, err = billing(capsys, "mandates", "import", "m.csv")
    assert code == 1
    assert err.splitlines() == [
        "error: m.csv: not UTF-8 text (byte 0xe9), expected JSON lines or CSV"
    ]
    main(["mandates", "list", "--json"])
    assert capsys.readouterr().out.strip() == "[]"


def test_off_a_terminal_the_import_prints_the_bad_rows_and_the_summary_only(
    workdir: Path,
) -> None:
    write_mixed_csv(workdir / "m.csv")
    result = CliRunner().invoke(cli, ["mandates", "import", "m.csv"])
    assert result.exit_code == 1
    assert result.stdout == "imported 14 rows: 5 created, 0 updated, 0 unchanged, 9 bad\n"
    assert len(result.stderr.splitlines()) == 9
    assert all(line.startswith("line ") for line in result.stderr.splitlines())
    assert "rows/s" not in result.output
    assert "\r" not in result.output


def run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `billing ARGS` with stdout and stderr on a pseudo-terminal; its exit code and output."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*BILLING, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            proc.kill()
            pytest.fail("no output from the command within 60 s")
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return proc.wait(30), b"".join(chunks).decode()


def test_on_a_terminal_the_import_shows_rows_rate_and_bad_rows(workdir: Path) -> None:
    write_rows(workdir / "m.csv", 3000, bad_every=100)
    code, output = run_on_a_terminal(["mandates", "import", "m.csv"], workdir)
    assert code == 1, output
    assert "line 2: max_amount:" in output
    assert "\r\x1b[K3,000 rows  " in output  # the final progress line
    final = output.split("\r\x1b[K3,000 rows  ")[1].splitlines()[0]
    assert final.endswith("rows/s  30 bad")
    assert "imported 3000 rows: 2970 created, 0 updated, 0 unchanged, 30 bad" in output
