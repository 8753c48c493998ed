"""A replay imports only what it uses: no plotting library (Bokeh for report.html, matplotlib for
equity.png) unless a report is written, never the IB Gateway client, the Telegram bot or pandas,
nor the modules of the other commands (the research tools, Monte Carlo, the fill audit).
A sweep is many replays, and each one pays its process's start-up (bench/startup_bench.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
CONFIG = ROOT / "config" / "sample.yaml"
HEAVY = (
    "aiogram",
    "application.research",
    "bokeh",
    "entrypoints.fills_cli",
    "entrypoints.montecarlo_cli",
    "entrypoints.research",
    "ib_async",
    "matplotlib",
    "pandas",
    "pyarrow.parquet",
)

# Runs the CLI as the console script does, then lists the heavy modules the process holds.
_PROBE = f"""
import json, sys
from entrypoints.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _replay(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "replay", *args, "--config", str(CONFIG), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def short_file(tmp_path: Path) -> Path:
    """The sample's first 25 bars."""
    path = tmp_path / "bars25.csv"
    with SAMPLE.open(encoding="utf-8") as source:
        path.write_text("".join(next(source) for _ in range(26)), encoding="utf-8")
    return path


def test_a_replay_without_a_report_imports_no_heavy_library(short_file: Path) -> None:
    assert _replay(str(short_file)) == {"code": 0, "loaded": []}


def test_a_replay_with_a_report_loads_the_plotting_libraries_then(
    short_file: Path, tmp_path: Path
) -> None:
    result = _replay(str(short_file), "--report", str(tmp_path / "report"))
    assert result["code"] == 0
    loaded = result["loaded"]
    assert isinstance(loaded, list)
    assert {"bokeh", "matplotlib"} <= set(loaded)
    assert not {"aiogram", "ib_async"} & set(loaded)
