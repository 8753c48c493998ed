"""Replay start-up: a 25-bar replay as a process, from its start to its exit.

A sweep is many replays; a short one is almost all start-up (interpreter, imports, settings, the
container). Runs ``quant-scalper replay FILE --config config/sample.yaml --no-progress`` on the
sample's first 25 bars (no --report: the chart and report.html are the report's cost, not the
replay's), ``--runs`` times, and reports the best and the median wall time and the CPU time (user +
system) of the best run, which a busy shared machine inflates less than wall time; with a bare
``python -c pass`` for scale and the heavy libraries the replay process imported (should be none).

Prints one JSON object to stdout.

    python -m bench.startup_bench [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
CONFIG = ROOT / "config" / "sample.yaml"
TARGET_S = 0.4
BARS = 25
HEAVY = ("aiogram", "bokeh", "ib_async", "matplotlib", "pandas", "pyarrow.parquet")


def short_file(bars: int = BARS) -> Path:
    """The sample's first ``bars`` bars, as a CSV of their own."""
    path = HERE / "out" / f"sample_first_{bars}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with SAMPLE.open(encoding="utf-8") as source:
            path.write_text("".join(next(source) for _ in range(bars + 1)), encoding="utf-8")
    return path


# As a user's Python runs it: bytecode cached in __pycache__ (the warm-up run writes it). A
# PYTHONDONTWRITEBYTECODE in the environment would make every run compile the project's sources.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=_ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def heavy_imports(path: Path) -> list[str]:
    """The heavy libraries a replay of ``path`` leaves imported."""
    probe = (
        "import sys\n"
        "from entrypoints.cli import main\n"
        f"main(['replay', {str(path)!r}, '--config', {str(CONFIG)!r}, '--no-progress'])\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_ENV,
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("HEAVY:")]
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def measure(runs: int) -> dict[str, object]:
    """Start-up figures of ``runs`` replays (after one warm-up run that fills the OS caches)."""
    path = short_file()
    # The installed console script, as a user runs it (python -m entrypoints.cli without one).
    script = Path(sys.executable).with_name("quant-scalper")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "entrypoints.cli"]
    replay = [*command, "replay", str(path), "--config", str(CONFIG), "--no-progress"]
    _timed(replay)
    times = [_timed(replay) for _ in range(runs)]
    bare = min(_timed([sys.executable, "-c", "pass"])[0] for _ in range(runs))
    best, best_cpu = min(times)
    return {
        "bars": BARS,
        "runs": runs,
        "best_s": round(best, 4),
        "best_run_cpu_s": round(best_cpu, 4),
        "median_s": round(statistics.median(t for t, _ in times), 4),
        "min_cpu_s": round(min(c for _, c in times), 4),
        "python_bare_start_s": round(bare, 4),
        "heavy_modules_imported": heavy_imports(path),
        "target_s": TARGET_S,
        "met": best <= TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    result = {
        "benchmark": "replay_startup",
        **measure(args.runs),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
