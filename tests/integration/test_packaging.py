"""A non-editable install can migrate: the wheel carries the migrations (`billing._migrations`).

The wheel is built from a copy of the source tree, installed with --no-deps into a fresh venv
(which borrows the dependencies of the test's environment through a .pth file, not billing
itself), and `billing db upgrade` is run from an unrelated directory against a scratch SQLite
file. The source tree is out of reach: the test checks where billing was imported from.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from billing.store import migrate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_wheel_installed_elsewhere_migrates_a_fresh_database(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("billing", "migrations"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src, cwd=tmp_path)
    (wheel,) = dist.glob("billing-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "billing/_migrations/env.py" in names
    assert "billing/_migrations/script.py.mako" in names
    assert "billing/_migrations/versions/0001_initial_schema.py" in names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
        "--no-index", wheel, cwd=tmp_path)  # fmt: skip
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
               cwd=tmp_path).strip()  # fmt: skip
    # The dependencies only: .pth files of the borrowed directory (our editable install's
    # finder among them) are not processed, so billing comes from the wheel.
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "PYTHON"))}
    env["BILLING_DATABASE_URL"] = f"sqlite:///{work / 'scratch.db'}"
    where = run(python, "-c", "import billing.store.migrate as m; print(m.__file__); "
                "print(m.MIGRATIONS_DIR)", cwd=work, env=env).split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv) for p in where), where
    run(venv / "bin" / "billing", "db", "upgrade", cwd=work, env=env)
    with sqlite3.connect(work / "scratch.db") as db:
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert version == migrate.head_revision("sqlite://")
    assert {"mandates", "debits", "orders", "webhook_events"} <= tables
