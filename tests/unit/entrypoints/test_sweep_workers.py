"""The local executor: the bars reach each worker once, in memory (the file is never read again),
and a trial's record is the same line whether it ran in a worker or here."""

from __future__ import annotations

import shutil
from pathlib import Path

from application.research.grid import parse_grid
from entrypoints.replay import load_series
from entrypoints.research.executors import open_runner
from entrypoints.research.plan import data_hash, plan
from entrypoints.research.worker import run_trial
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


def test_workers_run_trials_on_the_bars_they_were_given_once(tmp_path: Path) -> None:
    settings = load_settings(SAMPLE_CONFIG, {})
    copy = tmp_path / "bars.csv"
    shutil.copy(SAMPLE, copy)
    series = load_series(settings, copy)
    copy.unlink()  # a worker that re-read the file would fail now
    grid = parse_grid({"strategy.lookback_period": [10, 20, 40]})
    planned = plan(settings, grid.points(), data_hash(series))
    jobs = [(p.trial.key, p.settings) for p in planned]
    with open_runner("local", series, workers=2, address=None) as runner:
        assert runner.workers == 2
        lines = sorted(runner.run(jobs))
    assert lines == sorted(run_trial(key, s, series) for key, s in jobs)
    assert len(set(lines)) == 3
