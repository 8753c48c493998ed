"""One wheel holds the Rust extension and the four application packages, plus the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_maturin_builds_one_wheel_with_the_extension_and_the_packages(tmp_path: Path) -> None:
    maturin = shutil.which("maturin", path=str(Path(sys.executable).parent))
    assert maturin is not None, "maturin is a dev dependency (.ci/setup installs it)"
    subprocess.run(
        [maturin, "build", "--release", "--out", str(tmp_path), "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    wheels = list(tmp_path.glob("quant_scalper-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert any(n.startswith("native_core/_native") and n.endswith(".so") for n in names)
    for module in (
        "native_core/__init__.py",
        "native_core/_native.pyi",
        "native_core/py.typed",
        "domain/engine.py",
        "application/services.py",
        "adapters/simulated/broker.py",
        "entrypoints/cli.py",
        "migrations/env.py",
        "migrations/versions/0001_initial.py",
        "migrations/versions/0002_every_command_a_row.py",
    ):
        assert module in names, module
    assert not any(n.startswith("native_core/src/") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheels[0]).read(entry_points).decode()
    assert "quant-scalper=entrypoints.cli:console" in text.replace(" ", "")

    # Installed from the wheel, the code finds its migrations and can create the journal's schema.
    site = tmp_path / "site"
    zipfile.ZipFile(wheels[0]).extractall(site)
    db = tmp_path / "journal.sqlite3"
    probe = (
        "import adapters.sql.migrate as m; "
        f"m.upgrade('sqlite+aiosqlite:///{db}'); "
        f"print(m.MIGRATIONS_DIR, m.current('sqlite+aiosqlite:///{db}'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    assert out == [str(site / "migrations"), "0002"]
